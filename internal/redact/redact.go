// Package redact removes secrets from what warden records: argument values under sensitive
// names, values that look like credentials, and the exact values of brokered secrets.
package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// Marker replaces every redacted value.
const Marker = "[REDACTED]"

// sensitiveNames are argument and header names whose values are always redacted, compared
// case-insensitively after removing '-' and '_'.
var sensitiveNames = []string{
	"password", "passwd", "secret", "token", "apikey", "accesskey", "privatekey", "authorization",
	"cookie", "setcookie", "credential", "credentials", "clientsecret", "accesstoken", "refreshtoken",
	"idtoken", "sessiontoken", "bearer", "proxyauthorization", "xapikey", "signature",
}

// credentialPatterns match values that are credentials whatever they are called. A private key
// block is redacted whole, to its END line or, if cut short, to the end of the value.
var credentialPatterns = regexp.MustCompile(strings.Join([]string{
	`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|$)`,
	`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`, // JWT
	`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,  // AWS access key id
	`\bgh[pousr]_[A-Za-z0-9]{30,}\b`, // GitHub tokens
	`\bgithub_pat_[A-Za-z0-9_]{40,}\b`,
	`\bxox[abprs]-[A-Za-z0-9-]{10,}\b`,         // Slack
	`\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b`, // OpenAI, Anthropic
	`\bsk_(?:live|test)_[A-Za-z0-9]{16,}\b`,    // Stripe
	`\bAIza[0-9A-Za-z_-]{35}\b`,                // Google API key
	`\bglpat-[A-Za-z0-9_-]{20,}\b`,             // GitLab
	`\bnpm_[A-Za-z0-9]{36}\b`,
	`\bw(?:sec|adm|run)_[A-Za-z0-9_-]{20,}\b`,      // warden's own credentials
	`\bhf_[A-Za-z0-9]{30,}\b`,                      // Hugging Face
	`\bpypi-[A-Za-z0-9_-]{50,}`,                    // PyPI
	`\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`, // SendGrid
	`\bdo[pro]_v1_[a-f0-9]{64}\b`,                  // DigitalOcean
	`\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b`,       // Shopify
	`\b(?:sk|rk)_live_[A-Za-z0-9]{16,}\b`,          // Stripe secret and restricted keys
	`\bAKCp[A-Za-z0-9]{60,}`,                       // JFrog
	`://[^/\s:@]+:[^/\s@]+@`,                       // a password in a URL
	`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}`,
	`(?i)\bbasic\s+[A-Za-z0-9+/=]{16,}`,
}, "|"))

var nameSeparators = strings.NewReplacer("-", "", "_", "", ".", "")

// SensitiveName reports whether a field or header name holds secrets by its name.
func SensitiveName(name string) bool {
	n := strings.ToLower(nameSeparators.Replace(name))
	for _, s := range sensitiveNames {
		if n == s || strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// Redactor redacts with a set of known secret values (the brokered secrets) and extra sensitive
// argument names (a tool's own list).
type Redactor struct {
	values [][]byte
	names  map[string]bool
}

// New returns a Redactor for the given secret values and extra sensitive names. Values shorter
// than 6 bytes are ignored: redacting every "abc" in every event would destroy the log without
// protecting anything.
func New(secretValues []string, extraNames []string) *Redactor {
	r := &Redactor{}
	for _, v := range secretValues {
		if len(v) >= 6 {
			r.values = append(r.values, []byte(v))
		}
	}
	if len(extraNames) > 0 {
		// Made only when needed: the gateway builds a Redactor for every call.
		r.names = make(map[string]bool, len(extraNames))
		for _, n := range extraNames {
			r.names[strings.ToLower(n)] = true
		}
	}
	return r
}

// Secrets replaces the known secret values in s, and nothing else: for the names an agent
// chose — a tool, an action, a resource, a session — which must stay legible otherwise.
func (r *Redactor) Secrets(s string) string {
	if r != nil {
		for _, v := range r.values {
			if strings.Contains(s, string(v)) {
				s = strings.ReplaceAll(s, string(v), Marker)
			}
		}
	}
	return s
}

// String redacts a free-text value.
func (r *Redactor) String(s string) string {
	s = r.Secrets(s)
	if !mayHoldCredential(s) {
		return s
	}
	return credentialPatterns.ReplaceAllString(s, Marker)
}

// FindCredentials returns the byte ranges of s that look like credentials (the patterns String
// redacts), for scanners that report rather than replace them.
func FindCredentials(s string) [][]int {
	if !mayHoldCredential(s) {
		return nil
	}
	return credentialPatterns.FindAllStringIndex(s, -1)
}

// minCredentialRun is the shortest run of token characters any credential
// pattern matches (a Slack token's 15).
const minCredentialRun = 15

// mayHoldCredential is a cheap test that s could match credentialPatterns: every pattern holds
// a long run of token characters and a literal of its own (a PEM header, a key's prefix, a URL
// with a password, an authorization scheme). Most values recorded — names, actions, resources,
// decision messages — have none, and skip the costly match.
func mayHoldCredential(s string) bool {
	if strings.Contains(s, "-----BEGIN") || strings.Contains(s, "://") && strings.Contains(s, "@") {
		return true
	}
	run := 0
	long := false
	for i := 0; i < len(s) && !long; i++ {
		c := s[i]
		if tokenByte[c] {
			run++
			long = run >= minCredentialRun
		} else {
			run = 0
		}
	}
	if !long {
		return false
	}
	if holdsMarker(s) {
		return true
	}
	// The authorization schemes match case-insensitively, and Unicode case folding lets two
	// non-ASCII letters stand for ASCII ones: ſ (U+017F) for s and the Kelvin sign for k, which
	// ToLower already makes k. With ſ made s too, a scheme the patterns match is in lower.
	lower := strings.ToLower(s)
	if strings.Contains(lower, "ſ") {
		lower = strings.ReplaceAll(lower, "ſ", "s")
	}
	return strings.Contains(lower, "bearer") || strings.Contains(lower, "basic")
}

// tokenByte marks the bytes of the runs credentials are made of: letters, digits and _-+/=.~.
var tokenByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-+/=.~", byte(c)) >= 0
	}
	return t
}()

