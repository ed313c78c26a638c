package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// codeCannotAct is the JSON-RPC error code of a request the relay answers itself because the
// agent may no longer act (killed, suspended, credentials revoked): an implementation-defined
// server error (-32000 to -32099).
const codeCannotAct = -32001

// codeUnreachable is the code of a request that did not reach warden, or whose session broke.
const codeUnreachable = -32002

// codeOf is the JSON-RPC error code of the relay's own answer for why it ends.
func codeOf(why error) int64 {
	if warden.ErrorCode(why) == warden.EUnauthenticated {
		return codeCannotAct
	}
	return codeUnreachable
}

// maxStandaloneRetries bounds how often the standalone stream is reopened without a message
// having come on it in between.
const maxStandaloneRetries = 5

// stdioMessageLimit bounds one message on the standalone stream, as the SDK bounds one line of
// stdin (mcp.DefaultMaxLineLength).
const stdioMessageLimit = mcp.DefaultMaxLineLength

// Stdio relays an MCP client on in and out (the MCP stdio transport: one JSON-RPC message a
// line) to warden's MCP endpoint at path ("/mcp" or "/mcp/<tool>") over streamable HTTP, with
// the agent's current token on every request. Both sides are the official SDK's transports
// used at the connection level, so every message passes unchanged both ways: the client's
// requests, notifications (cancellation included) and answers; warden's answers, requests
// (sampling, elicitation, roots) and notifications, on a call's stream or the session's
// standalone one.
//
// Nothing but JSON-RPC is written to out. agent names the agent in the errors the relay gives
// itself.
//
// It returns nil when the client closes in (after ending the session at warden with DELETE),
// and an error when the agent may no longer act — warden refuses it a token: killed, suspended,
// expired, credentials revoked — or the session with warden broke, after answering every
// pending request, or the next one, with a JSON-RPC error that says why.
func (s *Sidecar) Stdio(ctx context.Context, in io.ReadCloser, out io.Writer, path, agent string) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	r := &relay{s: s, agent: agent, log: s.log, stop: stop, pending: map[jsonrpc.ID]context.CancelFunc{}, answered: make(chan struct{}, 1)}
	r.endpoint = s.server.JoinPath(path).String()
	r.http = &http.Client{
		Transport: &bearer{r: r, base: http.DefaultTransport},
		// The bearer adds the agent's token to every request, a redirect's too: follow none,
		// so that no answer sends the token to another address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var err error
	r.up, err = (&mcp.StreamableClientTransport{Endpoint: r.endpoint, HTTPClient: r.http, MaxRetries: -1, DisableStandaloneSSE: true}).Connect(ctx)
	if err != nil {
		return err
	}
	r.down, err = (&mcp.IOTransport{Reader: in, Writer: nopCloser{out}}).Connect(ctx)
	if err != nil {
		_ = r.up.Close()
		return err
	}
	r.wg.Go(func() { r.fromWarden(ctx) })
	err = r.fromClient(ctx)
	if err == nil {
		// The client closed stdin, perhaps right after its last requests (a script piping
		// them in): their answers still reach stdout, within EOFGrace.
		r.drain(ctx, EOFGrace)
	}
	stop()
	// Close ends the session at warden (DELETE) and the calls' streams; then the loops end.
	_ = r.up.Close()
	_ = r.down.Close()
	r.wg.Wait()
	return err
}

// relay is one stdio session's state.
type relay struct {
	s        *Sidecar
	agent    string
	log      *slog.Logger
	endpoint string
	http     *http.Client
	up       mcp.Connection // warden
	down     mcp.Connection // the client
	stop     context.CancelFunc
	wg       sync.WaitGroup
	lastSent atomic.Value // string: the last token sent to warden

	answered chan struct{} // a pending call was answered (one signal, buffered)

	mu         sync.Mutex
	pending    map[jsonrpc.ID]context.CancelFunc // the client's calls in flight at warden
	initID     jsonrpc.ID                        // the client's initialize request
	version    string                            // the protocol version warden answered it with
	standalone bool                              // the standalone stream was opened
	fatal      error                             // why the relay ends: the agent may no longer act, or the session broke
}

