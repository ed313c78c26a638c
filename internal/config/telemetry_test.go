package config

import (
	"strings"
	"testing"
)

// TestTelemetry: the telemetry section parses, takes its default sample ratio, and refuses
// what would export nowhere or leak: a URL that is not http(s), one with a user or a query
// (neither is quoted back), a ratio out of range, headers without an endpoint, a bad header.
func TestTelemetry(t *testing.T) {
	cases := []struct {
		name, yaml, err string
		ratio           float64
	}{
		{"off", "", "", 1},
		{"endpoint", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n", "", 1},
		{"all", "telemetry:\n  otlp_endpoint: https://otel.example.com/v1/traces\n  otlp_headers: {X-Api-Key: env:OTLP_KEY}\n  trace_sample_ratio: 0.25\n", "", 0.25},
		{"zero ratio", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  trace_sample_ratio: 0\n", "", 0},
		{"ratio over 1", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  trace_sample_ratio: 1.5\n", "trace_sample_ratio must be between 0 and 1", 0},
		{"negative ratio", "telemetry:\n  trace_sample_ratio: -0.1\n", "trace_sample_ratio must be between 0 and 1", 0},
		{"not http", "telemetry:\n  otlp_endpoint: grpc://127.0.0.1:4317\n", "telemetry.otlp_endpoint: want an http(s) URL", 0},
		{"no host", "telemetry:\n  otlp_endpoint: http://\n", "telemetry.otlp_endpoint: want an http(s) URL", 0},
		{"user in URL", "telemetry:\n  otlp_endpoint: https://key:s3cret-in-url@otel.example.com\n", "telemetry.otlp_endpoint: want an http(s) URL", 0},
		{"query", "telemetry:\n  otlp_endpoint: https://otel.example.com/?key=s3cret-in-url\n", "telemetry.otlp_endpoint: want an http(s) URL", 0},
		{"headers alone", "telemetry:\n  otlp_headers: {X-Api-Key: k}\n", "set telemetry.otlp_endpoint too", 0},
		{"bad header name", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  otlp_headers: {\"X Key\": k}\n", "is not a valid header", 0},
		{"bad header value", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  otlp_headers: {X-Key: \"a\\nb\"}\n", "is not a valid header", 0},
		{"content type", "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  otlp_headers: {content-type: text/plain}\n", "Content-Type is warden's to set", 0},
		{"unknown key", "telemetry:\n  otlp_endpiont: http://127.0.0.1:4318\n", `unknown key "otlp_endpiont"`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := c.Parse("warden.yaml", []byte(tc.yaml))
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "s3cret-in-url"):
				t.Fatalf("the error quotes the endpoint's credential: %v", err)
			case tc.err == "" && c.Telemetry.SampleRatio() != tc.ratio:
				t.Fatalf("sample ratio %v, want %v", c.Telemetry.SampleRatio(), tc.ratio)
			}
		})
	}
}

// TestTelemetryMetrics: metrics_listen is HOST:PORT, a bare :PORT is loopback, and it is not the
// main listener.
func TestTelemetryMetrics(t *testing.T) {
	for _, tt := range []struct {
		yaml, want string // want: the error, or "" for none
		addr       string // metrics_listen after Validate
		loopback   bool
	}{
		{yaml: "", addr: ""},
		{yaml: "telemetry: {metrics_listen: 127.0.0.1:9464}", addr: "127.0.0.1:9464", loopback: true},
		{yaml: "telemetry: {metrics_listen: ':9464'}", addr: "127.0.0.1:9464", loopback: true},
		{yaml: "telemetry: {metrics_listen: '[::1]:9464'}", addr: "[::1]:9464", loopback: true},
		{yaml: "telemetry: {metrics_listen: 0.0.0.0:9464}", addr: "0.0.0.0:9464"},
		{yaml: "telemetry: {metrics_listen: 9464}", want: "telemetry.metrics_listen"},
		{yaml: "telemetry: {metrics_listen: 127.0.0.1:99999}", want: "telemetry.metrics_listen"},
		{yaml: "listen: 127.0.0.1:9464\ntelemetry: {metrics_listen: 127.0.0.1:9464}", want: "the main listen address"},
		{yaml: "telemetry: {metrics_listn: 127.0.0.1:9464}", want: "metrics_listn"},
	} {
		t.Run(tt.yaml, func(t *testing.T) {
			c := Default()
			err := c.Parse("warden.yaml", []byte(tt.yaml))
			if err == nil {
				err = c.Validate()
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v; want one containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Telemetry.MetricsListen != tt.addr || (tt.addr != "" && c.Telemetry.MetricsLoopback() != tt.loopback) {
				t.Fatalf("metrics_listen %q (loopback %v); want %q (%v)", c.Telemetry.MetricsListen, c.Telemetry.MetricsLoopback(), tt.addr, tt.loopback)
			}
		})
	}
}