// credentialMarkers are the literals of credentialPatterns (but the case-insensitive
// authorization schemes): a string without any of them matches no pattern.
var credentialMarkers = []string{
	"eyJ", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-", "sk_",
	"rk_live_", "AIza", "glpat-", "npm_", "wsec_", "wadm_", "wrun_", "hf_", "pypi-", "SG.", "_v1_",
	"shp", "AKCp",
}

// markersAt lists the credential markers by their first byte.
var markersAt = func() (t [256][]string) {
	for _, m := range credentialMarkers {
		t[m[0]] = append(t[m[0]], m)
	}
	return t
}()

// holdsMarker reports whether s holds any of credentialMarkers, in one pass over s rather than
// one search per marker.
func holdsMarker(s string) bool {
	for i := 0; i < len(s); i++ {
		for _, m := range markersAt[s[i]] {
			if strings.HasPrefix(s[i:], m) {
				return true
			}
		}
	}
	return false
}

// MaySecrets reports whether a JSON document could hold anything r.JSON would redact: a value
// that may be a credential, or a name that may be sensitive. A false answer is certain, so the
// caller can skip decoding a document that holds nothing to redact.
func (r *Redactor) MaySecrets(doc []byte) bool {
	if r != nil && (len(r.values) > 0 || len(r.names) > 0) || mayHoldCredential(string(doc)) {
		return true
	}
	// Names are compared without separators ("to-ken" is sensitive), so the fragments are
	// looked for without them too.
	lower := bytes.ToLower(doc)
	w := 0
	for _, c := range lower {
		if c != '-' && c != '_' && c != '.' {
			lower[w] = c
			w++
		}
	}
	lower = lower[:w]
	for _, n := range sensitiveFragments {
		if bytes.Contains(lower, []byte(n)) {
			return true
		}
	}
	return false
}

// sensitiveFragments are the parts every sensitive name contains in some spelling, as a
// document's bytes show it (separators may stand between the words of a name); a backslash
// because any escape (\u…, \/) can hide a name or split a credential's run of characters.
var sensitiveFragments = []string{"pass", "secret", "token", "key", "auth", "cookie", "credential", "bearer", "signature", "\\"}

// JSON returns a copy of a JSON document with secrets replaced by the marker: values under
// sensitive names (at any depth) whole, and credential-looking substrings of other strings.
// Input that is not valid JSON is replaced by a marker rather than recorded.
func (r *Redactor) JSON(doc json.RawMessage) json.RawMessage {
	if len(doc) == 0 {
		return doc
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`"` + Marker + `"`)
	}
	out, err := json.Marshal(r.value(v, ""))
	if err != nil {
		return json.RawMessage(`"` + Marker + `"`)
	}
	return out
}

// Redacts reports whether Value would change v: it holds a sensitive name, a known secret
// value, or a string that may be a credential. When it reports false, v can be recorded as it
// is, without the copy Value makes.
func (r *Redactor) Redacts(v any) bool { return r.redacts(v, "") }

func (r *Redactor) redacts(v any, name string) bool {
	if name != "" && r.sensitive(name) {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if r.stringRedacts(k) || r.redacts(val, k) {
				return true
			}
		}
	case []any:
		for _, val := range x {
			if r.redacts(val, "") {
				return true
			}
		}
	case string:
		return r.stringRedacts(x)
	}
	return false
}

// stringRedacts reports whether String might change s; it errs towards yes.
func (r *Redactor) stringRedacts(s string) bool {
	if r != nil {
		for _, v := range r.values {
			if strings.Contains(s, string(v)) {
				return true
			}
		}
	}
	return mayHoldCredential(s)
}

// sensitive reports whether a name's value is redacted whole: a name SensitiveName knows, or
// one of r's own.
func (r *Redactor) sensitive(name string) bool {
	return SensitiveName(name) || r != nil && len(r.names) > 0 && r.names[strings.ToLower(name)]
}

// Value redacts a decoded JSON value.
func (r *Redactor) Value(v any) any { return r.value(v, "") }

func (r *Redactor) value(v any, name string) any {
	if name != "" && r.sensitive(name) {
		return Marker
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[r.String(k)] = r.value(val, k) // a name can hold a secret too
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = r.value(val, "")
		}
		return out
	case string:
		return r.String(x)
	}
	return v
}

// Header returns a copy of h for the record: the values of sensitive headers (Authorization,
// Cookie, Set-Cookie, Proxy-Authorization, X-Api-Key and any other name SensitiveName knows)
// become the marker, and credentials in the others are redacted.
func (r *Redactor) Header(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		redacted := make([]string, len(vs))
		whole := r.sensitive(k)
		for i, v := range vs {
			if whole {
				redacted[i] = Marker
			} else {
				redacted[i] = r.String(v)
			}
		}
		out[k] = redacted
	}
	return out
}
