package redact

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// credentials are values that must never survive redaction, whatever they are called.
var credentials = map[string]string{
	"pem private key":   "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----",
	"openssh key":       "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
	"key cut short":     "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtruncated",
	"jwt":               "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ19ib3QifQ.c2lnbmF0dXJlc2lnbmF0dXJl",
	"aws key id":        "AKIAIOSFODNN7EXAMPLE",
	"github":            "ghp_" + strings.Repeat("a1B2", 9),
	"github pat":        "github_pat_" + strings.Repeat("A1b2_", 9),
	"slack":             "xoxb-1234567890-abcdefghij",
	"openai":            "sk-proj-" + strings.Repeat("Ab1_", 6),
	"anthropic":         "sk-ant-api03-" + strings.Repeat("Zz9-", 6),
	"stripe":            "sk_live_" + strings.Repeat("4eC3", 5),
	"stripe restricted": "rk_live_" + strings.Repeat("4eC3", 5),
	"google":            "AIza" + strings.Repeat("SyA1_", 7),
	"gitlab":            "glpat-" + strings.Repeat("xY9_", 6),
	"npm":               "npm_" + strings.Repeat("a1b2c3", 6),
	"hugging face":      "hf_" + strings.Repeat("aB3", 11),
	"pypi":              "pypi-AgEIcHlwaS5vcmc" + strings.Repeat("Ab1", 12),
	"sendgrid":          "SG." + strings.Repeat("ab1", 8) + "." + strings.Repeat("XyZ9", 8),
	"digitalocean":      "dop_v1_" + strings.Repeat("a1", 32),
	"shopify":           "shpat_" + strings.Repeat("a1", 16),
	"warden agent":      "wsec_" + strings.Repeat("Q", 32),
	"warden admin":      "wadm_" + strings.Repeat("Q", 32),
	"warden runner":     "wrun_" + strings.Repeat("Q", 32),
	"bearer":            "Bearer abcdefghijklmnop.qrst",
	"basic":             "Basic dXNlcjpwYXNzd29yZDEyMzQ=",
}

func TestStringRedactsCredentials(t *testing.T) {
	for name, cred := range credentials {
		t.Run(name, func(t *testing.T) {
			out := (*Redactor)(nil).String("before " + cred + " after")
			if strings.Contains(out, cred) || !strings.Contains(out, Marker) {
				t.Fatalf("String kept the credential: %q", out)
			}
			if !strings.HasPrefix(out, "before ") {
				t.Fatalf("String removed what came before: %q", out)
			}
			// A credential's middle must not survive either.
			if mid := cred[len(cred)/3 : 2*len(cred)/3]; len(mid) > 8 && strings.Contains(out, mid) {
				t.Fatalf("part of the credential survived: %q", out)
			}
		})
	}
	if out := (*Redactor)(nil).String("https://user:hunter22@db.example.com/x"); strings.Contains(out, "hunter22") {
		t.Fatalf("a password in a URL survived: %q", out)
	}
	for _, keep := range []string{"issues.create", "repo:acme/web", "a plain sentence of words", "2026-11-25T12:00:00Z", "sk-short"} {
		if out := (*Redactor)(nil).String(keep); out != keep {
			t.Errorf("String(%q) = %q; want it unchanged", keep, out)
		}
	}
}

func TestSecretValues(t *testing.T) {
	r := New([]string{"canary-S3cret-value", "abc"}, []string{"Memo"})
	if out := r.String("x canary-S3cret-value y abc"); out != "x "+Marker+" y abc" {
		t.Fatalf("String = %q; want the known value redacted and a too-short one kept", out)
	}
	doc := r.JSON(json.RawMessage(`{"memo":"hello","nested":{"api_key":"k","list":["canary-S3cret-value",1]},"title":"ok"}`))
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	if v["memo"] != Marker || v["title"] != "ok" || v["nested"].(map[string]any)["api_key"] != Marker ||
		v["nested"].(map[string]any)["list"].([]any)[0] != Marker {
		t.Fatalf("JSON = %s", doc)
	}
	if out := r.JSON(json.RawMessage(`{"unterminated`)); string(out) != `"`+Marker+`"` {
		t.Fatalf("invalid JSON = %s", out)
	}
}

