// Package egress is warden's egress proxy: an HTTP CONNECT and plain-HTTP forward proxy in
// front of a sandbox, where every connection is a policy decision (tool "egress", action
// "net.connect") taken before the name is resolved, and only checked public addresses are dialed.
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// Request is what the proxy asks policy about one connection.
type Request struct {
	Target Target
	// AllowHost is set when the target matched one of the run's --allow-host entries.
	AllowHost bool
	// Probe marks the proxy's own check that a policy names an IP literal (see Proxy).
	Probe bool
}

// Decision is policy's answer.
type Decision struct {
	ID      string
	Allowed bool
	Reason  string
	Message string
}

// Outcome is what came of an allowed connection.
type Outcome struct {
	Status   string // warden.StatusOK, StatusError or StatusCanceled
	Duration time.Duration
	BytesIn  int64 // from the sandbox, sent upstream
	BytesOut int64 // from upstream, returned to the sandbox
	// Addr is the address dialed ("" when none was).
	Addr string
}

// Decider takes policy decisions and records their outcomes: the decision API of a warden
// server (DecisionAPI), or a fake in tests.
type Decider interface {
	Decide(ctx context.Context, r Request) (Decision, error)
	Outcome(ctx context.Context, decisionID string, o Outcome) error
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Proxy is the egress proxy. Its zero value is not usable: Decider is required.
type Proxy struct {
	Decider  Decider
	Resolver Resolver                                                          // default net.DefaultResolver
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error) // default a net.Dialer
	// AllowHosts narrows a run: when not empty, a target that matches none of them is refused
	// before policy is asked. A match is passed to policy as the argument allow_host, so an
	// admin can choose to let a run's list stand; it never allows anything by itself.
	AllowHosts []HostPattern
	// Reachable exempts addresses from the refused ranges. Nothing in warden's command line
	// sets it: it is for tests, whose upstreams live on loopback.
	Reachable []netip.AddrPort
	Log       *slog.Logger
	// Refused, when set, is told of every connection the proxy refuses after parsing its
	// target (reason code and message) without a decision of its own, so that a caller can
	// record the refusal. One refused after policy allowed it (it does not resolve, or
	// resolves to a refused address) is recorded by that decision's canceled outcome instead.
	Refused func(ctx context.Context, t Target, reason, message string)
	// Timeout bounds resolving, dialing and reading a ClientHello (default 10s).
	Timeout time.Duration

	wg sync.WaitGroup
}

func (p *Proxy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 10 * time.Second
}

func (p *Proxy) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Serve accepts connections on ln until ctx ends or ln is closed, then waits for the
// connections in flight to end (ctx's end cuts them).
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer p.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("egress proxy: %w", err)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.ServeConn(ctx, c)
		}()
	}
}

// ProxyEnv is the environment that points a sandbox's HTTP clients at an egress proxy
// listening on the sandbox's loopback at port, loopback itself excepted.
func ProxyEnv(port int) []string {
	px := "http://127.0.0.1:" + strconv.Itoa(port)
	return []string{
		"HTTP_PROXY=" + px, "HTTPS_PROXY=" + px, "http_proxy=" + px, "https_proxy=" + px,
		"NO_PROXY=127.0.0.1,localhost,::1", "no_proxy=127.0.0.1,localhost,::1",
		// npm reads its own settings, not the variables above.
		"npm_config_proxy=" + px, "npm_config_https_proxy=" + px,
	}
}

// SandboxPort is the proxy's port on a sandbox's own loopback (its network namespace holds
// nothing else, so a fixed port cannot clash).
const SandboxPort = 4748

// refusal is a connection the proxy will not make, with the HTTP status to answer.
type refusal struct {
	status int
	reason string
	msg    string
	// decided: the refusal came after an allow, whose outcome (canceled) already records that
	// the connection was not made. It is not a second decision to report.
	decided bool
}

func (r *refusal) Error() string { return r.reason + ": " + r.msg }

