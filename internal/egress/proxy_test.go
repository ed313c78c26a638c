package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePolicy allows exactly the resources it lists ("*" as a host allows every host on that
// port) and records every decision and outcome.
type fakePolicy struct {
	mu        sync.Mutex
	allow     map[string]bool
	asked     []Request
	outcomes  map[string]Outcome
	recorded  chan struct{} // closed and replaced on every outcome, for tests waiting on one
	n         int
	unreached bool
}

func (f *fakePolicy) Decide(ctx context.Context, r Request) (Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unreached {
		return Decision{}, fmt.Errorf("server down")
	}
	f.asked = append(f.asked, r)
	f.n++
	id := fmt.Sprintf("dec_%d", f.n)
	if f.allow[r.Target.Resource()] || f.allow[fmt.Sprintf("*:%d", r.Target.Port)] {
		return Decision{ID: id, Allowed: true, Reason: "policy_allow"}, nil
	}
	return Decision{ID: id, Reason: "no_matching_policy", Message: "no policy allows it"}, nil
}

func (f *fakePolicy) Outcome(ctx context.Context, id string, o Outcome) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outcomes == nil {
		f.outcomes = map[string]Outcome{}
	}
	f.outcomes[id] = o
	if f.recorded != nil {
		close(f.recorded)
	}
	f.recorded = make(chan struct{})
	return nil
}

// next returns a channel closed on the next outcome.
func (f *fakePolicy) next() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recorded == nil {
		f.recorded = make(chan struct{})
	}
	return f.recorded
}

func (f *fakePolicy) outcome(id string) (Outcome, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.outcomes[id]
	return o, ok
}

type fakeResolver map[string][]string

func (r fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range r[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return out, nil
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		port     int
		literal  bool
	}{
		{"api.github.com:443", "api.github.com", 443, false},
		{"API.GitHub.com.:443", "api.github.com", 443, false},
		{"127.0.0.1:80", "127.0.0.1", 80, true},
		{"[::1]:443", "::1", 443, true},
		{"[::ffff:10.0.0.1]:443", "10.0.0.1", 443, true},
	} {
		got, err := ParseTarget(tc.in, 0)
		if err != nil || got.Host != tc.host || got.Port != tc.port || got.Literal() != tc.literal {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"127.1:80", "2130706433:80", "0x7f.0.0.1:80", "0x7f000001:80", "a b:80", "h:0", "h:65536", "h:080",
		"[fe80::1%eth0]:80", "exa\u00e9mple.com:443", "-a.com:80", ".com:80", "a..b:80", "x:", strings.Repeat("a", 64) + ".com:80"} {
		if got, err := ParseTarget(bad, 0); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestHostPatterns(t *testing.T) {
	p, err := ParseHostPattern("*.github.com")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"api.github.com": true, "a.b.github.com": true, "github.com": false, "evilgithub.com": false,
		"github.com.evil.test": false, "api.github.com.evil.test": false,
	} {
		tgt, _ := ParseTarget(host+":443", 0)
		if got := p.Match(tgt); got != want {
			t.Errorf("*.github.com vs %s: %v, want %v", host, got, want)
		}
	}
	p, _ = ParseHostPattern("example.com:8443")
	for hp, want := range map[string]bool{"example.com:8443": true, "example.com:443": false, "www.example.com:8443": false} {
		tgt, _ := ParseTarget(hp, 0)
		if p.Match(tgt) != want {
			t.Errorf("example.com:8443 vs %s: want %v", hp, want)
		}
	}
	for _, bad := range []string{"*", "*.", "a.*.com", "**.com", "x:0", "exa mple.com"} {
		if _, err := ParseHostPattern(bad); err == nil {
			t.Errorf("ParseHostPattern(%q) accepted", bad)
		}
	}
}

func TestRefusedRanges(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
		"100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fc00::1", "fd12::1",
		"fe80::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001::1", "198.18.0.1"} {
		if _, bad := Refused(netip.MustParseAddr(s)); !bad {
			t.Errorf("%s is not refused", s)
		}
	}
	for _, s := range []string{"140.82.112.3", "1.1.1.1", "100.128.0.1", "2606:4700::1111", "172.32.0.1"} {
		if p, bad := Refused(netip.MustParseAddr(s)); bad {
			t.Errorf("%s is refused (%s)", s, p)
		}
	}
}

// upstream is an HTTP server on 127.0.0.2, which the proxy may reach only because the test
// says so (Reachable).
func upstream(t *testing.T, port int, tlsConf bool) (*httptest.Server, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from upstream, host %s", r.Host)
	}))
	srv.Listener = ln
	if tlsConf {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, netip.MustParseAddrPort(ln.Addr().String())
}

