package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/route"
	"github.com/wardenhq/warden/internal/taint"
)

// HTTPOptions limits the HTTP gateway.
type HTTPOptions struct {
	MaxRequestBody  int64 // default 10 MiB
	MaxResponseBody int64 // default 100 MiB
	// MaxInspectBody is the largest JSON request body decoded for policy as args.body; a larger
	// JSON body is refused (see requestArguments).
	MaxInspectBody int64 // default 1 MiB
	// MaxObserveBody is how much of a response whose action's output is untrusted or private is
	// read before the agent gets any of it, to be observed for the session's flow facts
	// (Permit.Observe); the rest of a larger response streams unobserved. Default 4 MiB.
	MaxObserveBody int64
	Transport      http.RoundTripper
}

func (o *HTTPOptions) defaults() {
	if o.MaxRequestBody <= 0 {
		o.MaxRequestBody = 10 << 20
	}
	if o.MaxResponseBody <= 0 {
		o.MaxResponseBody = 100 << 20
	}
	if o.MaxInspectBody <= 0 {
		o.MaxInspectBody = 1 << 20
	}
	if o.MaxObserveBody <= 0 {
		o.MaxObserveBody = 4 << 20
	}
	if o.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		o.Transport = t
	}
}

// HTTPHandler serves /http/<tool>/<path>: the request is matched against the tool's routes,
// decided by the pipeline, and forwarded with the brokered credential.
func (g *Pipeline) HTTPHandler(opts HTTPOptions) http.Handler {
	opts.defaults()
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(*httputil.ProxyRequest) {}, // the outbound request is built in full by ServeHTTP
		Transport:     opts.Transport,
		FlushInterval: -1, // stream: an upstream's server-sent events must not wait in a buffer
		ErrorLog:      nil,
		ModifyResponse: func(resp *http.Response) error {
			if err := limitResponse(resp, opts.MaxResponseBody); err != nil {
				return err
			}
			h := resp.Request.Context().Value(httpCallKey{}).(*httpCall)
			return observeResponse(resp, h.permit, opts.MaxObserveBody)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h := r.Context().Value(httpCallKey{}).(*httpCall)
			h.upstreamErr = err
			if errors.Is(err, ErrFlowUnrecorded) {
				writeGatewayError(w, http.StatusBadGateway, warden.ReasonFlowUnavailable, FlowUnrecordedMessage, h.permit.Decision.ID)
				return
			}
			if errors.Is(err, errResponseTooLarge) {
				writeGatewayError(w, http.StatusBadGateway, "upstream_response_too_large", "the upstream's response is over the limit", h.permit.Decision.ID)
				return
			}
			writeGatewayError(w, http.StatusBadGateway, "upstream_error", "the upstream could not be reached", h.permit.Decision.ID)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serveHTTP(w, r, proxy, &opts)
	})
}

type httpCallKey struct{}

func contextWith(ctx context.Context, h *httpCall) context.Context {
	return context.WithValue(ctx, httpCallKey{}, h)
}

// httpCall is the state of one forwarded request, shared with the proxy's hooks.
type httpCall struct {
	permit      *Permit
	upstreamErr error
}

