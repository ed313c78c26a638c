package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

func TestStripOverrideHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{
		"X-HTTP-Method-Override", "x-http-method", "X-Method-Override", "X-Original-Method", "X-Forwarded-Method",
		"X-Original-URL", "X-Original-Uri", "X-Rewrite-URL", "X-Override-URL", "X-Forwarded-Uri", "X-Forwarded-Url",
		"X-Forwarded-Path", "X-Forwarded-Prefix", "X-Envoy-Original-Path", "X-Envoy-Original-Method",
	} {
		h[name] = []string{"DELETE"} // as sent, not canonicalised
		if !strippedHeader(name) {
			t.Errorf("the HTTP gateway forwards %s", name)
		}
		if _, _, err := ParseInject(name + ": {{secret}}"); err == nil {
			t.Errorf("a credential may be injected as %s", name)
		}
	}
	h.Set("X-Request-Id", "kept")
	StripOverrideHeaders(h)
	if len(h) != 1 || h.Get("X-Request-Id") != "kept" {
		t.Fatalf("after StripOverrideHeaders: %v", h)
	}
}

func TestRequestArguments(t *testing.T) {
	opts := &HTTPOptions{MaxRequestBody: 64, MaxInspectBody: 32}
	opts.defaults()
	digest := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	cases := []struct {
		name, contentType, body string
		status                  int  // 0: accepted
		inspected               bool // args.body is the body
	}{
		{"no body", "", "", 0, true},
		{"json", "application/json", `{"amount":1}`, 0, true},
		{"json with parameters", "application/json; charset=utf-8", `{"amount":1}`, 0, true},
		{"problem+json", "application/problem+json", `{"amount":1}`, 0, true},
		{"json scalar labelled", "application/json", `42`, 0, true},
		{"text/plain object", "text/plain", `{"amount":1}`, 0, true},
		{"unlabelled array", "", ` [1,2]`, 0, true},
		{"text/json", "text/json", `{"amount":1}`, 0, true},
		{"x-json", "application/x-json", `{"amount":1}`, 0, true},
		{"bad content type, json content", "a/b/c", `{"amount":1}`, 0, true},
		{"form", "application/x-www-form-urlencoded", `amount=1&to=bob`, 0, false},
		{"text", "text/plain", `hello`, 0, false},
		{"unlabelled scalar", "", `42`, 0, false},
		{"log line", "text/plain", `[INFO] started`, 0, false},
		{"bom then json, unlabelled", "", "\xef\xbb\xbf{\"a\":1}", 0, false},
		{"large opaque body", "application/octet-stream", strings.Repeat("x", 60), 0, false},
		{"labelled invalid json", "application/json", `{"amount":`, http.StatusBadRequest, false},
		{"labelled bom", "application/json", "\xef\xbb\xbf{}", http.StatusBadRequest, false},
		{"json over the inspection limit", "text/plain", `{"a":"` + strings.Repeat("x", 40) + `"}`, http.StatusRequestEntityTooLarge, false},
		{"json padded past the limit", "", `{}` + strings.Repeat(" ", 40), http.StatusRequestEntityTooLarge, false},
		{"padding ahead of json", "", strings.Repeat("\n", 40) + `{}`, http.StatusRequestEntityTooLarge, false},
		{"labelled over the limit", "application/json", strings.Repeat(" ", 33), http.StatusRequestEntityTooLarge, false},
		{"over the request limit", "application/octet-stream", strings.Repeat("x", 65), http.StatusRequestEntityTooLarge, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/http/t/x?q=1", strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			body, raw, inspected, err := requestArguments(r, nil, opts)
			if c.status != 0 {
				if err == nil || warden.HTTPStatus(err) != c.status {
					t.Fatalf("err = %v; want status %d", err, c.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var args map[string]any
			if err := json.Unmarshal(raw, &args); err != nil {
				t.Fatal(err)
			}
			_, hasBody := args["body"]
			if inspected != c.inspected || hasBody != (c.inspected && c.body != "") || args["query"] == nil {
				t.Errorf("inspected %v, args %s", inspected, raw)
			}
			if c.body != "" && args["body_sha256"] != digest(c.body) || c.body == "" && args["body_sha256"] != nil {
				t.Errorf("body_sha256 in %s", raw)
			}
			if got, _ := io.ReadAll(body); string(got) != c.body || body.Len() != len(c.body) {
				t.Errorf("forwarded %q (Len %d)", got, body.Len())
			}
		})
	}
}

// TestRequestQueryIsJudgedAsSent: a query the upstream would read differently from what policy
// is shown (a pair url.ParseQuery drops, bytes json.Marshal turns into U+FFFD) is refused, never
// forwarded unjudged; a readable query is policy's args.query exactly.
func TestRequestQueryIsJudgedAsSent(t *testing.T) {
	opts := &HTTPOptions{}
	opts.defaults()
	cases := []struct {
		query  string
		refuse bool
		want   string // args.query as JSON, when accepted
	}{
		{"amount=1&to=bob", false, `{"amount":"1","to":"bob"}`},
		{"to=b%C3%B6b&to=eve", false, `{"to":["böb","eve"]}`},
		{"amount=1&amount=%zz", true, ""},
		{"amount=1;amount=99999", true, ""},
		{"to=%ff", true, ""},
		{"%fe=1", true, ""},
		{"to=bob%ed%a0%80", true, ""}, // a UTF-8-encoded surrogate is not UTF-8
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/http/t/x?"+c.query, nil)
			_, raw, _, err := requestArguments(r, nil, opts)
			if c.refuse {
				if err == nil || warden.HTTPStatus(err) != http.StatusBadRequest {
					t.Fatalf("err = %v, args %s; want a 400", err, raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var args map[string]json.RawMessage
			if err := json.Unmarshal(raw, &args); err != nil {
				t.Fatal(err)
			}
			if string(args["query"]) != c.want {
				t.Errorf("args.query = %s, want %s", args["query"], c.want)
			}
		})
	}
}

// FuzzRequestArguments: whatever the body and its label, requestArguments does not panic; what
// it forwards is the body as sent, bound by its digest; and a body that is JSON within the
// inspection limit is never forwarded uninspected.
func FuzzRequestArguments(f *testing.F) {
	for _, s := range [][2]string{
		{"application/json", `{"amount":1}`}, {"text/plain", `{"to":"bob","amount":1}`}, {"", `[1]`},
		{"application/x-www-form-urlencoded", "a=1"}, {"text/plain", "[INFO]"}, {"", "\xef\xbb\xbf{}"},
		{"application/json", `{"a":1,"a":2}`}, {"application/json; charset=\"", "{}"}, {"", "  \n"},
	} {
		f.Add(s[0], s[1])
	}
	opts := &HTTPOptions{MaxRequestBody: 256, MaxInspectBody: 128}
	opts.defaults()
	f.Fuzz(func(t *testing.T, contentType, payload string) {
		r := httptest.NewRequest("POST", "/http/t/x", strings.NewReader(payload))
		r.Header.Set("Content-Type", contentType)
		body, raw, inspected, err := requestArguments(r, nil, opts)
		if err != nil {
			if s := warden.HTTPStatus(err); s != http.StatusBadRequest && s != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %v", s, err)
			}
			return
		}
		var args map[string]json.RawMessage
		if err := json.Unmarshal(raw, &args); err != nil {
			t.Fatalf("args %q: %v", raw, err)
		}
		if got, _ := io.ReadAll(body); string(got) != payload {
			t.Fatalf("forwarded %q, sent %q", got, payload)
		}
		if payload != "" {
			sum := sha256.Sum256([]byte(payload))
			if string(args["body_sha256"]) != `"`+hex.EncodeToString(sum[:])+`"` {
				t.Fatalf("body_sha256 %s", args["body_sha256"])
			}
		}
		trimmed := strings.TrimLeft(payload, " \t\r\n")
		if json.Valid([]byte(payload)) && (strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")) && (!inspected || args["body"] == nil) {
			t.Fatalf("a JSON body went uninspected: %q", payload)
		}
		if !inspected && args["body"] != nil {
			t.Fatalf("uninspected, yet args.body: %s", raw)
		}
	})
}

// FuzzRequestQuery: whatever the raw query, requestArguments refuses it with a 400 or shows policy
// exactly the pairs url.ParseQuery reads from it, every one UTF-8 text.
func FuzzRequestQuery(f *testing.F) {
	for _, s := range []string{"a=1", "a=1&a=2", "a=%zz", "a;b", "%ff=1", "a=b%ed%a0%80", "a", "=", "&&", "a=%2"} {
		f.Add(s)
	}
	opts := &HTTPOptions{}
	opts.defaults()
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest("GET", "/http/t/x", nil)
		r.URL.RawQuery = rawQuery
		_, raw, _, err := requestArguments(r, nil, opts)
		if err != nil {
			if s := warden.HTTPStatus(err); s != http.StatusBadRequest {
				t.Fatalf("status %d: %v", s, err)
			}
			return
		}
		want, perr := url.ParseQuery(rawQuery)
		if perr != nil {
			t.Fatalf("accepted a query url.ParseQuery refuses: %v", perr)
		}
		var args struct {
			Query map[string]any `json:"query"`
		}
		if err := json.Unmarshal(raw, &args); err != nil {
			t.Fatal(err)
		}
		if len(args.Query) != len(want) {
			t.Fatalf("policy sees %d keys, the query has %d", len(args.Query), len(want))
		}
		for k, vs := range want {
			got := args.Query[k]
			if len(vs) == 1 {
				if got != vs[0] {
					t.Fatalf("%q: policy sees %v, the query has %q", k, got, vs[0])
				}
				continue
			}
			list, _ := got.([]any)
			if len(list) != len(vs) {
				t.Fatalf("%q: policy sees %v, the query has %q", k, got, vs)
			}
			for i := range vs {
				if list[i] != vs[i] {
					t.Fatalf("%q: policy sees %v, the query has %q", k, got, vs)
				}
			}
		}
	})
}
