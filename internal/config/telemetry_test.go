package config

import (
	"strings"
	"testing"
)

func TestTelemetry(t *testing.T) {
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
