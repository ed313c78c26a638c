package gateway_test

import (
	"context"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// discardExporter takes every batch of spans and drops it: the cost measured is warden's and
// the SDK's, not a collector's.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkPipelineTracing measures one decision and its outcome, as BenchmarkPipeline does,
// with tracing off (no telemetry.otlp_endpoint: no tracer), on with every call sampled (the
// spans batched to an exporter that drops them), and on with none sampled (ratio 0).
func BenchmarkPipelineTracing(b *testing.B) {
	call := func() *gateway.Call {
		return &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42, "to": "acct-1"}`),
			Trace: gateway.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}
	}
	for _, mode := range []struct {
		name    string
		sampler sdktrace.Sampler // nil: no tracer
	}{
		{"off", nil},
		{"on", sdktrace.AlwaysSample()},
		{"unsampled", sdktrace.NeverSample()},
	} {
		b.Run("tracing="+mode.name, func(b *testing.B) {
			e := newPipelineEnv(b, 1000, true)
			if mode.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(mode.sampler))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				e.gw.Tracer = tp.Tracer("warden")
			}
			e.measure(b, call())
		})
	}
}

// TestTracingUnsampled: a call whose incoming traceparent is not sampled makes no span, yet keeps
// the caller's trace and passes its flags on upstream; a sampled one makes the call's span and
// its children, the upstream's traceparent naming the upstream span.
func TestTracingUnsampled(t *testing.T) {
	e := newPipelineEnv(t, 1, false)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e.gw.Tracer = tp.Tracer("warden")
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	c, err := e.gw.Authenticate(req)
	if err != nil {
		t.Fatal(err)
	}
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	p := e.gw.Authorize(context.Background(), c, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send",
		Arguments: []byte(`{"amount": 42}`), Trace: gateway.ParseTraceparent("00-" + tid + "-00f067aa0ba902b7-00")})
	if !p.Allowed() {
		t.Fatalf("denied: %+v", p.Decision)
	}
	p.Done(gateway.Outcome{Status: warden.StatusOK})
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("an unsampled call recorded %d spans", n)
	}
	if p.Trace.TraceID != tid || p.Trace.Flags != "00" || p.Trace.SpanID == "00f067aa0ba902b7" {
		t.Fatalf("upstream trace context of an unsampled call: %+v", p.Trace)
	}

	p = e.gw.Authorize(context.Background(), c, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send",
		Arguments: []byte(`{"amount": 42}`), Trace: gateway.ParseTraceparent("00-" + tid + "-00f067aa0ba902b7-01")})
	p.Done(gateway.Outcome{Status: warden.StatusOK})
	names := map[string]string{}
	for _, s := range rec.Ended() {
		names[s.Name()] = s.SpanContext().SpanID().String()
	}
	for _, n := range []string{"execute_tool api", "warden.policy", "warden.audit_commit", "warden.upstream"} {
		if names[n] == "" {
			t.Errorf("no %s span among %v", n, names)
		}
	}
	if p.Trace.SpanID != names["warden.upstream"] || p.Trace.Flags != "01" {
		t.Errorf("the upstream's trace context %+v is not the upstream span %s", p.Trace, names["warden.upstream"])
	}
}