func (g *Pipeline) serveHTTP(w http.ResponseWriter, r *http.Request, proxy *httputil.ReverseProxy, opts *HTTPOptions) {
	start := time.Now()
	caller, err := g.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
		writeGatewayError(w, http.StatusUnauthorized, warden.ReasonInvalidToken, warden.ErrorMessage(err), "")
		return
	}
	toolName, rest := splitToolPath(r.URL.EscapedPath())
	e := g.Registry.current().tools[toolName]
	call := &Call{Entry: EntryHTTP, Tool: toolName, Trace: ParseTraceparent(r.Header.Get("Traceparent")), Session: r.Header.Get("Warden-Session")}
	if _, named := r.Header["Warden-Session"]; named && !warden.ValidSessionID(call.Session) {
		writeGatewayError(w, http.StatusBadRequest, "invalid_request", "the Warden-Session header must be 1 to 128 printable ASCII characters without spaces", "")
		return
	}
	if e != nil && e.tool.Kind == warden.ToolDecisionOnly {
		call.Action = r.Method + " " + truncate(rest, 256)
		p := g.Refuse(r.Context(), caller, call, warden.ReasonDecisionOnly, DecisionOnlyMessage(toolName))
		status := http.StatusNotFound
		switch {
		case p.Decision.Effect == warden.EffectError:
			status = http.StatusServiceUnavailable
		case p.Decision.Reason != warden.ReasonDecisionOnly:
			status = http.StatusForbidden
		}
		writeGatewayError(w, status, p.Decision.Reason, p.Decision.Message, p.Decision.ID)
		return
	}
	if e != nil && e.tool.Kind != warden.ToolHTTP {
		writeGatewayError(w, http.StatusNotFound, "not_an_http_tool", "tool "+toolName+" is not an HTTP tool; use /mcp", "")
		return
	}
	var match *route.Match
	if e != nil {
		match, err = e.routes.Match(r.Method, rest)
		if err != nil {
			// No route, or a path warden refuses to interpret: denied and recorded like any call.
			call.Action = r.Method + " " + truncate(rest, 256)
			p := g.deniedBeforePolicy(r, caller, call, err)
			status := http.StatusForbidden
			switch {
			case p.Decision.Effect == warden.EffectError:
				status = http.StatusServiceUnavailable
			case p.Decision.Reason == warden.ReasonInvalidPath:
				status = http.StatusBadRequest
			}
			writeGatewayError(w, status, p.Decision.Reason, p.Decision.Message, p.Decision.ID)
			return
		}
		call.Action, call.Resource = match.Action, match.Resource
	}
	body, args, inspected, err := requestArguments(r, match, opts)
	if err != nil {
		// A request warden cannot judge as sent (a body over what it inspects, JSON that does not
		// parse, a query it cannot read) is a decision like any other: refused and recorded.
		p := g.Refuse(r.Context(), caller, call, warden.ReasonInvalidRequest, warden.ErrorMessage(err))
		status := warden.HTTPStatus(err)
		switch {
		case p.Decision.Effect == warden.EffectError:
			status = http.StatusServiceUnavailable // the kill state could not be confirmed (stale_state)
		case p.Decision.Reason != warden.ReasonInvalidRequest:
			status = http.StatusForbidden // the agent may not act at all (the kill state's reason)
		}
		writeGatewayError(w, status, p.Decision.Reason, p.Decision.Message, p.Decision.ID)
		return
	}
	call.Arguments, call.BodyUninspected = args, !inspected
	p := g.Authorize(r.Context(), caller, call)
	if !p.Allowed() {
		status := http.StatusForbidden
		if p.Decision.Reason == warden.ReasonBudgetExceeded {
			status = http.StatusTooManyRequests
			if p.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
			}
		}
		if p.Decision.Effect == warden.EffectError {
			status = http.StatusServiceUnavailable
		}
		writeGatewayError(w, status, p.Decision.Reason, p.Decision.Message, p.Decision.ID)
		return
	}
	headers, err := g.UpstreamHeaders(p.Ctx, caller, p.Tool, p.Trace)
	if err != nil {
		p.Done(Outcome{Status: warden.StatusError, Latency: time.Since(start)})
		writeGatewayError(w, http.StatusBadGateway, warden.ReasonCredentialMissing, warden.ErrorMessage(err), p.Decision.ID)
		return
	}
	out, err := outboundRequest(r, p, match, body, headers)
	if err != nil {
		p.Done(Outcome{Status: warden.StatusError, Latency: time.Since(start)})
		writeGatewayError(w, http.StatusBadGateway, "upstream_error", "the tool's upstream URL is invalid", p.Decision.ID)
		return
	}
	if p.ObservesOutput() {
		// The response is read before the agent gets it: it must come as the text it is, which
		// the transport's own compression (decoded as it reads) guarantees.
		out.Header.Del("Accept-Encoding")
	}
	hc := &httpCall{permit: p}
	out = out.WithContext(contextWith(p.Ctx, hc))
	cw := &countingWriter{ResponseWriter: w}
	defer func() {
		// The proxy aborts a response whose body failed half-way (the upstream's, or one
		// withheld unrecorded) by panicking with http.ErrAbortHandler: the call is still done.
		if v := recover(); v != nil {
			p.Done(Outcome{Status: warden.StatusError, UpstreamStatus: cw.status, Latency: time.Since(start), BytesIn: body.n.Load(), BytesOut: cw.n})
			panic(v)
		}
	}()
	proxy.ServeHTTP(cw, out)
	o := Outcome{Status: warden.StatusOK, UpstreamStatus: cw.status, Latency: time.Since(start), BytesIn: body.n.Load(), BytesOut: cw.n}
	switch {
	case p.Ctx.Err() != nil:
		o.Status = warden.StatusCanceled
	case hc.upstreamErr != nil || cw.status >= 500:
		o.Status = warden.StatusError
	}
	p.Done(o)
}

