package server_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/wardenhq/warden/internal/config"
)

// otlpReceiver is an OTLP/HTTP collector: it decodes every ExportTraceServiceRequest posted to
// /v1/traces and keeps the spans and the headers they came with.
type otlpReceiver struct {
	url     string
	mu      sync.Mutex
	spans   []*tracepb.Span
	res     []*commonpb.KeyValue
	headers []http.Header
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP export: %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		var body io.Reader = http.MaxBytesReader(w, r.Body, 16<<20)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			t.Errorf("OTLP export does not decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.headers = append(rc.headers, r.Header.Clone())
		for _, rs := range req.ResourceSpans {
			rc.res = append(rc.res, rs.GetResource().GetAttributes()...)
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(ts.Close)
	rc.url = ts.URL
	return rc
}

func (rc *otlpReceiver) all() []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*tracepb.Span(nil), rc.spans...)
}

func spanAttr(s *tracepb.Span, key string) (string, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			if v, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
				return strconv.FormatInt(v.IntValue, 10), true
			}
			return kv.Value.GetStringValue(), true
		}
	}
	return "", false
}

// findSpans returns the spans pred picks.
func findSpans(spans []*tracepb.Span, pred func(*tracepb.Span) bool) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range spans {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

type traceparentRT struct {
	token, traceparent string
}

func (b traceparentRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	r.Header.Set("Traceparent", b.traceparent)
	return http.DefaultTransport.RoundTrip(r)
}

// TestTraces is issue 18's traces: a real server with telemetry.otlp_endpoint exports, for an
// MCP tools/call through the Go SDK client and an HTTP gateway call, one execute_tool span per
// call under the caller's traceparent, with the GenAI and MCP attributes and the decision, and
// child spans for policy, audit commit and the upstream round trip, whose span is the parent the
// upstream's traceparent names; a denied call's span ends with its decision; no argument value
// is in any attribute; the collector gets the configured header.
func TestTraces(t *testing.T) {
	t.Parallel()
	rc := newOTLPReceiver(t)
	up := newMCPUpstream(t)
	var httpMu sync.Mutex
	var httpTraceparents []string
	httpUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpMu.Lock()
		httpTraceparents = append(httpTraceparents, r.Header.Get("Traceparent"))
		httpMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(httpUp.Close)

	in := start(t, t.TempDir(), func(c *config.Config) {
		c.Telemetry.OTLPEndpoint = rc.url
		c.Telemetry.OTLPHeaders = map[string]string{"X-Collector-Key": "collector-key-1"}
		c.Approvals.Hold = config.Duration(time.Second)
	})
	if in.srv.Tracing == nil || in.srv.Pipeline.Tracer == nil {
		t.Fatal("telemetry.otlp_endpoint is set but the pipeline has no tracer")
	}
	doc := `
agents:
  - name: notes-bot
    owner: bob@example.com
    purpose: Take notes
tools:
  - name: notes
    mcp: ` + up.url + `
    risk: low
  - name: vault
    mcp: ` + up.url + `
    risk: low
    approval: [echo]
  - name: memo
    http: ` + httpUp.URL + `
    risk: low
    routes:
      - "POST /memos -> memos.create"
grants:
  - agent: notes-bot
    tool: notes
    actions: [echo]
  - agent: notes-bot
    tool: vault
    actions: [echo]
  - agent: notes-bot
    tool: memo
    actions: [memos.create]
`
	plan := in.apply(doc)
	cred := plan.Credentials["notes-bot"]
	token := in.mustToken(cred.ClientID, cred.ClientSecret)

	const (
		mcpTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
		mcpParent = "00f067aa0ba902b7"
		httpTrace = "0af7651916cd43dd8448eb211c80319c"
		httpSpan  = "b7ad6b7169203331"
		argValue  = "argument-value-never-in-a-span-7f3c"
	)
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: in.url + "/mcp", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: traceparentRT{token, "00-" + mcpTrace + "-" + mcpParent + "-01"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": argValue}})
	if err != nil || res.IsError {
		t.Fatalf("granted call: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.delete_everything", Arguments: map[string]any{"message": argValue}})
	if err != nil || !res.IsError {
		t.Fatalf("ungranted call: %v %+v", err, res)
	}
	// Held for a person for telemetry's approvals.hold (1s), then answered pending.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "vault.echo", Arguments: map[string]any{"message": argValue}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "waiting for a person's approval") {
		t.Fatalf("held call: %v %+v", err, res)
	}
	r := in.do("POST", "/http/memo/memos", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json",
		"Traceparent": "00-" + httpTrace + "-" + httpSpan + "-01"}, `{"text":"`+argValue+`"}`)
	if r.status != 200 {
		t.Fatalf("HTTP gateway call: %d %s", r.status, r.body)
	}
	// An action named freely by the agent through the decision API reaches policy (and is
	// denied); its span names it "other", never the agent's text.
	if r := in.gw("POST", "/v1/authorize", token, `{"tool":"memo","action":"`+argValue+`"}`, map[string]string{"Content-Type": "application/json"}); r.status != 200 {
		t.Fatalf("authorize a made-up action: %d %s", r.status, r.body)
	}
	// A call's span ends before its outcome is recorded: once both outcomes are, both spans
	// have ended.
	eventuallyTrue(t, "the outcomes of both allowed calls", func() bool {
		return len(in.events("type=tool.result&agent=notes-bot")) == 2
	})
	if err := in.srv.Tracing.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rc.all()

	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.String(), argValue) || strings.Contains(kv.Value.String(), token) {
				t.Errorf("span %s: attribute %s carries an argument value or the token", s.Name, kv.Key)
			}
		}
		if strings.Contains(s.Name, argValue) {
			t.Errorf("span name %q carries an argument value", s.Name)
		}
	}
	rc.mu.Lock()
	if len(rc.headers) == 0 || rc.headers[0].Get("X-Collector-Key") != "collector-key-1" {
		t.Errorf("the collector did not get telemetry.otlp_headers: %v", rc.headers)
	}
	rc.mu.Unlock()

	childrenOf := func(parent *tracepb.Span) map[string]*tracepb.Span {
		out := map[string]*tracepb.Span{}
		for _, s := range spans {
			if hex.EncodeToString(s.ParentSpanId) == hex.EncodeToString(parent.SpanId) && hex.EncodeToString(s.TraceId) == hex.EncodeToString(parent.TraceId) {
				out[s.Name] = s
			}
		}
		return out
	}
	want := func(s *tracepb.Span, key, value string) {
		t.Helper()
		if v, ok := spanAttr(s, key); !ok || v != value {
			t.Errorf("span %s: %s = %q (set %v), want %q", s.Name, key, v, ok, value)
		}
	}

	// The MCP call, allowed: under the client's span, its children, and the upstream's parent.
	allowed := findSpans(spans, func(s *tracepb.Span) bool {
		v, _ := spanAttr(s, "warden.decision.effect")
		return s.Name == "execute_tool notes" && v == "allow"
	})
	if len(allowed) != 1 {
		t.Fatalf("%d allowed execute_tool notes spans in %d spans, want 1", len(allowed), len(spans))
	}
	call := allowed[0]
	if hex.EncodeToString(call.TraceId) != mcpTrace || hex.EncodeToString(call.ParentSpanId) != mcpParent {
		t.Errorf("MCP call span in trace %s under %s; want the client's traceparent %s/%s", hex.EncodeToString(call.TraceId), hex.EncodeToString(call.ParentSpanId), mcpTrace, mcpParent)
	}
	if call.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("MCP call span kind %v", call.Kind)
	}
	want(call, "gen_ai.tool.name", "notes")
	want(call, "gen_ai.operation.name", "execute_tool")
	want(call, "mcp.method.name", "tools/call")
	want(call, "mcp.session.id", cs.ID())
	want(call, "warden.agent", "notes-bot")
	want(call, "warden.decision.reason", "policy_allow")
	want(call, "warden.tool.action", "echo")
	if id, _ := spanAttr(call, "warden.decision.id"); !strings.HasPrefix(id, "dec_") {
		t.Errorf("MCP call span: decision id %q", id)
	}
	kids := childrenOf(call)
	for _, name := range []string{"warden.policy", "warden.audit_commit", "warden.upstream"} {
		if kids[name] == nil {
			t.Errorf("MCP call span has no child %s (children %v)", name, kids)
		}
	}
	if upSpan := kids["warden.upstream"]; upSpan != nil {
		want(upSpan, "warden.outcome.status", "ok")
		if upSpan.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("upstream span kind %v", upSpan.Kind)
		}
		wantTP := "00-" + mcpTrace + "-" + hex.EncodeToString(upSpan.SpanId) + "-01"
		seen := false
		for _, h := range up.allHeaders() {
			seen = seen || h.Get("Traceparent") == wantTP
		}
		if !seen {
			t.Errorf("the MCP upstream never got traceparent %s (warden's upstream span)", wantTP)
		}
		if upSpan.StartTimeUnixNano < call.StartTimeUnixNano || upSpan.EndTimeUnixNano > call.EndTimeUnixNano {
			t.Error("the upstream span is not within the call's")
		}
	}

	// The MCP call denied: its span ends with the decision, with no upstream.
	denied := findSpans(spans, func(s *tracepb.Span) bool {
		v, _ := spanAttr(s, "warden.decision.effect")
		return s.Name == "execute_tool notes" && v == "deny"
	})
	if len(denied) != 1 {
		t.Fatalf("%d denied execute_tool notes spans, want 1", len(denied))
	}
	want(denied[0], "warden.decision.reason", "no_matching_policy")
	if hex.EncodeToString(denied[0].TraceId) != mcpTrace {
		t.Error("the denied call's span left the client's trace")
	}
	if kids := childrenOf(denied[0]); kids["warden.upstream"] != nil || kids["warden.audit_commit"] == nil {
		t.Errorf("denied call's children: %v", kids)
	}

	// The call held for approval: its wait is a child span, as long as the hold.
	held := findSpans(spans, func(s *tracepb.Span) bool { return s.Name == "execute_tool vault" })
	if len(held) != 1 {
		t.Fatalf("%d execute_tool vault spans, want 1", len(held))
	}
	want(held[0], "warden.decision.reason", "approval_pending")
	if w := childrenOf(held[0])["warden.approval_wait"]; w == nil {
		t.Error("the held call's span has no warden.approval_wait child")
	} else if d := time.Duration(w.EndTimeUnixNano - w.StartTimeUnixNano); d < 900*time.Millisecond {
		t.Errorf("the approval wait span lasted %v; the call was held 1s", d)
	}

	// The HTTP gateway call.
	hs := findSpans(spans, func(s *tracepb.Span) bool {
		if s.Name != "execute_tool memo" {
			return false
		}
		for _, kv := range s.Attributes {
			if kv.Key == "warden.entry" && kv.Value.GetStringValue() == "http" {
				return true
			}
		}
		return false
	})
	if len(hs) != 1 {
		t.Fatalf("%d execute_tool memo spans, want 1", len(hs))
	}
	if hex.EncodeToString(hs[0].TraceId) != httpTrace || hex.EncodeToString(hs[0].ParentSpanId) != httpSpan {
		t.Errorf("HTTP call span in trace %s under %s", hex.EncodeToString(hs[0].TraceId), hex.EncodeToString(hs[0].ParentSpanId))
	}
	want(hs[0], "warden.entry", "http")
	want(hs[0], "gen_ai.tool.name", "memo")
	if _, ok := spanAttr(hs[0], "mcp.method.name"); ok {
		t.Error("an HTTP call's span has mcp.method.name")
	}
	hup := childrenOf(hs[0])["warden.upstream"]
	if hup == nil {
		t.Fatal("HTTP call span has no upstream child")
	}
	want(hup, "http.response.status_code", "200")
	httpMu.Lock()
	got := strings.Join(httpTraceparents, ",")
	httpMu.Unlock()
	if wantTP := "00-" + httpTrace + "-" + hex.EncodeToString(hup.SpanId) + "-01"; got != wantTP {
		t.Errorf("the HTTP upstream got traceparent %q, want %q (warden's upstream span)", got, wantTP)
	}

	// The audit event names the call's span.
	evs := in.events("type=tool.call&agent=notes-bot")
	found := false
	for _, ev := range evs {
		if ev.SpanID == hex.EncodeToString(call.SpanId) && ev.TraceID == mcpTrace {
			found = true
		}
	}
	if !found {
		t.Error("no tool.call event names the call's span")
	}
}

// TestNoTracesWithoutEndpoint: with no telemetry.otlp_endpoint no tracer is built at all.
func TestNoTracesWithoutEndpoint(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	if r := in.do("GET", "/healthz", nil, ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if in.srv.Tracing != nil || in.srv.Pipeline.Tracer != nil {
		t.Fatal("a tracer was built with no telemetry.otlp_endpoint")
	}
}
