package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// Telemetry configures what warden tells an operator's observability stack about itself:
// Prometheus metrics and OTLP traces (docs/observability.md).
type Telemetry struct {
	// MetricsListen is an address where /metrics is served without authentication, for a
	// scraper on the same host; "" serves it only on the main listener, behind an auditor's
	// token. A bare ":PORT" listens on 127.0.0.1. Another address exposes warden's traffic
	// figures (tool names, rates, denials) to whoever reaches it.
	MetricsListen string `yaml:"metrics_listen"`
	// OTLPEndpoint is the OTLP/HTTP URL spans are exported to, e.g. http://127.0.0.1:4318 (a
	// URL with no path gets /v1/traces). Empty: no spans are made or exported.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPHeaders are sent with every export, e.g. a collector's API key; a value "env:NAME" is
	// read from the environment.
	OTLPHeaders map[string]string `yaml:"otlp_headers"`
	// TraceSampleRatio is the share of calls without a sampled parent whose spans are kept,
	// 0 to 1; a call whose traceparent is sampled is always kept. Default 1.
	TraceSampleRatio *float64 `yaml:"trace_sample_ratio"`
}

// SampleRatio is TraceSampleRatio with its default.
func (t *Telemetry) SampleRatio() float64 {
	if t.TraceSampleRatio == nil {
		return 1
	}
	return *t.TraceSampleRatio
}

func (t *Telemetry) validate(listen string) error {
	if err := t.validateMetrics(listen); err != nil {
		return err
	}
	return t.validateTraces()
}

func (t *Telemetry) validateMetrics(listen string) error {
	if t.MetricsListen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(t.MetricsListen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("telemetry.metrics_listen %q: want HOST:PORT, e.g. 127.0.0.1:9464", t.MetricsListen)
	}
	if host == "" {
		t.MetricsListen = net.JoinHostPort("127.0.0.1", port)
	}
	if port != "0" && t.MetricsListen == listen {
		return fmt.Errorf("telemetry.metrics_listen %q: it is the main listen address; use another port", t.MetricsListen)
	}
	return nil
}

func (t *Telemetry) validateTraces() error {
	if r := t.TraceSampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		return errors.New("telemetry.trace_sample_ratio must be between 0 and 1")
	}
	if t.OTLPEndpoint == "" {
		if len(t.OTLPHeaders) > 0 {
			return errors.New("telemetry.otlp_headers: set telemetry.otlp_endpoint too")
		}
		return nil
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The URL is not quoted back: a mistyped one may hold a credential.
		return errors.New("telemetry.otlp_endpoint: want an http(s) URL without user, query or fragment, such as http://127.0.0.1:4318")
	}
	for k, v := range t.OTLPHeaders {
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("telemetry.otlp_headers: %q is not a valid header", k)
		}
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			return errors.New("telemetry.otlp_headers: Content-Type is warden's to set")
		}
	}
	return nil
}

// MetricsLoopback reports whether the unauthenticated metrics listener is reachable from this
// host only.
func (t *Telemetry) MetricsLoopback() bool {
	host, _, err := net.SplitHostPort(t.MetricsListen)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
