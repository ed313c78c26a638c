// Package tracing exports warden's spans over OTLP/HTTP (docs/observability.md): one tracer
// provider, built from the telemetry configuration, whose tracer the gateway's pipeline makes
// each call's spans with. With no endpoint there is no provider and no tracer at all.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of warden's spans.
const Name = "github.com/wardenhq/warden"

// Options configures the exporter.
type Options struct {
	Endpoint    string            // the OTLP/HTTP URL; a URL with no path gets /v1/traces
	Headers     map[string]string // sent with every export (already read from the environment)
	SampleRatio float64           // of calls without a sampled parent
	Service     string            // service.name; default warden
	Version     string            // service.version
	Replica     string            // service.instance.id
}

// Provider is the tracer provider; Shutdown exports what is left and stops.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New builds the provider. It starts no connection: the batch exporter sends what it holds
// every few seconds, dropping spans rather than slowing a call when the collector is slow or
// down.
func New(o Options) (*Provider, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("telemetry.otlp_endpoint: %w", err)
	}
	if strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTimeout(10 * time.Second)}
	if len(o.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(o.Headers))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: the OTLP exporter: %w", err)
	}
	service := o.Service
	if service == "" {
		service = "warden"
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(o.Version), semconv.ServiceInstanceID(o.Replica))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Provider{tp: tp}, nil
}

// Tracer returns warden's tracer.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(Name) }

// Shutdown exports the spans still held and stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error { return p.tp.Shutdown(ctx) }

// ForceFlush exports the spans held now.
func (p *Provider) ForceFlush(ctx context.Context) error { return p.tp.ForceFlush(ctx) }
