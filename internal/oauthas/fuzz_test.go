package oauthas

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

var fuzzClient = &warden.OAuthClient{ID: "cli_1", Name: "c", RedirectURIs: []string{"http://127.0.0.1:9/cb", "https://app.example/cb", "cursor://x/cb"}}

func fuzzLookup(id string) *warden.OAuthClient {
	if id == fuzzClient.ID {
		return fuzzClient
	}
	return nil
}

const fuzzIssuer = "http://127.0.0.1:8787"

func fuzzResource(r string) bool { return r == fuzzIssuer+"/mcp" || r == fuzzIssuer+"/mcp/notes" }

// FuzzParseAuthorize: any query either yields a request whose redirect URI is one the client
// registered (or its loopback port variant) and whose every field is within bounds, or an
// error; before the redirect URI is known to be the client's, only a page error.
func FuzzParseAuthorize(f *testing.F) {
	ok := "client_id=cli_1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=S256&state=xyz"
	for _, seed := range []string{
		ok,
		ok + "&resource=http%3A%2F%2F127.0.0.1%3A8787%2Fmcp%2Fnotes&scope=mcp+read",
		strings.Replace(ok, "127.0.0.1%3A9", "127.0.0.1%3A5555", 1),
		strings.Replace(ok, "127.0.0.1%3A9", "evil.example", 1),
		strings.Replace(ok, "S256", "plain", 1),
		ok + "&client_id=cli_1",
		"client_id=cli_1",
		"",
		"client_id=cli_1&redirect_uri=cursor%3A%2F%2Fx%2Fcb&response_type=token",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, c, err := parseAuthorize(q, fuzzLookup, fuzzResource, fuzzIssuer+"/mcp")
		var pe *pageError
		var re *redirectError
		switch {
		case err == nil:
			if c != fuzzClient || !redirectMatches(c.RedirectURIs, req.RedirectURI) || !challengeRE.MatchString(req.Challenge) ||
				!fuzzResource(req.Resource) || len(req.State) > maxState || len(req.Scope) > maxScope {
				t.Fatalf("accepted %q as %+v", raw, req)
			}
		case errors.As(err, &re):
			if req == nil || !redirectMatches(fuzzClient.RedirectURIs, req.RedirectURI) {
				t.Fatalf("%q: an error sent to an unvalidated redirect URI %+v", raw, req)
			}
		case errors.As(err, &pe):
		default:
			t.Fatalf("%q: error of type %T", raw, err)
		}
	})
}

// FuzzParseRegistration: a registration is accepted only with valid redirect URIs, a public
// auth method and a printable name; nothing panics.
func FuzzParseRegistration(f *testing.F) {
	for _, seed := range []string{
		`{"redirect_uris":["http://127.0.0.1:9/cb"],"client_name":"x","token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"redirect_uris":["https://a.example/cb"],"software_id":"y","logo_uri":"https://a.example/l.png"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":["http://evil.example/cb"]}`,
		`{"redirect_uris":["https://a.example/cb"]}{}`,
		`{"redirect_uris":null}`,
		`[]`,
		`{"redirect_uris":["com.example.app:/cb"],"client_name":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reg, re := parseRegistration(body)
		if re != nil {
			if reg != nil || re.Code == "" || re.Status != 400 {
				t.Fatalf("refusal %+v with %+v", re, reg)
			}
			return
		}
		if len(reg.RedirectURIs) == 0 || len(reg.RedirectURIs) > maxRedirects || (reg.TokenEndpointAuthMethod != "" && reg.TokenEndpointAuthMethod != "none") {
			t.Fatalf("accepted %q", body)
		}
		for _, u := range reg.RedirectURIs {
			if validRedirect(u) != nil {
				t.Fatalf("accepted redirect URI %q", u)
			}
			if p, _ := url.Parse(u); p.Scheme == "http" && !loopbackHost(p.Hostname()) {
				t.Fatalf("accepted http redirect URI %q to a host that is not loopback", u)
			}
		}
	})
}

// FuzzParseMetadataDoc: a fetched client ID metadata document is accepted only when it names
// its own URL and lists valid redirect URIs.
func FuzzParseMetadataDoc(f *testing.F) {
	const id = "https://app.example/client.json"
	for _, seed := range []string{
		`{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1/cb"]}`,
		`{"client_id":"https://evil.example/client.json","redirect_uris":["http://127.0.0.1/cb"]}`,
		`{"client_id":"https://app.example/client.json","redirect_uris":["http://evil.example/cb"]}`,
		`{"client_id":"https://app.example/client.json","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseMetadataDoc(id, body)
		if err != nil {
			return
		}
		if c.ID != id || len(c.RedirectURIs) == 0 || c.Name == "" {
			t.Fatalf("accepted %q as %+v", body, c)
		}
		for _, u := range c.RedirectURIs {
			if validRedirect(u) != nil {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}
