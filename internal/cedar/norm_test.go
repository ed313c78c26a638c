package cedar

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// TestNormalise: each format's normalised form, and the values that have none.
func TestNormalise(t *testing.T) {
	url := func(scheme, host string, port int64, path, full string) types.Value {
		return types.NewRecord(types.RecordMap{attrScheme: types.String(scheme), attrHost: types.String(host),
			attrPort: types.Long(port), attrPath: types.String(path), attrURL: types.String(full)})
	}
	tests := []struct {
		format, in string
		want       types.Value // nil: refused, with wantErr in the message
		wantErr    string
	}{
		{formatEmail, "Linda.Green@ACME.Example", types.String("linda.green@acme.example"), ""},
		{formatEmail, "linda@bücher.example.", types.String("linda@xn--bcher-kva.example"), ""},
		{formatEmail, "linda", nil, "not an e-mail address"},
		{formatEmail, "@acme.example", nil, "not an e-mail address"},
		{formatEmail, "a b@acme.example", nil, "spaces, control characters"},
		{formatEmail, "linda@-acme.example", nil, "its domain is not a valid domain name"},
		{formatHostname, "API.Example.COM.", types.String("api.example.com"), ""},
		{formatHostname, "bad host", nil, "not a hostname"},
		{formatHostname, "a..b", nil, "not a hostname"},
		{formatURI, "HTTPS://API.Example.com/v1/pay/", url("https", "api.example.com", 443, "/v1/pay", "https://api.example.com/v1/pay"), ""},
		{formatURL, "https://api.example.com", url("https", "api.example.com", 443, "/", "https://api.example.com/"), ""},
		{formatURI, "http://api.example.com:8080/a/../b//c?x=1#frag", url("http", "api.example.com", 8080, "/b/c", "http://api.example.com:8080/b/c?x=1"), ""},
		{formatURI, "https://api.example.com:443/", url("https", "api.example.com", 443, "/", "https://api.example.com/"), ""},
		{formatURI, "https://[::1]:8443/x", url("https", "::1", 8443, "/x", "https://[::1]:8443/x"), ""},
		{formatURI, "https://trusted.example@evil.example/", nil, "user information"},
		{formatURI, "/relative/path", nil, "not an absolute URL"},
		{formatURI, "mailto:linda@acme.example", nil, "not an absolute URL"},
		{formatURI, "https://exa mple.com/", nil, "spaces, control characters"},
		{formatURI, "https://" + strings.Repeat("a", 5000) + ".example/", nil, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			got, err := normalise(tt.format, tt.in)
			switch {
			case tt.want == nil && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, %v; want an error with %q", got, err, tt.wantErr)
			case tt.want != nil && (err != nil || !got.Equal(tt.want)):
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

const contactSchema = `{"type": "object", "properties": {
  "to": {"type": "string", "format": "email"},
  "cc": {"type": "array", "items": {"type": "string", "format": "email"}},
  "callback": {"type": "string", "format": "uri"},
  "note": {"type": "string"}
}}`

func contactTools() []*warden.Tool {
	return append(testTools(), &warden.Tool{Name: "mail", Kind: warden.ToolDecisionOnly, Risk: warden.RiskLow,
		Actions: []warden.ToolAction{{Name: "send", InputSchema: json.RawMessage(contactSchema)}}})
}

// TestDecideNorm: a policy compares context.norm — the address book in lower case, the URL's
// host and cleaned path — so that Linda.Green@ACME.example and a trailing slash match; a
// value the schema's format refuses is invalid_arguments before policy.
func TestDecideNorm(t *testing.T) {
	tools := contactTools()
	e, err := Compile(map[string]string{"p.cedar": `
@id("book") permit(principal, action == Action::"mail:send", resource) when {
  context.norm.to == "linda.green@acme.example" &&
  (!(context.norm has cc) || ["linda.green@acme.example", "ap@supplier.example"].containsAll(context.norm.cc)) &&
  (!(context.norm has callback) || context.norm.callback.host == "hooks.acme.example" && context.norm.callback.path == "/pay")
};`}, tools, 1)
	if err != nil {
		t.Fatal(err)
	}
	decide := func(args map[string]any) warden.Decision {
		return e.Decide(&warden.Request{Agent: testAgent("bot"), Tool: tools[len(tools)-1], Action: "send", Arguments: args, Time: testNow})
	}
	for _, tc := range []struct {
		args           map[string]any
		effect, reason string
	}{
		{map[string]any{"to": "Linda.Green@ACME.example"}, warden.EffectAllow, warden.ReasonPolicyAllow},
		{map[string]any{"to": "linda.green@acme.example", "cc": []any{"AP@Supplier.Example"}}, warden.EffectAllow, warden.ReasonPolicyAllow},
		{map[string]any{"to": "linda.green@acme.example", "cc": []any{"mallory@evil.example"}}, warden.EffectDeny, warden.ReasonNoMatchingPolicy},
		{map[string]any{"to": "linda.green@acme.example", "callback": "https://HOOKS.acme.example/pay/"}, warden.EffectAllow, warden.ReasonPolicyAllow},
		{map[string]any{"to": "linda.green@acme.example", "callback": "https://hooks.acme.example.evil.example/pay"}, warden.EffectDeny, warden.ReasonNoMatchingPolicy},
		{map[string]any{"to": "linda.green@acme.example", "callback": "https://hooks.acme.example@evil.example/pay"}, warden.EffectDeny, warden.ReasonInvalidArguments},
		{map[string]any{"to": "not an address"}, warden.EffectDeny, warden.ReasonInvalidArguments},
		{map[string]any{"to": "mallory@evil.example"}, warden.EffectDeny, warden.ReasonNoMatchingPolicy},
	} {
		if d := decide(tc.args); d.Effect != tc.effect || d.Reason != tc.reason {
			t.Errorf("%v: %s %s (%s), want %s %s", tc.args, d.Effect, d.Reason, d.Message, tc.effect, tc.reason)
		}
	}
}

// TestNormOnlyWhenRead: context.norm is built only when some policy reads it.
func TestNormOnlyWhenRead(t *testing.T) {
	tools := contactTools()
	r := &warden.Request{Agent: testAgent("bot"), Tool: tools[len(tools)-1], Action: "send", Time: testNow,
		Arguments: map[string]any{"to": "Linda@ACME.example", "cc": []any{"a@b.example"}, "callback": "https://x.example/"}}
	allocs := func(policy string) float64 {
		e, err := Compile(map[string]string{"main.cedar": policy}, tools, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := e.Decide(r); d.Effect != warden.EffectAllow {
			t.Fatalf("%s: %+v", policy, d)
		}
		return testing.AllocsPerRun(50, func() { e.Decide(r) })
	}
	without := allocs(`@id("p") permit(principal, action, resource) when { context.args.to like "*@*" };`)
	with := allocs(`@id("p") permit(principal, action, resource) when { context.norm.to like "*@*" };`)
	if without >= with {
		t.Errorf("a decision takes %v allocations when no policy reads context.norm, %v when one does", without, with)
	}
}

// FuzzNormalise: normalising never panics, and a normalised value normalises to itself — an
// allowlist written in normalised form matches every spelling of its entries.
func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"Linda.Green@ACME.Example", "linda@bücher.example.", "HTTPS://API.Example.com:443/v1/../pay/?q=1#f",
		"http://[::1]:8080/a//b", "api.EXAMPLE.com.", "a@b@c", "https://x.example:99999/", "ftp://Files.Example/dir/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, format := range []string{formatEmail, formatHostname, formatURI} {
			v, err := normalise(format, s)
			if err != nil {
				continue
			}
			again := ""
			switch v := v.(type) {
			case types.String:
				again = string(v)
			case types.Record:
				u, _ := v.Get(attrURL)
				again = string(u.(types.String))
			}
			w, err := normalise(format, again)
			if err != nil || !w.Equal(v) {
				t.Fatalf("%s %q: %v, then %q: %v, %v", format, s, v, again, w, err)
			}
		}
	})
}
