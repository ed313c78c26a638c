package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/tracing"
)

// TestEndpointPath: an endpoint with no path exports to /v1/traces, one with a path to that
// path, with the configured headers; a span ended before ForceFlush is sent by it.
func TestEndpointPath(t *testing.T) {
	var mu sync.Mutex
	var paths, keys []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		keys = append(keys, r.Header.Get("X-Api-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer ts.Close()
	for _, tc := range []struct{ endpoint, path string }{
		{ts.URL, "/v1/traces"},
		{ts.URL + "/", "/v1/traces"},
		{ts.URL + "/otlp/v1/traces", "/otlp/v1/traces"},
	} {
		mu.Lock()
		paths, keys = nil, nil
		mu.Unlock()
		p, err := tracing.New(tracing.Options{Endpoint: tc.endpoint, Headers: map[string]string{"X-Api-Key": "k1"}, SampleRatio: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, span := p.Tracer().Start(context.Background(), "x")
		span.End()
		if err := p.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(paths) != 1 || paths[0] != tc.path || keys[0] != "k1" {
			t.Errorf("%s: exported to %v with keys %v, want %s with k1", tc.endpoint, paths, keys, tc.path)
		}
		mu.Unlock()
	}
}
