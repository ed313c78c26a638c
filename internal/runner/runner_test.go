package runner

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/connect"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/sandbox"
	"github.com/wardenhq/warden/internal/skill"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if os.Getenv("WARDEN_PROBE") != "" {
		os.Exit(probe(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// probe is what runs inside the sandbox: it prints what it got and exits 0 on success.
func probe(args []string) int {
	switch args[0] {
	case "get":
		// Through HTTP_PROXY always (Go's own proxy logic would go straight to loopback
		// addresses), except to WARDEN_URL.
		req, _ := http.NewRequest(args[1], args[2], nil)
		tr := &http.Transport{}
		if !strings.HasPrefix(args[2], os.Getenv("WARDEN_URL")) {
			pu, _ := url.Parse(os.Getenv("HTTP_PROXY"))
			tr.Proxy = http.ProxyURL(pu)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Do(req)
		if err != nil {
			fmt.Println("error:", err)
			return 3
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, b)
		if resp.StatusCode != 200 {
			return 3
		}
		return 0
	case "tls":
		// TLS through HTTPS_PROXY to args[1] with the server name args[2].
		c, err := net.Dial("tcp", strings.TrimPrefix(os.Getenv("HTTPS_PROXY"), "http://"))
		if err != nil {
			fmt.Println("error:", err)
			return 3
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", args[1], args[1])
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			fmt.Println("CONNECT refused:", err, resp)
			return 3
		}
		tc := tls.Client(&readerConn{Conn: c, r: br}, &tls.Config{ServerName: args[2], InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			fmt.Println("handshake:", err)
			return 3
		}
		return 0
	case "sleep":
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
		return 0
	case "exit":
		var code int
		fmt.Sscan(args[1], &code)
		return code
	case "skills":
		return probeSkill(args[1])
	}
	return 2
}

type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// fakeServer speaks the parts of warden's API a runner uses.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	refuse     bool        // registration answers 403
	lease      int         // lease_seconds
	silent     bool        // the control stream sends nothing
	terminate  chan string // a reason sent here becomes a terminate event
	allow      func(resource string, args map[string]any) bool
	decisions  []map[string]any
	outcomes   map[string]map[string]any
	reports    []Report
	deregister int
	gateway    []string // Authorization headers seen on /http/
	registered []apitype.RunnerRequest
	conflict   bool              // registration answers 409, as for a quarantined skill
	skills     map[string][]byte // the archive served for each skill the agent is granted
	served     map[string]string // Warden-Skill-Digest of a skill, when not its archive's digest
	asked      []string          // the skill archives asked for, NAME or NAME@DIGEST
	forget     bool              // the server forgets the runner, as a restart does: the stream ends, and 404 once
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, lease: 30, terminate: make(chan string, 1), outcomes: map[string]map[string]any{},
		skills: map[string][]byte{}, served: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "agent-id" || secret != "agent-secret" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"tok-agent","expires_in":3600}`)
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok-agent" {
				w.WriteHeader(401)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /v1/agent/self", authed(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"agent":{"name":"bot"}}`)
	}))
	mux.HandleFunc("POST /v1/runners", authed(func(w http.ResponseWriter, r *http.Request) {
		var req apitype.RunnerRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.registered = append(f.registered, req)
		if f.conflict {
			w.WriteHeader(409)
			fmt.Fprint(w, `{"error":{"code":"conflict","message":"this sandbox may not start: skill notes@sha256:… is quarantined"}}`)
			return
		}
		if f.refuse {
			w.WriteHeader(403)
			fmt.Fprint(w, `{"error":{"code":"forbidden","message":"agent bot is suspended"}}`)
			return
		}
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"id":"run_1","lease_seconds":%d,"secret":"wrun_test"}`, f.lease)
	}))
	mux.HandleFunc("GET /v1/runners/{id}/control", authed(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		forgot := f.forget
		f.forget = false
		f.mu.Unlock()
		if forgot {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no runner \"run_1\" of this agent"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case reason := <-f.terminate:
				fmt.Fprintf(w, "event: terminate\ndata: {\"reason\":%q}\n\n", reason)
				w.(http.Flusher).Flush()
				return
			case <-tick.C:
				f.mu.Lock()
				silent, lease, forget := f.silent, f.lease, f.forget
				f.mu.Unlock()
				if forget {
					return
				}
				if !silent {
					fmt.Fprintf(w, "event: lease\ndata: {\"lease_seconds\":%d}\n\n", lease)
					w.(http.Flusher).Flush()
				}
			}
		}
	}))
	// The report and the deregistration carry the runner's secret, not the agent's token.
	runnerAuthed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer wrun_test" {
				w.WriteHeader(401)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/runners/{id}/report", runnerAuthed(func(w http.ResponseWriter, r *http.Request) {
		var rep Report
		_ = json.NewDecoder(r.Body).Decode(&rep)
		f.mu.Lock()
		f.reports = append(f.reports, rep)
		f.mu.Unlock()
		w.WriteHeader(204)
	}))
	mux.HandleFunc("DELETE /v1/runners/{id}", runnerAuthed(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.deregister++
		f.mu.Unlock()
		w.WriteHeader(204)
	}))
	// The archive of a granted skill, whatever digest is asked for: the runner must notice.
	mux.HandleFunc("GET /v1/skills/{name}/archive", authed(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		name := r.PathValue("name")
		asked := name
		if d := r.URL.Query().Get("digest"); d != "" {
			asked += "@" + d
		}
		f.asked = append(f.asked, asked)
		archive, ok := f.skills[name]
		if !ok {
			w.WriteHeader(403)
			fmt.Fprint(w, `{"error":{"code":"forbidden","message":"no policy lets agent bot load skill `+name+` (no_matching_policy)"}}`)
			return
		}
		digest := f.served[name]
		if digest == "" {
			tree, err := skill.ReadArchive(archive, skill.DefaultLimits)
			if err == nil {
				digest = tree.Digest()
			}
		}
		w.Header().Set("Warden-Skill-Digest", digest)
		_, _ = w.Write(archive)
	}))
	mux.HandleFunc("POST /v1/authorize", authed(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Tool, Action, Resource string
			Arguments              map[string]any
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.decisions = append(f.decisions, map[string]any{"tool": body.Tool, "action": body.Action, "resource": body.Resource, "args": body.Arguments})
		id := fmt.Sprintf("dec_%d", len(f.decisions))
		allow := f.allow != nil && body.Tool == "egress" && body.Action == "net.connect" && f.allow(body.Resource, body.Arguments)
		f.mu.Unlock()
		effect := "deny"
		if allow {
			effect = "allow"
		}
		fmt.Fprintf(w, `{"decision_id":%q,"effect":%q,"reason":"test"}`, id, effect)
	}))
	mux.HandleFunc("POST /v1/decisions/{id}/outcome", authed(func(w http.ResponseWriter, r *http.Request) {
		var o map[string]any
		_ = json.NewDecoder(r.Body).Decode(&o)
		f.mu.Lock()
		f.outcomes[r.PathValue("id")] = o
		f.mu.Unlock()
		w.WriteHeader(204)
	}))
	mux.HandleFunc("/http/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.gateway = append(f.gateway, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok-agent" {
			w.WriteHeader(401)
			return
		}
		fmt.Fprint(w, "gateway saw the agent's token")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Anything else the forwarder let through would land here.
		w.WriteHeader(200)
		fmt.Fprint(w, "REACHED "+r.URL.Path)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func workspace(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "warden-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type runOut struct {
	res *Result
	err error
	out string
}

func (f *fakeServer) run(t *testing.T, edit func(*Options), args ...string) runOut {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the sandbox tests run as root, like CI")
	}
	exe, _ := os.Executable()
	var out lockedBuffer
	o := Options{
		Server: f.srv.URL, Agent: "bot", Credentials: connect.Credentials{ClientID: "agent-id", ClientSecret: "agent-secret"},
		Spec: sandbox.Spec{
			Command: append([]string{exe}, args...), Env: []string{"WARDEN_PROBE=1"},
			Workspace: workspace(t), ReadOnly: []string{filepath.Dir(exe)}, Stdout: &out, Stderr: &out,
		},
	}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, o)
	return runOut{res, err, out.String()}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRunGatewayForwarder(t *testing.T) {
	f := newFakeServer(t)
	gw := fmt.Sprintf("http://127.0.0.1:%d", GatewayPort)
	r := f.run(t, nil, "get", "GET", gw+"/http/echo/x")
	if r.err != nil || r.res.Exit.Code != 0 || !strings.Contains(r.out, "gateway saw the agent's token") {
		t.Fatalf("WARDEN_URL: %v %+v %q", r.err, r.res, r.out)
	}
	// Outside the gateway's paths the forwarder refuses: no token minting, no speaking for
	// the runner.
	for _, p := range []string{"GET /oauth2/token", "POST /oauth2/token", "DELETE /v1/runners/run_1", "POST /v1/runners/run_1/report", "GET /v1/agents", "GET /http/../oauth2/token"} {
		method, path, _ := strings.Cut(p, " ")
		// Outside, with the token, the path is reachable.
		req, _ := http.NewRequest(method, f.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok-agent")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := f.run(t, nil, "get", method, gw+path)
		if r.err != nil || r.res.Exit.Code == 0 || strings.Contains(r.out, "REACHED") {
			t.Errorf("%s through WARDEN_URL: %q", p, r.out)
		}
	}
}

// testUpstream is an HTTP (or HTTPS) server on 127.0.0.2, standing for a host on the internet.
func testUpstream(t *testing.T, port int, tlsOn bool) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%d: %v", port, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream "+r.Host)
	}))
	srv.Listener = ln
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(ln.Addr().String())
}

type mapResolver map[string]string

func (m mapResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, fmt.Errorf("no such host")
}

// TestRunEgress is the egress part of the escape suite, through a real sandbox, runner and
// proxy: every refusal inside is checked against the same connection working outside.
func TestRunEgress(t *testing.T) {
	f := newFakeServer(t)
	up := testUpstream(t, 0, false)
	tlsUp := testUpstream(t, 443, true)
	port := int(up.Port())
	// Policy: *.github.test, and (to show that naming them does not help) the loopback,
	// metadata and private literals and a name that resolves to loopback.
	f.allow = func(resource string, args map[string]any) bool {
		host, _ := args["host"].(string)
		switch {
		case args["probe"] == true:
			return false
		case strings.HasSuffix(host, ".github.test"):
			return true
		case host == "127.0.0.1", host == "169.254.169.254", host == "10.0.0.1", host == "rebind.test":
			return true
		}
		return false
	}
	names := mapResolver{"api.github.test": "127.0.0.2", "evilgithub.test": "127.0.0.2", "github.test.evil.test": "127.0.0.2",
		"github.test": "127.0.0.2", "rebind.test": "127.0.0.1"}
	// The proxy may reach the test upstreams; 127.0.0.1, 169.254.169.254 and 10.0.0.1 all
	// "exist" on the test network: the dialer sends every connection to the upstream, so only
	// the proxy's own checks stand between the sandbox and them.
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		target := up.String()
		if strings.HasSuffix(addr, ":443") {
			target = tlsUp.String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
	edit := func(o *Options) {
		o.Proxy = &egress.Proxy{Resolver: names, Reachable: []netip.AddrPort{up, tlsUp}, Dial: dialer, Timeout: 3 * time.Second}
	}
	// The control: the same requests through a proxy that refuses nothing reach the upstream.
	open := &egress.Proxy{Decider: allowAll{}, Resolver: names, Dial: dialer, Reachable: []netip.AddrPort{
		up, tlsUp, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
		netip.AddrPortFrom(netip.MustParseAddr("169.254.169.254"), uint16(port)),
		netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(port)),
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go open.Serve(ctx, ln)
	pu, _ := url.Parse("http://" + ln.Addr().String())
	control := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 5 * time.Second}
	outside := func(u string) bool {
		resp, err := control.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}

	allowed := fmt.Sprintf("http://api.github.test:%d/", port)
	r := f.run(t, edit, "get", "GET", allowed)
	if r.err != nil || r.res.Exit.Code != 0 || !strings.Contains(r.out, "upstream api.github.test") {
		t.Fatalf("an allowed host through the proxy: %v %q", r.err, r.out)
	}
	for _, c := range []struct{ name, url string }{
		{"a host no policy allows", fmt.Sprintf("http://github.test:%d/", port)},
		{"suffix trick evilgithub.test", fmt.Sprintf("http://evilgithub.test:%d/", port)},
		{"suffix trick github.test.evil.test", fmt.Sprintf("http://github.test.evil.test:%d/", port)},
		{"an IP literal no policy names", fmt.Sprintf("http://127.0.0.2:%d/", port)},
		{"127.0.0.1 through the proxy", fmt.Sprintf("http://127.0.0.1:%d/", port)},
		{"169.254.169.254 through the proxy", fmt.Sprintf("http://169.254.169.254:%d/", port)},
		{"10.0.0.1 through the proxy", fmt.Sprintf("http://10.0.0.1:%d/", port)},
		{"DNS rebinding: a name that resolves to loopback", fmt.Sprintf("http://rebind.test:%d/", port)},
	} {
		if !outside(c.url) {
			t.Fatalf("%s: the control outside failed", c.name)
		}
		r := f.run(t, edit, "get", "GET", c.url)
		if r.err != nil || r.res.Exit.Code == 0 || strings.Contains(r.out, "upstream") {
			t.Errorf("%s: ESCAPED: %v %q", c.name, r.err, r.out)
		} else {
			t.Logf("%s: outside ok; inside refused: %s", c.name, strings.TrimSpace(r.out))
		}
	}

	// TLS: the ClientHello must name the CONNECT host.
	if r := f.run(t, edit, "tls", "api.github.test:443", "api.github.test"); r.err != nil || r.res.Exit.Code != 0 {
		t.Fatalf("TLS with the right server name: %v %q", r.err, r.out)
	}
	if c, err := tls.Dial("tcp", tlsUp.String(), &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true}); err != nil {
		t.Fatalf("control: TLS with another server name to the upstream: %v", err)
	} else {
		c.Close()
	}
	if r := f.run(t, edit, "tls", "api.github.test:443", "evil.test"); r.err != nil || r.res.Exit.Code == 0 {
		t.Errorf("ESCAPED: CONNECT api.github.test:443 carried a ClientHello for evil.test: %q", r.out)
	}

	// --allow-host narrows: api.github.test is allowed by policy but not in the run's list.
	other, _ := egress.ParseHostPattern("other.github.test")
	r = f.run(t, func(o *Options) { edit(o); o.AllowHosts = []egress.HostPattern{other} }, "get", "GET", allowed)
	if r.err != nil || r.res.Exit.Code == 0 {
		t.Errorf("--allow-host widened or ignored: %q", r.out)
	}

	// Every decision went to the decision API as egress net.connect on host:port, and the
	// allowed ones have outcomes with bytes each way.
	f.mu.Lock()
	defer f.mu.Unlock()
	var sawAllowed bool
	for i, d := range f.decisions {
		if d["tool"] != "egress" || d["action"] != "net.connect" {
			t.Errorf("decision %d: %v", i, d)
		}
		if d["resource"] == fmt.Sprintf("api.github.test:%d", port) {
			o := f.outcomes[fmt.Sprintf("dec_%d", i+1)]
			if o != nil && o["status"] == "ok" && o["bytes_in"].(float64) > 0 && o["bytes_out"].(float64) > 0 {
				sawAllowed = true
			}
		}
	}
	if !sawAllowed {
		t.Errorf("no outcome with bytes for the allowed connection: %v %v", f.decisions, f.outcomes)
	}
}

type allowAll struct{}

func (allowAll) Decide(ctx context.Context, r egress.Request) (egress.Decision, error) {
	if r.Probe {
		return egress.Decision{ID: "probe"}, nil
	}
	return egress.Decision{ID: "x", Allowed: true}, nil
}
func (allowAll) Outcome(ctx context.Context, id string, o egress.Outcome) error { return nil }

func TestRunTerminate(t *testing.T) {
	f := newFakeServer(t)
	go func() {
		time.Sleep(500 * time.Millisecond)
		f.terminate <- "agent bot was killed"
	}()
	start := time.Now()
	r := f.run(t, nil, "sleep", "30s")
	if r.err != nil || r.res.Exit.Kind != sandbox.ExitedKilled || !strings.Contains(r.res.Ended, "agent bot was killed") {
		t.Fatalf("terminate: %v %+v", r.err, r.res)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("terminate took %s", time.Since(start))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) != 1 || f.reports[0].Event != "terminated" || f.reports[0].ProcessesKilled < 2 || f.deregister != 1 {
		t.Fatalf("reports %+v, deregistered %d", f.reports, f.deregister)
	}
}

func TestRunLeaseLost(t *testing.T) {
	f := newFakeServer(t)
	f.lease, f.silent = 1, true
	start := time.Now()
	r := f.run(t, nil, "sleep", "30s")
	if r.err != nil || r.res.Exit.Kind != sandbox.ExitedKilled || !strings.Contains(r.res.Ended, "lease lost") {
		t.Fatalf("lease loss: %v %+v", r.err, r.res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("killed after %s with a 1 s lease", d)
	}
}

func TestRunLeaseLostFreeze(t *testing.T) {
	f := newFakeServer(t)
	f.lease, f.silent = 1, true
	go func() {
		time.Sleep(2500 * time.Millisecond)
		f.mu.Lock()
		f.silent = false
		f.mu.Unlock()
	}()
	var sb *sandbox.Sandbox
	r := f.run(t, func(o *Options) {
		o.OnLeaseLoss = OnLeaseLossFreeze
		o.Started = func(s *sandbox.Sandbox) { sb = s }
	}, "sleep", "4s")
	if sb != nil && !sb.CanFreeze() {
		t.Skip("no cgroup freezer on this machine")
	}
	if r.err != nil || r.res.Exit.Kind != sandbox.ExitedNormally || r.res.Exit.Code != 0 {
		t.Fatalf("freeze then thaw: %v %+v %q", r.err, r.res, r.out)
	}
}

func TestRunRefused(t *testing.T) {
	f := newFakeServer(t)
	f.refuse = true
	r := f.run(t, nil, "exit", "0")
	if r.err == nil || !strings.Contains(r.err.Error(), "will not let agent") || !strings.Contains(r.err.Error(), "suspended") {
		t.Fatalf("a refused registration: %v", r.err)
	}
	bad := f.run(t, func(o *Options) { o.Credentials.ClientSecret = "wrong" }, "exit", "0")
	if bad.err == nil {
		t.Fatal("ran with wrong credentials")
	}
}

func TestRunExitCode(t *testing.T) {
	f := newFakeServer(t)
	r := f.run(t, nil, "exit", "7")
	if r.err != nil || r.res.Exit.Code != 7 || r.res.Ended != "" {
		t.Fatalf("exit code: %v %+v", r.err, r.res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) != 1 || f.reports[0].Event != "exited" || f.reports[0].ExitCode != 7 || f.deregister != 1 {
		t.Fatalf("reports %+v, deregistered %d", f.reports, f.deregister)
	}
}