// Secrets takes out the known values and leaves everything else as it is, credential-looking or
// not: it is for names the agent chose, which must stay legible.
func TestSecrets(t *testing.T) {
	r := New([]string{"canary-S3cret-value", "abc"}, nil)
	for in, want := range map[string]string{
		"repo:canary-S3cret-value/web":            "repo:" + Marker + "/web",
		"GET /abc/ghp_" + strings.Repeat("a", 36): "GET /abc/ghp_" + strings.Repeat("a", 36),
		"canary-S3cret-valuecanary-S3cret-value":  Marker + Marker,
		"":                                        "",
	} {
		if got := r.Secrets(in); got != want {
			t.Errorf("Secrets(%q) = %q; want %q", in, got, want)
		}
	}
	if got := (*Redactor)(nil).Secrets("x"); got != "x" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestHeader(t *testing.T) {
	h := http.Header{
		"Authorization": {"Bearer abc"}, "Cookie": {"session=1"}, "Set-Cookie": {"a=b"},
		"X-Api-Key": {"k"}, "Proxy-Authorization": {"Basic x"}, "X-Custom-Token": {"t"},
		"Accept": {"application/json"}, "X-Note": {"jwt eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ19ib3QifQ.c2ln"},
	}
	out := (*Redactor)(nil).Header(h)
	for _, k := range []string{"Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Proxy-Authorization", "X-Custom-Token"} {
		if out.Get(k) != Marker {
			t.Errorf("%s = %q", k, out.Get(k))
		}
	}
	if out.Get("Accept") != "application/json" || strings.Contains(out.Get("X-Note"), "eyJ") {
		t.Errorf("other headers: %v", out)
	}
	if h.Get("Authorization") != "Bearer abc" {
		t.Error("Header changed its argument")
	}
}

func FuzzJSON(f *testing.F) {
	f.Add(`{"password":"x","a":[1,"ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}`)
	f.Add(`"-----BEGIN PRIVATE KEY-----\nabc"`)
	f.Add(`[1e400, -0, "\u0000"]`)
	r := New([]string{"planted-secret"}, []string{"memo"})
	f.Fuzz(func(t *testing.T, doc string) {
		out := r.JSON(json.RawMessage(doc))
		if len(doc) > 0 && !json.Valid(out) {
			t.Fatalf("JSON(%q) = %q, not JSON", doc, out)
		}
		if strings.Contains(string(out), "planted-secret") {
			t.Fatalf("a known secret survived: %s", out)
		}
	})
}

// TestMayHoldCredential keeps the cheap test in step with the patterns: whatever they match, it
// must say may.
func TestMayHoldCredential(t *testing.T) {
	for name, cred := range credentials {
		if !mayHoldCredential(cred) {
			t.Errorf("%s: mayHoldCredential(%q) = false", name, cred)
		}
	}
	if mayHoldCredential("repo:acme/web issues.create") {
		t.Error("a plain value needs no matching")
	}
	// Non-ASCII text is no reason to match either (only ſ may stand for an ASCII letter of the
	// schemes): prose with typographic quotes is most of what the scanner reads.
	if mayHoldCredential("See “references/schemas/tool-001.jsonl” — the fields, café, 東京.") {
		t.Error("non-ASCII text without a scheme needs no matching")
	}
}

func FuzzMayHoldCredential(f *testing.F) {
	for _, c := range credentials {
		f.Add(c)
	}
	f.Add("Authorization: ba\u017fic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") // ſ folds to s
	f.Fuzz(func(t *testing.T, s string) {
		if credentialPatterns.MatchString(s) && !mayHoldCredential(s) {
			t.Fatalf("the patterns match %q but mayHoldCredential says no", s)
		}
	})
}

func FuzzMaySecrets(f *testing.F) {
	f.Add(`{"Pass_Word":"x"}`)
	f.Add(`{"to-ken":"x","se.cret":"y"}`) // separators inside a word of a sensitive name
	f.Add(`{"n":1}`)
	f.Add(`{"h":"Basic QWxhZGRpbjpv\/cGVuIHNlc2Fm\/ZQ=="}`) // escapes split the credential's run
	f.Fuzz(func(t *testing.T, doc string) {
		var r *Redactor
		if !r.MaySecrets([]byte(doc)) && json.Valid([]byte(doc)) {
			if out := r.JSON(json.RawMessage(doc)); strings.Contains(string(out), Marker) {
				t.Fatalf("MaySecrets(%q) = false, but JSON redacts it to %s", doc, out)
			}
		}
	})
}

func TestRedacts(t *testing.T) {
	r := New([]string{"s3cret-value"}, []string{"Account"})
	cases := []struct {
		v    any
		want bool
	}{
		{map[string]any{"amount": json.Number("42"), "to": "acct-1", "ok": true, "none": nil}, false},
		{map[string]any{"items": []any{"a", map[string]any{"b": "c"}}}, false},
		{map[string]any{"api_key": "x"}, true},
		{map[string]any{"to-ken": "x"}, true},
		{map[string]any{"account": "x"}, true},
		{map[string]any{"note": "it is s3cret-value"}, true},
		{map[string]any{"s3cret-value": 1}, true},
		{map[string]any{"a": []any{"ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}, true},
		{map[string]any{"a": map[string]any{"password": json.Number("1")}}, true},
		{"plain", false},
	}
	for _, c := range cases {
		if got := r.Redacts(c.v); got != c.want {
			t.Errorf("Redacts(%v) = %v, want %v", c.v, got, c.want)
		}
		if !c.want && !reflect.DeepEqual(r.Value(c.v), c.v) {
			t.Errorf("Redacts(%v) is false, but Value changes it to %v", c.v, r.Value(c.v))
		}
	}
	var nilRedactor *Redactor
	if nilRedactor.Redacts(map[string]any{"to": "x"}) || !nilRedactor.Redacts(map[string]any{"token": "x"}) {
		t.Error("a nil Redactor must still find sensitive names")
	}
}

// Redacts is a second walk beside Value, which the gateway trusts to skip redaction: whenever it
// says a JSON document needs none, Value must leave the document as it was.
func FuzzRedactsAgreesWithValue(f *testing.F) {
	for _, c := range credentials {
		b, _ := json.Marshal(map[string]any{"note": "x " + c, "list": []any{c, 1}})
		f.Add(string(b))
	}
	f.Add(`{"Pass_Word":"x","n":[1,{"k":"v"}]}`)
	f.Add(`{"a":{"b":"s3cret-value"},"Account":1}`)
	f.Add(`["plain", 2, null, true]`)
	r := New([]string{"s3cret-value"}, []string{"Account"})
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		if !r.Redacts(v) && !reflect.DeepEqual(r.Value(v), v) {
			t.Fatalf("Redacts(%s) = false, but Value changes it to %v", doc, r.Value(v))
		}
	})
}
