package loopback

import (
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
)

func TestHostAndOrigin(t *testing.T) {
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true}, {"127.0.0.1:8788", true}, {"[::1]:8788", true}, {"[::1]", true}, {"::1", true},
		{"localhost", true}, {"localhost:8788", true}, {"127.0.0.2:80", true},
		{"", false}, {"evil.example.com", false}, {"evil.example.com:8788", false}, {"127.0.0.1.nip.io", false},
		{"localhost.", false}, {"LOCALHOST.example.com", false}, {"0.0.0.0:8788", false}, {"192.168.1.2", false},
		{"[::]:80", false}, {"localhost.evil.example.com:80", false},
	} {
		if got := Host(c.host); got != c.ok {
			t.Errorf("Host(%q) = %v, want %v", c.host, got, c.ok)
		}
	}
	for _, c := range []struct {
		origin string
		ok     bool
	}{
		{"http://127.0.0.1:8788", true}, {"https://localhost", true}, {"http://[::1]:3000", true}, {"http://localhost:3000", true},
		{"http://evil.example.com", false}, {"null", false}, {"", false}, {"file://", false}, {"ftp://localhost", false},
		{"http://localhost@evil.example.com", false}, {"http://evil.example.com#@localhost", false}, {"http://127.0.0.1.evil.example.com", false},
		{"http://localhost/path", false}, {"http://localhost?x", false}, {"localhost:8788", false}, {"//localhost", false},
		{"chrome-extension://abcdef", false},
	} {
		if got := Origin(c.origin); got != c.ok {
			t.Errorf("Origin(%q) = %v, want %v", c.origin, got, c.ok)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		host, origin, fetchSite string
		err                     error
	}{
		{"127.0.0.1:8788", "", "", nil},
		{"localhost:8788", "http://localhost:3000", "same-site", nil},
		{"127.0.0.1:8788", "http://127.0.0.1:3000", "cross-site", nil}, // a local page on another port
		{"127.0.0.1:8788", "", "same-origin", nil},
		{"127.0.0.1:8788", "", "none", nil},
		{"evil.example.com", "http://evil.example.com", "same-origin", ErrHost}, // DNS rebinding
		{"evil.example.com:8788", "", "", ErrHost},
		{"127.0.0.1:8788", "http://evil.example.com", "cross-site", ErrOrigin},
		{"127.0.0.1:8788", "null", "cross-site", ErrOrigin},
		{"127.0.0.1:8788", "", "cross-site", ErrCrossSite}, // a GET from <img src>, say
	} {
		r := httptest.NewRequest("POST", "http://127.0.0.1/mcp", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", c.fetchSite)
		}
		if err := Check(r); err != c.err {
			t.Errorf("%+v: %v, want %v", c, err, c.err)
		}
	}
	r := httptest.NewRequest("POST", "http://127.0.0.1/mcp", nil)
	r.Host = "127.0.0.1"
	r.Header.Add("Origin", "http://localhost")
	r.Header.Add("Origin", "http://evil.example.com")
	if Check(r) != ErrOrigin {
		t.Error("a second Origin header that is not this machine passed")
	}
}

// Whatever Origin accepts names this machine: its host is localhost or a loopback address, and
// its scheme http or https.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8788", "https://[::1]", "http://localhost", "null", "http://a@localhost", "http://[::ffff:127.0.0.1]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		if !Origin(origin) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("Origin(%q) with scheme %v, %v", origin, u, err)
		}
		if h := u.Hostname(); h != "localhost" {
			if ip, err := netip.ParseAddr(h); err != nil || !ip.IsLoopback() {
				t.Fatalf("Origin(%q) names host %q", origin, h)
			}
		}
	})
}