// fromClient reads the client's messages and sends each to warden, until the client closes
// stdin (nil) or the agent may no longer act (the reason).
func (r *relay) fromClient(ctx context.Context) error {
	for {
		msg, err := r.down.Read(ctx)
		if err != nil {
			if fatal := r.fatalErr(); fatal != nil {
				return fatal
			}
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return warden.Errorf(warden.EInvalid, "the MCP client sent what is not JSON-RPC: %v", err)
		}
		switch m := msg.(type) {
		case *jsonrpc.Request:
			if !m.IsCall() {
				r.notify(ctx, m)
				continue
			}
			if fatal := r.fatalErr(); fatal != nil {
				r.answer(m.ID, codeOf(fatal), warden.ErrorMessage(fatal))
				return fatal
			}
			r.call(ctx, m)
			if m.Method == "initialize" {
				// Nothing else may go before the session exists (the MCP lifecycle): a client
				// that writes its first messages at once still gets them in order.
				r.awaitAnswer(ctx, m.ID)
			}
		case *jsonrpc.Response:
			// The client's answer to warden's request (sampling, elicitation, roots/list).
			if err := r.up.Write(ctx, m); err != nil {
				r.log.Warn("could not send the client's answer to warden", "err", err)
			}
		}
	}
}

// call sends one of the client's requests to warden. The POST that carries it answers with
// its result, possibly after a long time (a held approval) and with warden's requests and
// notifications before it, so each call has a goroutine of its own.
func (r *relay) call(ctx context.Context, m *jsonrpc.Request) {
	cctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	if _, dup := r.pending[m.ID]; dup {
		r.mu.Unlock()
		cancel()
		r.answer(m.ID, int64(jsonrpc.CodeInvalidRequest), "a request with this id is already in flight")
		return
	}
	r.pending[m.ID] = cancel
	if m.Method == "initialize" {
		r.initID = m.ID
	}
	r.mu.Unlock()
	r.wg.Go(func() {
		err := r.up.Write(cctx, m)
		if err == nil {
			return // the answer comes through fromWarden
		}
		if !r.take(m.ID) {
			return // answered already, by die
		}
		var rpcErr *jsonrpc.Error
		switch {
		case r.fatalErr() != nil:
			r.answer(m.ID, codeOf(r.fatalErr()), warden.ErrorMessage(r.fatalErr()))
			r.stop()
		case errors.As(err, &rpcErr):
			r.answer(m.ID, rpcErr.Code, rpcErr.Message)
		default:
			r.log.Warn("request to warden failed", "method", m.Method, "err", err)
			r.answer(m.ID, codeUnreachable, "warden did not answer "+m.Method+": "+err.Error())
		}
	})
}

// notify sends one of the client's notifications to warden: cancellation, progress,
// roots/list_changed, and the initialized notification, after which the session's standalone
// stream opens.
func (r *relay) notify(ctx context.Context, m *jsonrpc.Request) {
	if r.fatalErr() != nil {
		return
	}
	if err := r.up.Write(ctx, m); err != nil {
		r.log.Warn("could not send a notification to warden", "method", m.Method, "err", err)
		return
	}
	if m.Method == "notifications/initialized" {
		r.openStandalone(ctx)
	}
}

// fromWarden passes warden's messages to the client: answers to the client's calls, and
// warden's own requests and notifications.
func (r *relay) fromWarden(ctx context.Context) {
	for {
		msg, err := r.up.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				// The session broke (warden ended it, or a stream failed): say why if the agent
				// may no longer act, else the client's pending calls fail and the relay ends.
				r.log.Warn("the session with warden broke", "err", err)
				r.check(ctx)
				r.die(warden.Errorf(warden.EUnavailable, "the MCP session with warden ended: %v", err))
			}
			return
		}
		if resp, ok := msg.(*jsonrpc.Response); ok {
			if !r.take(resp.ID) {
				continue // answered already (the agent may no longer act) or never asked
			}
			r.learnVersion(resp)
		}
		if err := r.down.Write(ctx, msg); err != nil {
			r.log.Warn("could not write to the MCP client", "err", err)
			r.stop()
			return
		}
	}
}

