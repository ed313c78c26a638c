package server

import (
	"fmt"
	"strings"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/tracing"
)

// newTracing builds the OTLP span exporter of telemetry.otlp_endpoint; nil when none is set. A
// header written "env:NAME" is read from the environment, so that a collector's key stays out
// of the file.
func newTracing(cfg config.Config, getenv func(string) string) (*tracing.Provider, error) {
	t := cfg.Telemetry
	if t.OTLPEndpoint == "" {
		return nil, nil
	}
	headers := make(map[string]string, len(t.OTLPHeaders))
	for k, v := range t.OTLPHeaders {
		if name, ok := strings.CutPrefix(v, "env:"); ok {
			if v = getenv(name); v == "" {
				return nil, fmt.Errorf("telemetry.otlp_headers: header %s names environment variable %s, which is not set", k, name)
			}
		}
		headers[k] = v
	}
	return tracing.New(tracing.Options{
		Endpoint: t.OTLPEndpoint, Headers: headers, SampleRatio: t.SampleRatio(),
		Version: Version, Replica: cfg.ReplicaID,
	})
}