// splitToolPath splits "/http/<tool>/<rest>" (escaped) into the tool and the rest, "/" if empty.
func splitToolPath(escaped string) (tool, rest string) {
	p := strings.TrimPrefix(escaped, "/http/")
	tool, rest, _ = strings.Cut(p, "/")
	return tool, "/" + rest
}

// deniedBeforePolicy records a call refused because it could not be resolved: no route, or a
// path warden refuses to interpret.
func (g *Pipeline) deniedBeforePolicy(r *http.Request, c *Caller, call *Call, cause error) *Permit {
	reason := warden.ReasonNoRoute
	if warden.ErrorCode(cause) == warden.EInvalid {
		reason = warden.ReasonInvalidPath
	}
	return g.Refuse(r.Context(), c, call, reason, warden.ErrorMessage(cause))
}

// requestArguments builds what policy sees of an HTTP request and returns the body to forward
// and whether warden inspected it:
//
//   - args.path holds the route's variables and args.query the query.
//   - The body is read whole (up to MaxRequestBody) before anything is decided, so that what
//     is judged and bound is byte for byte what goes upstream.
//   - args.body_sha256 is the hex SHA-256 of a non-empty body as sent. It is an argument, so the
//     argument digest — and with it an approval's binding and the audit event — covers the exact
//     bytes, whether warden could read them or not.
//   - args.body is the body decoded, when it is JSON (jsonBody): by its label, or by its content
//     whatever the label, because routes declare no body type and a client's Content-Type must
//     not hide from policy a body an upstream will parse as JSON. A JSON body over
//     MaxInspectBody is refused (ETooLarge), as is a body labelled JSON that does not parse
//     (EInvalid).
//   - Any other body goes upstream uninspected (inspected is false: policy sees
//     context.body_inspected == false), bound by its digest alone.
func requestArguments(r *http.Request, m *route.Match, opts *HTTPOptions) (body *countingBody, args json.RawMessage, inspected bool, err error) {
	a := map[string]any{}
	if m != nil && len(m.Params) > 0 {
		for k, v := range m.Params {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, false, warden.Errorf(warden.EInvalid, "the request path is not UTF-8 text")
			}
		}
		a["path"] = m.Params
	}
	// The query is judged as the upstream will read it: a pair url.ParseQuery cannot read (a bad
	// escape, a ';' separator) or text that is not UTF-8 would reach the upstream as sent while
	// policy saw it dropped or replaced by U+FFFD, so it is refused rather than forwarded unjudged.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, false, warden.Errorf(warden.EInvalid, "the query string cannot be read as sent: a malformed %%-escape, or ';' used as a separator")
	}
	if len(q) > 0 {
		query := make(map[string]any, len(q))
		for k, v := range q {
			if !utf8.ValidString(k) {
				return nil, nil, false, warden.Errorf(warden.EInvalid, "the query string is not UTF-8 text")
			}
			for _, s := range v {
				if !utf8.ValidString(s) {
					return nil, nil, false, warden.Errorf(warden.EInvalid, "the query string is not UTF-8 text")
				}
			}
			if len(v) == 1 {
				query[k] = v[0]
			} else {
				query[k] = v
			}
		}
		a["query"] = query
	}
	labelled := jsonLabel(r.Header.Get("Content-Type"))
	switch {
	case r.ContentLength > opts.MaxRequestBody:
		return nil, nil, false, errBodyOverLimit(opts.MaxRequestBody)
	case labelled && r.ContentLength > opts.MaxInspectBody:
		return nil, nil, false, errJSONOverLimit(opts.MaxInspectBody)
	}
	raw, err := readBody(r, opts.MaxRequestBody)
	if err != nil {
		return nil, nil, false, err
	}
	inspected = true
	if len(raw) > 0 {
		sum := sha256.Sum256(raw)
		a["body_sha256"] = hex.EncodeToString(sum[:])
		switch kind := classifyBody(raw, labelled, opts.MaxInspectBody); kind {
		case bodyJSON:
			a["body"] = json.RawMessage(raw)
		case bodyJSONTooLarge:
			return nil, nil, false, errJSONOverLimit(opts.MaxInspectBody)
		case bodyJSONInvalid:
			return nil, nil, false, warden.Errorf(warden.EInvalid, "the request body is labelled JSON but is not valid JSON")
		default:
			inspected = false
		}
	}
	args, err = json.Marshal(a)
	if err != nil {
		return nil, nil, false, warden.Errorf(warden.EInvalid, "request cannot be represented for policy")
	}
	return &countingBody{r: bytes.NewReader(raw)}, args, inspected, nil
}