func startProxy(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// connect sends CONNECT target through the proxy and returns the connection and status.
func connect(t *testing.T, proxy, target string) (net.Conn, *bufio.Reader, int, string) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return c, br, resp.StatusCode, resp.Header.Get("Warden-Reason")
}

func TestProxy(t *testing.T) {
	_, up := upstream(t, 0, false)
	port := int(up.Port())
	pol := &fakePolicy{allow: map[string]bool{
		fmt.Sprintf("allowed.test:%d", port):    true,
		fmt.Sprintf("rebind.test:%d", port):     true,
		fmt.Sprintf("mixed.test:%d", port):      true,
		fmt.Sprintf("127.0.0.1:%d", port):       true,
		fmt.Sprintf("169.254.169.254:%d", port): true,
		fmt.Sprintf("10.0.0.1:%d", port):        true,
	}}
	p := &Proxy{
		Decider:   pol,
		Resolver:  fakeResolver{"allowed.test": {"127.0.0.2"}, "rebind.test": {"127.0.0.1"}, "mixed.test": {"127.0.0.2", "10.0.0.1"}, "denied.test": {"127.0.0.2"}},
		Reachable: []netip.AddrPort{up},
		Timeout:   2 * time.Second,
	}
	var refusedMu sync.Mutex
	var refused []string
	p.Refused = func(_ context.Context, t Target, reason, _ string) {
		refusedMu.Lock()
		defer refusedMu.Unlock()
		refused = append(refused, t.Resource()+" "+reason)
	}
	addr := startProxy(t, p)

	// Allowed: a tunnel carries HTTP to the upstream, and the outcome counts the bytes.
	c, br, status, _ := connect(t, addr, fmt.Sprintf("allowed.test:%d", port))
	if status != 200 {
		t.Fatalf("allowed CONNECT: %d", status)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
	body, _ := io.ReadAll(br)
	c.Close()
	if !strings.Contains(string(body), "hello from upstream") {
		t.Fatalf("through the tunnel: %q", body)
	}
	waitOutcome(t, pol, "dec_1", func(o Outcome) bool {
		return o.Status == "ok" && o.BytesIn > 0 && o.BytesOut > 0 && o.Addr == up.String()
	})

	// Plain HTTP through the proxy.
	proxyURL := "http://" + addr
	pu, _ := url.Parse(proxyURL)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := hc.Get(fmt.Sprintf("http://allowed.test:%d/x", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "host allowed.test") {
		t.Fatalf("plain HTTP: %d %q", resp.StatusCode, b)
	}

	for _, tc := range []struct {
		target, reason string
	}{
		{fmt.Sprintf("denied.test:%d", port), "no_matching_policy"},
		{fmt.Sprintf("rebind.test:%d", port), "address_refused"},
		{fmt.Sprintf("mixed.test:%d", port), "address_refused"},
		{fmt.Sprintf("127.0.0.1:%d", port), "address_refused"},
		{fmt.Sprintf("169.254.169.254:%d", port), "address_refused"},
		{fmt.Sprintf("10.0.0.1:%d", port), "address_refused"},
		{fmt.Sprintf("127.0.0.2:%d", port), "no_matching_policy"},
		{"127.1:80", "bad_target"},
	} {
		c, _, status, reason := connect(t, addr, tc.target)
		c.Close()
		if status == 200 || reason != tc.reason {
			t.Errorf("CONNECT %s: %d %q, want refused with %q", tc.target, status, reason, tc.reason)
		}
	}
	// Only the denials are refusals of their own: an address refused after policy allowed the
	// name is recorded once, by that decision's canceled outcome.
	refusedMu.Lock()
	got := slices.Clone(refused)
	refusedMu.Unlock()
	if want := []string{fmt.Sprintf("denied.test:%d no_matching_policy", port), fmt.Sprintf("127.0.0.2:%d no_matching_policy", port)}; !slices.Equal(got, want) {
		t.Errorf("refusals reported %q, want %q", got, want)
	}
	// The names were judged before anything was resolved: denied.test was asked about, and
	// no decision carries an address for a name.
	for _, r := range pol.asked {
		if !r.Target.Literal() && Arguments(r)["ip"] != nil {
			t.Errorf("a name was decided with an address: %+v", r)
		}
	}
}

func TestProxyIPLiterals(t *testing.T) {
	_, up := upstream(t, 0, false)
	port := int(up.Port())
	target := fmt.Sprintf("127.0.0.2:%d", port)
	// A policy that allows any host does not name the literal: refused.
	pol := &fakePolicy{allow: map[string]bool{fmt.Sprintf("*:%d", port): true}}
	addr := startProxy(t, &Proxy{Decider: pol, Reachable: []netip.AddrPort{up}})
	c, _, status, reason := connect(t, addr, target)
	c.Close()
	if status == 200 || reason != "ip_literal_not_named" {
		t.Fatalf("literal under an allow-all policy: %d %q", status, reason)
	}
	// A policy that names it: allowed.
	pol2 := &fakePolicy{allow: map[string]bool{target: true}}
	addr2 := startProxy(t, &Proxy{Decider: pol2, Reachable: []netip.AddrPort{up}})
	c, _, status, _ = connect(t, addr2, target)
	c.Close()
	if status != 200 {
		t.Fatalf("named literal: %d", status)
	}
}

func TestProxyAllowHostNarrows(t *testing.T) {
	_, up := upstream(t, 0, false)
	port := int(up.Port())
	pol := &fakePolicy{allow: map[string]bool{fmt.Sprintf("*:%d", port): true}}
	api, _ := ParseHostPattern("*.github.test")
	p := &Proxy{Decider: pol, Resolver: fakeResolver{"api.github.test": {"127.0.0.2"}, "other.test": {"127.0.0.2"}},
		Reachable: []netip.AddrPort{up}, AllowHosts: []HostPattern{api}}
	addr := startProxy(t, p)
	c, _, status, reason := connect(t, addr, fmt.Sprintf("other.test:%d", port))
	c.Close()
	if status == 200 || reason != "not_in_allow_host" {
		t.Fatalf("host outside the run's list: %d %q", status, reason)
	}
	c, _, status, _ = connect(t, addr, fmt.Sprintf("api.github.test:%d", port))
	c.Close()
	if status != 200 {
		t.Fatalf("host in the run's list and allowed by policy: %d", status)
	}
	if len(pol.asked) != 1 || !pol.asked[0].AllowHost || Arguments(pol.asked[0])["allow_host"] != true {
		t.Fatalf("policy should be asked once, with allow_host: %+v", pol.asked)
	}
	// Policy still has the last word.
	pol.allow = map[string]bool{}
	c, _, status, _ = connect(t, addr, fmt.Sprintf("api.github.test:%d", port))
	c.Close()
	if status == 200 {
		t.Fatal("--allow-host widened what policy allows")
	}
}

func TestProxyFailsClosed(t *testing.T) {
	_, up := upstream(t, 0, false)
	pol := &fakePolicy{unreached: true}
	addr := startProxy(t, &Proxy{Decider: pol, Resolver: fakeResolver{"a.test": {"127.0.0.2"}}, Reachable: []netip.AddrPort{up}})
	c, _, status, reason := connect(t, addr, fmt.Sprintf("a.test:%d", up.Port()))
	c.Close()
	if status != 503 || reason != "decision_unavailable" {
		t.Fatalf("decision API down: %d %q", status, reason)
	}
}

func TestProxySNI(t *testing.T) {
	srv, up := upstream(t, 443, true)
	_ = srv
	pol := &fakePolicy{allow: map[string]bool{"api.example.test:443": true}}
	addr := startProxy(t, &Proxy{Decider: pol, Resolver: fakeResolver{"api.example.test": {"127.0.0.2"}}, Reachable: []netip.AddrPort{up}, Timeout: 2 * time.Second})
	try := func(sni string) error {
		c, br, status, _ := connect(t, addr, "api.example.test:443")
		defer c.Close()
		if status != 200 {
			return fmt.Errorf("CONNECT: %d", status)
		}
		tc := tls.Client(&bufferedConn{Conn: c, r: br}, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(3 * time.Second))
		return tc.Handshake()
	}
	if err := try("api.example.test"); err != nil {
		t.Fatalf("matching SNI: %v", err)
	}
	if err := try("evil.example.test"); err == nil {
		t.Fatal("a ClientHello for another host went through a tunnel opened for api.example.test")
	}
	// Not TLS at all on 443: refused too.
	c, br, _, _ := connect(t, addr, "api.example.test:443")
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, _ := io.ReadAll(br); len(b) != 0 {
		t.Fatalf("plain text through a 443 tunnel got an answer: %q", b)
	}
	c.Close()
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func waitOutcome(t *testing.T, pol *fakePolicy, id string, ok func(Outcome) bool) {
	t.Helper()
	giveUp := time.After(5 * time.Second)
	for {
		next := pol.next()
		if o, found := pol.outcome(id); found {
			if !ok(o) {
				t.Fatalf("outcome of %s: %+v", id, o)
			}
			return
		}
		select {
		case <-next: // the proxy reports an outcome when the connection ends
		case <-giveUp:
			t.Fatalf("no outcome for %s", id)
		}
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = readClientHello(bufio.NewReader(strings.NewReader(string(b))))
	})
}
