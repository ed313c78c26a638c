// Package redact removes secrets from what warden records: argument values under sensitive
// names, values that look like credentials, and the exact values of brokered secrets.
package redact

import (
	"bytes"
	"encoding/json"
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

// credentialPatterns match values that are credentials whatever they are called.
var credentialPatterns = regexp.MustCompile(strings.Join([]string{
	`-----BEGIN [A-Z ]*PRIVATE KEY-----`,
	`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`, // JWT
	`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,                              // AWS access key id
	`\bgh[pousr]_[A-Za-z0-9]{30,}\b`,                             // GitHub tokens
	`\bgithub_pat_[A-Za-z0-9_]{40,}\b`,
	`\bxox[abprs]-[A-Za-z0-9-]{10,}\b`,         // Slack
	`\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b`, // OpenAI, Anthropic
	`\bsk_(?:live|test)_[A-Za-z0-9]{16,}\b`,    // Stripe
	`\bAIza[0-9A-Za-z_-]{35}\b`,                // Google API key
	`\bglpat-[A-Za-z0-9_-]{20,}\b`,             // GitLab
	`\bnpm_[A-Za-z0-9]{36}\b`,
	`\bw(?:sec|adm)_[A-Za-z0-9_-]{20,}\b`, // warden's own credentials
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
	r := &Redactor{names: map[string]bool{}}
	for _, v := range secretValues {
		if len(v) >= 6 {
			r.values = append(r.values, []byte(v))
		}
	}
	for _, n := range extraNames {
		r.names[strings.ToLower(n)] = true
	}
	return r
}

// String redacts a free-text value.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, v := range r.values {
			if strings.Contains(s, string(v)) {
				s = strings.ReplaceAll(s, string(v), Marker)
			}
		}
	}
	return credentialPatterns.ReplaceAllString(s, Marker)
}

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

// Value redacts a decoded JSON value.
func (r *Redactor) Value(v any) any { return r.value(v, "") }

func (r *Redactor) value(v any, name string) any {
	if name != "" && (SensitiveName(name) || r != nil && r.names[strings.ToLower(name)]) {
		return Marker
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = r.value(val, k)
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