func errBodyOverLimit(limit int64) error {
	return warden.Errorf(warden.ETooLarge, "request body is over %d bytes", limit)
}

func errJSONOverLimit(limit int64) error {
	return warden.Errorf(warden.ETooLarge, "a JSON request body is over %d bytes, the most warden inspects; it is not forwarded unjudged (gateway.max_inspect_body)", limit)
}

// readBody reads a request body whole, up to limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errBodyOverLimit(limit)
	case err != nil:
		return nil, warden.Errorf(warden.EInvalid, "reading the request body failed")
	}
	return buf.Bytes(), nil
}

// jsonLabel reports whether a Content-Type names JSON: application/json, text/json,
// application/x-json or any */*+json.
func jsonLabel(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json" || mt == "text/json" || mt == "application/x-json" || strings.HasSuffix(mt, "+json")
}

// What a request body is to policy.
type bodyKind uint8

const (
	bodyOpaque       bodyKind = iota // not JSON: forwarded uninspected, bound by digest
	bodyJSON                         // JSON within the inspection limit: policy sees it as args.body
	bodyJSONTooLarge                 // JSON over the inspection limit: refused
	bodyJSONInvalid                  // labelled JSON but not valid JSON: refused
)

// classifyBody says what a non-empty body is. A body is JSON when its label says so
// (labelled) or when its first byte after whitespace (and a byte order mark) opens an object or
// an array: a body shaped like JSON is judged as JSON whatever its label, or refused when it is
// too large to judge. A body shaped like JSON that does not parse and is not labelled JSON may
// be text of another kind ("[INFO] …"); it stays opaque.
func classifyBody(raw []byte, labelled bool, inspectLimit int64) bodyKind {
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("\xef\xbb\xbf")), " \t\r\n")
	shaped := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	// A body of nothing but whitespace is shaped like nothing, but may be padding ahead of JSON
	// past some reader's limit: it is JSON-sized for the limit's sake.
	padding := len(trimmed) == 0
	switch {
	case !labelled && !shaped && !padding:
		return bodyOpaque
	case int64(len(raw)) > inspectLimit:
		return bodyJSONTooLarge
	case json.Valid(raw):
		return bodyJSON
	case labelled:
		return bodyJSONInvalid
	}
	return bodyOpaque
}

// outboundRequest builds the request sent upstream: the tool's base URL plus the normalised
// path, the agent's query, the agent's headers minus credentials, cookies and anything named
// Warden-*, plus the brokered headers.
func outboundRequest(r *http.Request, p *Permit, m *route.Match, body *countingBody, brokered http.Header) (*http.Request, error) {
	base, err := url.Parse(p.Tool.URL)
	if err != nil {
		return nil, err
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + unescapedPath(m.Path)
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + m.Path
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequest(r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	out.ContentLength = int64(body.Len())
	for k, v := range r.Header {
		if strippedHeader(k) {
			continue
		}
		out.Header[k] = v
	}
	for k, v := range brokered {
		out.Header[k] = v
	}
	out.Host = base.Host
	return out, nil
}

func unescapedPath(escaped string) string {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return escaped
	}
	return p
}

// strippedHeader reports whether an agent's request header must not go upstream: the agent's
// credentials and cookies, warden's own headers, trace and forwarding headers warden sets itself,
// and any method or path override (overrideHeaders).
func strippedHeader(name string) bool {
	k := http.CanonicalHeaderKey(name)
	return hopByHop[k] || k == "Authorization" || k == "Cookie" || k == "Traceparent" || k == "Tracestate" ||
		strings.HasPrefix(k, "Warden-") || strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" || overrideHeaders[k]
}

var errResponseTooLarge = errors.New("upstream response over the limit")

func limitResponse(resp *http.Response, limit int64) error {
	if resp.ContentLength > limit {
		return errResponseTooLarge
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: limit}
	return nil
}

// observeResponse observes the response of a call whose output is untrusted or private for its
// session's flow facts before the proxy relays any of it. An event stream is observed as it is
// read, each piece before it is relayed; any other response is read first (up to max bytes: a
// larger one is observed in its first max bytes), JSON decoded and anything else as text.
func observeResponse(resp *http.Response, p *Permit, max int64) error {
	if !p.ObservesOutput() || resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// Warden asked for none (the transport decodes what it asks for itself): an upstream that
		// encodes anyway sends what warden cannot read, and so cannot hand on.
		resp.Body.Close()
		return fmt.Errorf("%w: the response is encoded (%s)", ErrFlowUnrecorded, ce)
	}
	// Headers that carry text the agent may follow: where to go next.
	var headers []any
	for _, h := range [...]string{"Location", "Content-Location", "Link", "Refresh"} {
		for _, v := range resp.Header.Values(h) {
			headers = append(headers, v)
		}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		if len(headers) > 0 {
			if err := p.Observe(headers); err != nil {
				resp.Body.Close()
				return err
			}
		}
		resp.Body = &observingBody{ReadCloser: resp.Body, p: p}
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return err
	}
	var content any
	partial := int64(len(head)) > max
	if partial {
		content = observedText(string(head[:max]))
	} else {
		content = DecodeOutput(head)
	}
	if len(headers) > 0 {
		content = append(headers, content)
	}
	if partial {
		// More than warden reads first: what it read is observed, and the session is decided
		// as one whose reading is not all known (taint.Partial: every argument tainted).
		content = taint.Partial{Content: content}
	}
	if err := p.Observe(content); err != nil {
		resp.Body.Close()
		return err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	return nil
}

// DecodeOutput is an output as observation takes it (Permit.Observe): decoded JSON, numbers
// exact, or — what is not one JSON value — text, with its escapes decoded (observedText). The
// HTTP gateway's response bodies and mcpgw's results, errors and messages go through it.
func DecodeOutput(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return observedText(string(b))
	}
	return v
}

