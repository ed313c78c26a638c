package config

import (
	"fmt"
	"net"
	"strconv"
)

// Telemetry configures what warden tells monitoring about itself (docs/observability.md).
type Telemetry struct {
	// MetricsListen is an address where /metrics is served without authentication, for a
	// scraper on the same host; "" serves it only on the main listener, behind an auditor's
	// token. A bare ":PORT" listens on 127.0.0.1. Another address exposes warden's traffic
	// figures (tool names, rates, denials) to whoever reaches it.
	MetricsListen string `yaml:"metrics_listen"`
}

func (t *Telemetry) validate(listen string) error {
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
