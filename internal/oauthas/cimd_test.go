package oauthas

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientMetadataDocuments: a client ID metadata document is fetched only from a public
// address unless its host is allowed, never through a redirect, must name its own URL as
// client_id and stay within the size limit; what was fetched is cached.
func TestClientMetadataDocuments(t *testing.T) {
	t.Parallel()
	fetches := 0
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches++
		switch r.URL.Path {
		case "/client.json":
			w.Write([]byte(`{"client_id":"` + srv.URL + `/client.json","client_name":"Doc","redirect_uris":["http://127.0.0.1:3/cb"],"token_endpoint_auth_method":"none"}`))
		case "/other.json":
			w.Write([]byte(`{"client_id":"https://elsewhere.example/client.json","redirect_uris":["http://127.0.0.1:3/cb"]}`))
		case "/big.json":
			w.Write([]byte(`{"client_id":"` + srv.URL + `/big.json","redirect_uris":["http://127.0.0.1:3/cb"],"x":"` + strings.Repeat("a", maxMetadataDoc) + `"}`))
		case "/redirect.json":
			http.Redirect(w, r, "/target.json", http.StatusFound)
		case "/target.json": // what /redirect.json would be, were redirects followed
			w.Write([]byte(`{"client_id":"` + srv.URL + `/redirect.json","redirect_uris":["http://127.0.0.1:3/cb"]}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	closed := New(Config{Issuer: "http://127.0.0.1:8787"})
	closed.MetadataTLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
	if _, err := closed.metadataClient(ctx, srv.URL+"/client.json"); err == nil || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("a loopback document without the allow-list: %v, want refused", err)
	}
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	s := New(Config{Issuer: "http://127.0.0.1:8787", MetadataPrivateHosts: []string{host}})
	s.MetadataTLS = closed.MetadataTLS
	c, err := s.metadataClient(ctx, srv.URL+"/client.json")
	if err != nil || c.Name != "Doc" || c.ID != srv.URL+"/client.json" || len(c.RedirectURIs) != 1 {
		t.Fatalf("document: %+v, %v", c, err)
	}
	if _, err := s.metadataClient(ctx, srv.URL+"/client.json"); err != nil || fetches != 1 {
		t.Fatalf("second lookup: %v, %d fetches; want it cached", err, fetches)
	}
	for _, path := range []string{"/other.json", "/big.json", "/redirect.json"} {
		if c, err := s.metadataClient(ctx, srv.URL+path); err == nil {
			t.Errorf("%s: accepted %+v", path, c)
		}
	}
	for _, id := range []string{"http://a.example/c.json", "https://a.example/", "https://a.example", "https://u@a.example/c", "cli_1"} {
		if isMetadataURL(id) {
			t.Errorf("%q taken for a metadata document URL", id)
		}
	}
}

func TestPublicIP(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "10.1.2.3": false, "192.168.0.1": false, "172.16.5.4": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
	} {
		if got := publicIP(net.ParseIP(ip)); got != want {
			t.Errorf("publicIP(%s) = %v, want %v", ip, got, want)
		}
	}
}