func refuse(status int, reason, format string, args ...any) *refusal {
	return &refusal{status: status, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// ServeConn serves one client connection: one CONNECT tunnel or one plain HTTP request.
func (p *Proxy) ServeConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(p.timeout()))
	req, err := http.ReadRequest(br)
	if err != nil {
		writeRefusal(c, refuse(http.StatusBadRequest, "bad_request", "not an HTTP proxy request"))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if req.Method == http.MethodConnect {
		p.tunnel(ctx, c, br, req)
		return
	}
	p.forward(ctx, c, req)
}

// admit runs every check before a connection is made: the target's form, the run's list,
// policy (before any DNS), the IP-literal rule, resolution and the refused ranges. On success
// the caller owns the decision and must report its outcome.
func (p *Proxy) admit(ctx context.Context, t Target) (Decision, []netip.Addr, *refusal) {
	req := Request{Target: t}
	if len(p.AllowHosts) > 0 {
		for _, hp := range p.AllowHosts {
			if hp.Match(t) {
				req.AllowHost = true
			}
		}
		if !req.AllowHost {
			return Decision{}, nil, refuse(http.StatusForbidden, warden.ReasonNotInAllowHost, "%s is not in this run's --allow-host list", t.Resource())
		}
	}
	d, err := p.Decider.Decide(ctx, req)
	if err != nil {
		p.log().Warn("egress decision failed; refusing", "target", t.Resource(), "err", err)
		return Decision{}, nil, refuse(http.StatusServiceUnavailable, "decision_unavailable", "warden could not decide: %s", warden.ErrorMessage(err))
	}
	if !d.Allowed {
		return Decision{}, nil, refuse(http.StatusForbidden, d.Reason, "warden denied %s: %s", t.Resource(), d.Message)
	}
	fail := func(r *refusal) (Decision, []netip.Addr, *refusal) {
		p.report(d, Outcome{Status: warden.StatusCanceled})
		r.decided = true
		return Decision{}, nil, r
	}
	var addrs []netip.Addr
	if t.Literal() {
		named, err := p.namesLiteral(ctx, t)
		if err != nil {
			return fail(refuse(http.StatusServiceUnavailable, "decision_unavailable", "warden could not decide: %s", warden.ErrorMessage(err)))
		}
		if !named {
			return fail(refuse(http.StatusForbidden, "ip_literal_not_named", "%s is an IP address that no policy names; connect by host name", t.Resource()))
		}
		addrs = []netip.Addr{t.IP}
	} else {
		rctx, cancel := context.WithTimeout(ctx, p.timeout())
		defer cancel()
		var err error
		addrs, err = p.resolver().LookupNetIP(rctx, "ip", t.Host)
		if err != nil || len(addrs) == 0 {
			return fail(refuse(http.StatusBadGateway, "resolve_failed", "%s does not resolve", t.Host))
		}
	}
	for _, a := range addrs {
		a = a.Unmap()
		if prefix, bad := Refused(a); bad && !p.reachable(a, t.Port) {
			// One refused answer refuses the name: a mix of public and private answers is how
			// DNS rebinding reaches inside.
			if t.Literal() {
				return fail(refuse(http.StatusForbidden, "address_refused", "%s is in %s, which the egress proxy never dials", a, prefix))
			}
			return fail(refuse(http.StatusForbidden, "address_refused", "%s resolves to %s, in %s, which the egress proxy never dials", t.Host, a, prefix))
		}
	}
	return d, addrs, nil
}

// namesLiteral reports whether policy names the IP literal t rather than allowing any address:
// the same question about a documentation address, which no policy has reason to name, must be
// denied. A policy that allows every host would allow both.
func (p *Proxy) namesLiteral(ctx context.Context, t Target) (bool, error) {
	probe := netip.MustParseAddr("192.0.2.1")
	if t.IP.Is6() {
		probe = netip.MustParseAddr("2001:db8::1")
	}
	d, err := p.Decider.Decide(ctx, Request{Target: Target{Host: probe.String(), Port: t.Port, IP: probe}, Probe: true})
	if err != nil {
		return false, err
	}
	if d.Allowed {
		p.report(d, Outcome{Status: warden.StatusCanceled})
		return false, nil
	}
	return true, nil
}

func (p *Proxy) reachable(a netip.Addr, port int) bool {
	for _, ap := range p.Reachable {
		if ap.Addr() == a && int(ap.Port()) == port {
			return true
		}
	}
	return false
}

func (p *Proxy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// dial connects to the checked addresses, never to the name: a second resolution could
// answer differently (DNS rebinding).
func (p *Proxy) dial(ctx context.Context, addrs []netip.Addr, port int) (net.Conn, error) {
	dial := p.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: p.timeout()}).DialContext
	}
	var last error
	for _, a := range addrs {
		c, err := dial(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

func (p *Proxy) refused(ctx context.Context, t Target, r *refusal) {
	p.log().Info("egress refused", "target", t.Resource(), "reason", r.reason)
	if p.Refused != nil && !r.decided {
		p.Refused(ctx, t, r.reason, r.msg)
	}
}

func (p *Proxy) report(d Decision, o Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Decider.Outcome(ctx, d.ID, o); err != nil {
		p.log().Warn("egress outcome not recorded", "decision", d.ID, "err", err)
	}
}

// connect parses a client's target, admits it and dials it: the sequence CONNECT and plain
// HTTP share. When it returns ok the caller owns the upstream connection and the decision, and
// must report the decision's outcome; otherwise the client has been answered, and any decision
// taken has been reported.
func (p *Proxy) connect(ctx context.Context, c net.Conn, hostport string, defaultPort int, start time.Time) (Target, Decision, net.Conn, bool) {
	t, err := ParseTarget(hostport, defaultPort)
	if err != nil {
		writeRefusal(c, refuse(http.StatusBadRequest, "bad_target", "%v", err))
		return Target{}, Decision{}, nil, false
	}
	d, addrs, r := p.admit(ctx, t)
	if r != nil {
		p.refused(ctx, t, r)
		writeRefusal(c, r)
		return Target{}, Decision{}, nil, false
	}
	up, err := p.dial(ctx, addrs, t.Port)
	if err != nil {
		p.report(d, Outcome{Status: warden.StatusError, Duration: time.Since(start)})
		writeRefusal(c, refuse(http.StatusBadGateway, "connect_failed", "cannot connect to %s", t.Resource()))
		return Target{}, Decision{}, nil, false
	}
	return t, d, up, true
}

// tunnel serves CONNECT.
func (p *Proxy) tunnel(ctx context.Context, c net.Conn, br *bufio.Reader, req *http.Request) {
	start := time.Now()
	t, d, up, ok := p.connect(ctx, c, req.Host, 0, start)
	if !ok {
		return
	}
	defer up.Close()
	o := Outcome{Status: warden.StatusOK, Addr: up.RemoteAddr().String()}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		o.Status = warden.StatusCanceled
		o.Duration = time.Since(start)
		p.report(d, o)
		return
	}
	if t.Port == 443 {
		_ = c.SetReadDeadline(time.Now().Add(p.timeout()))
		hello, name, err := readClientHello(br)
		_ = c.SetReadDeadline(time.Time{})
		want := t.Host
		if t.Literal() {
			want = "" // clients send no server name for an address
		}
		if err != nil || name != want {
			p.log().Warn("egress refused: TLS server name does not match CONNECT", "target", t.Resource(), "sni", name, "err", err)
			o.Status, o.Duration = warden.StatusError, time.Since(start)
			p.report(d, o)
			return
		}
		n, err := up.Write(hello)
		o.BytesIn += int64(n)
		if err != nil {
			o.Status, o.Duration = warden.StatusError, time.Since(start)
			p.report(d, o)
			return
		}
	}
	in, out := splice(ctx, c, br, up)
	o.BytesIn += in
	o.BytesOut = out
	o.Duration = time.Since(start)
	if ctx.Err() != nil {
		o.Status = warden.StatusCanceled
	}
	p.report(d, o)
}

// splice copies both ways until either side ends, and returns the bytes copied from the
// client (including what br had buffered) and from upstream.
func splice(ctx context.Context, c net.Conn, br *bufio.Reader, up net.Conn) (in, out int64) {
	var wg sync.WaitGroup
	var nin, nout atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, _ := io.Copy(up, br)
		nin.Store(n)
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		n, _ := io.Copy(c, up)
		nout.Store(n)
		closeWrite(c)
	}()
	wg.Wait()
	return nin.Load(), nout.Load()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// hopHeaders are removed from a forwarded request and its response.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward serves one plain-HTTP proxy request ("GET http://host/path"), then closes.
func (p *Proxy) forward(ctx context.Context, c net.Conn, req *http.Request) {
	start := time.Now()
	if req.URL.Scheme != "http" || req.URL.Host == "" {
		writeRefusal(c, refuse(http.StatusBadRequest, "bad_target", "a plain proxy request needs an absolute http:// URL; use CONNECT for https"))
		return
	}
	_, d, up, ok := p.connect(ctx, c, req.URL.Host, 80, start)
	if !ok {
		return
	}
	defer up.Close()
	o := Outcome{Status: warden.StatusOK, Addr: up.RemoteAddr().String()}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	out := req.Clone(ctx)
	out.RequestURI = ""
	out.Close = true
	counter := &countingConn{Conn: up}
	err := out.Write(counter)
	if err == nil {
		var resp *http.Response
		resp, err = http.ReadResponse(bufio.NewReader(counter), out)
		if err == nil {
			for _, h := range hopHeaders {
				resp.Header.Del(h)
			}
			resp.Close = true
			cw := &countingWriter{w: c}
			err = resp.Write(cw)
			resp.Body.Close()
			o.BytesOut = cw.n
		}
	}
	o.BytesIn = counter.written.Load()
	o.Duration = time.Since(start)
	if err != nil {
		o.Status = warden.StatusError
		if o.BytesOut == 0 {
			writeRefusal(c, refuse(http.StatusBadGateway, "upstream_error", "the upstream did not answer"))
		}
	}
	p.report(d, o)
}

type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// writeRefusal answers a request the proxy will not carry, saying why in a header and the body.
func writeRefusal(w io.Writer, r *refusal) {
	body := r.msg + "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nWarden-Reason: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s",
		r.status, http.StatusText(r.status), sanitize(r.reason), strconv.Itoa(len(body)), body)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '_'
		}
		return r
	}, s)
}