// take removes id from the pending calls and reports whether it was there: the one who takes
// a call answers it.
func (r *relay) take(id jsonrpc.ID) bool {
	r.mu.Lock()
	cancel, ok := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if ok {
		// The call's stream has delivered its answer; the SDK stops reading it at once.
		cancel()
		select {
		case r.answered <- struct{}{}:
		default:
		}
	}
	return ok
}

// EOFGrace bounds how long the relay waits, after the client closed stdin, for the answers to
// the calls still in flight.
const EOFGrace = 30 * time.Second

// drain waits until no call is in flight, for at most grace.
func (r *relay) drain(ctx context.Context, grace time.Duration) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for r.inFlight(func(map[jsonrpc.ID]context.CancelFunc) bool { return true }) {
		select {
		case <-r.answered:
		case <-timer.C:
			r.log.Warn("the client closed stdin; calls still in flight are not answered", "after", grace)
			return
		case <-ctx.Done():
			return
		}
	}
}

// awaitAnswer waits until the call id is answered (or the relay ends).
func (r *relay) awaitAnswer(ctx context.Context, id jsonrpc.ID) {
	for r.inFlight(func(p map[jsonrpc.ID]context.CancelFunc) bool { _, ok := p[id]; return ok }) {
		select {
		case <-r.answered:
		case <-ctx.Done():
			return
		}
	}
}

// inFlight reports whether some call is in flight and match holds of the pending calls.
func (r *relay) inFlight(match func(map[jsonrpc.ID]context.CancelFunc) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0 && match(r.pending)
}

// learnVersion keeps the protocol version of warden's answer to initialize: the SDK's
// transport sends MCP-Protocol-Version only once its own client has initialized, and here no
// SDK client does, so the bearer adds it.
func (r *relay) learnVersion(resp *jsonrpc.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.initID.IsValid() || resp.ID != r.initID || len(resp.Result) == 0 {
		return
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(resp.Result, &res) == nil {
		r.version = res.ProtocolVersion
	}
}

func (r *relay) protocolVersion() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

// answer writes a JSON-RPC error for the client's request id.
func (r *relay) answer(id jsonrpc.ID, code int64, msg string) {
	resp := &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}}
	if err := r.down.Write(context.Background(), resp); err != nil {
		r.log.Warn("could not write to the MCP client", "err", err)
	}
}

func (r *relay) fatalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

// check asks warden for a new token after the session broke: when the token endpoint refuses
// it, the agent may no longer act, and die says why.
func (r *relay) check(ctx context.Context) {
	r.s.forget(r.s.current())
	if _, err := r.s.Token(ctx); err != nil && warden.ErrorCode(err) == warden.EUnauthenticated {
		r.cannotAct(ctx, err)
	}
}

// cannotAct ends the relay because warden refused the agent a new token (err). The reason
// named is the one warden gives for the last token the relay sent ("agent is killed") when it
// gives one: its token endpoint says only "invalid client credentials".
func (r *relay) cannotAct(ctx context.Context, err error) {
	why := warden.ErrorMessage(err)
	if last, _ := r.lastSent.Load().(string); last != "" {
		if refusal := r.s.refusal(context.WithoutCancel(ctx), last); refusal != "" {
			why = refusal + " (" + why + ")"
		}
	}
	r.die(warden.WrapError(warden.EUnauthenticated, fmt.Sprintf("agent %s may no longer act: %s", r.agent, why), err))
}

// die records why the relay ends (the first reason wins) and answers every pending call with
// it. With calls answered, the relay ends now; with none, it waits for the client's next
// request, answers it alike and ends — so the client learns why rather than seeing a closed
// pipe — or for the end of stdin.
func (r *relay) die(why error) {
	r.mu.Lock()
	if r.fatal != nil {
		r.mu.Unlock()
		return
	}
	r.fatal = why
	ids := make([]jsonrpc.ID, 0, len(r.pending))
	for id, cancel := range r.pending {
		ids = append(ids, id)
		cancel()
	}
	clear(r.pending)
	r.mu.Unlock()
	r.log.Error("ending the MCP session", "err", warden.ErrorMessage(why))
	for _, id := range ids {
		r.answer(id, codeOf(why), warden.ErrorMessage(why))
	}
	if len(ids) > 0 {
		r.stop()
	}
}