// observedText is text as observation takes it: as it is and, when it holds escapes that a
// reader decodes — JSON's (\u0040, \", \/), HTML's (&#64;, &amp;, &nbsp;) — decoded too, so that
// a value written escaped (an event stream's JSON, newline-delimited JSON, an HTML page) is
// known by what the model reads.
func observedText(s string) any {
	if !strings.ContainsAny(s, `\&`) {
		return s
	}
	out := []any{s}
	if u := jsonUnescape(s); u != s {
		out = append(out, u)
	}
	if h := html.UnescapeString(jsonUnescape(s)); h != s && h != out[len(out)-1] {
		out = append(out, h)
	}
	return out
}

// jsonUnescape decodes JSON string escapes wherever they are in s; an escape it cannot read is
// left as it is.
func jsonUnescape(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
			i++
		case 'n', 't', 'r', 'b', 'f':
			b.WriteByte(' ')
			i++
		case 'u':
			if i+6 <= len(s) {
				if r, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 5
					continue
				}
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// observingBody observes a streamed response piece by piece before each is relayed. A value
// split between two reads is whole in the next observation, which repeats the end of the one
// before.
type observingBody struct {
	io.ReadCloser
	p      *Permit
	tail   []byte
	pieces int  // observed so far
	given  bool // over maxObservedPieces: the stream is marked partial and no longer observed
}

const observeOverlap = 512

// maxObservedPieces bounds how many pieces of one event stream are observed (one record each,
// in the store on a fleet); beyond, the session is decided as one whose reading is not all
// known, and the rest of the stream relays unobserved.
const maxObservedPieces = 256

func (b *observingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if n > 0 && !b.given {
		piece := append(b.tail, buf[:n]...)
		var content any = observedText(string(piece))
		if b.pieces++; b.pieces > maxObservedPieces {
			content, b.given = taint.Partial{Content: content}, true
		}
		if oerr := b.p.Observe(content); oerr != nil {
			return 0, oerr // nothing of what was not recorded is relayed
		}
		if len(piece) > observeOverlap {
			piece = piece[len(piece)-observeOverlap:]
		}
		b.tail = append(b.tail[:0:0], piece...)
	}
	return n, err
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), errResponseTooLarge
	}
	return n, err
}

type countingBody struct {
	r *bytes.Reader
	n atomic.Int64
}

// Len is the size of the whole body.
func (b *countingBody) Len() int { return int(b.r.Size()) }

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// GatewayError is the JSON body of a refused gateway request.
type GatewayError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		DecisionID string `json:"decision_id,omitempty"`
	} `json:"error"`
}

func writeGatewayError(w http.ResponseWriter, status int, code, message, decision string) {
	var body GatewayError
	body.Error.Code, body.Error.Message, body.Error.DecisionID = code, message, decision
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