// openStandalone opens the session's standalone stream (GET), on which warden sends what
// belongs to no call: list_changed, logging, requests of its own. The SDK's transport opens
// it only for its own client, so the relay does, once, for protocol versions that have it.
func (r *relay) openStandalone(ctx context.Context) {
	r.mu.Lock()
	open := !r.standalone && r.up.SessionID() != "" && wire.Stateful(r.version)
	r.standalone = r.standalone || open
	r.mu.Unlock()
	if open {
		r.wg.Go(func() { r.standaloneStream(ctx) })
	}
}

// standaloneStream reads the standalone stream and reopens it when it ends, until the relay
// ends or it fails maxStandaloneRetries times in a row. Warden ends it when it ends the
// session (a kill): check then says why.
func (r *relay) standaloneStream(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		got, err := r.readStandalone(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			failures = 0
		}
		if err != nil {
			r.log.Debug("the standalone stream ended", "err", err)
			if errors.Is(err, errNoStandalone) {
				return
			}
			failures++
			r.check(ctx)
			if r.fatalErr() != nil {
				return
			}
			if failures > maxStandaloneRetries {
				r.die(warden.Errorf(warden.EUnavailable, "the MCP session with warden ended: %v", err))
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
		}
	}
}

// errNoStandalone: warden offers no standalone stream for this session.
var errNoStandalone = errors.New("no standalone stream")

// readStandalone reads the standalone stream once, passing every message to the client, and
// reports whether any came.
func (r *relay) readStandalone(ctx context.Context) (got bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.endpoint, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", r.up.SessionID())
	resp, err := r.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed:
		return false, errNoStandalone
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("warden answered %s", resp.Status)
	case wire.MediaType(resp.Header.Get("Content-Type")) != "text/event-stream":
		return false, errNoStandalone
	}
	err = wire.ReadSSE(resp.Body, stdioMessageLimit, func(data []byte) error {
		msg, err := jsonrpc.DecodeMessage(data)
		if err != nil {
			return fmt.Errorf("warden sent what is not JSON-RPC on the standalone stream: %w", err)
		}
		got = true
		return r.down.Write(ctx, msg)
	})
	if err == nil {
		err = io.EOF
	}
	return got, err
}

// bearer adds the agent's current token to every request to warden, and the negotiated
// protocol version. After a 401 it fetches a new token and tries once more (the token was
// revoked or expired early); when warden refuses a new token, the agent may no longer act.
type bearer struct {
	r    *relay
	base http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, token, err := b.send(req, req.Body)
	if err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Following it would send the agent's token elsewhere; the address is wrong, and no
		// later request can fare better: the relay ends, every pending request told why.
		_ = resp.Body.Close()
		why := warden.Errorf(warden.EUnavailable, "warden at %s answered with a redirect (HTTP %d), which connect does not follow so that the agent's token goes nowhere else: check WARDEN_ADDR", b.r.s.server.Redacted(), resp.StatusCode)
		b.r.die(why)
		return nil, why
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	b.r.s.forget(token)
	body := req.Body
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	resp, _, err = b.send(req, body)
	return resp, err
}

// send sends req with body and the agent's current token, which it returns.
func (b *bearer) send(req *http.Request, body io.ReadCloser) (*http.Response, string, error) {
	token, err := b.r.s.Token(req.Context())
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		if warden.ErrorCode(err) == warden.EUnauthenticated {
			b.r.cannotAct(req.Context(), err)
		}
		return nil, "", err
	}
	b.r.lastSent.Store(token)
	out := req.Clone(req.Context())
	out.Body = body
	out.Header.Set("Authorization", "Bearer "+token)
	if v := b.r.protocolVersion(); v != "" && out.Header.Get("Mcp-Protocol-Version") == "" {
		out.Header.Set("Mcp-Protocol-Version", v)
	}
	resp, err := b.base.RoundTrip(out)
	return resp, token, err
}

// nopCloser is stdout for the SDK's transport: closing the relay must not close the process's
// stdout, which may still carry the answer to the last request.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
