package gateway

import (
	"net/http"
	"testing"
)

func TestStripOverrideHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{
		"X-HTTP-Method-Override", "x-http-method", "X-Method-Override", "X-Original-Method", "X-Forwarded-Method",
		"X-Original-URL", "X-Original-Uri", "X-Rewrite-URL", "X-Override-URL", "X-Forwarded-Uri", "X-Forwarded-Url",
		"X-Forwarded-Path", "X-Forwarded-Prefix", "X-Envoy-Original-Path", "X-Envoy-Original-Method",
	} {
		h[name] = []string{"DELETE"} // as sent, not canonicalised
		if !strippedHeader(name) {
			t.Errorf("the HTTP gateway forwards %s", name)
		}
		if _, _, err := ParseInject(name + ": {{secret}}"); err == nil {
			t.Errorf("a credential may be injected as %s", name)
		}
	}
	h.Set("X-Request-Id", "kept")
	StripOverrideHeaders(h)
	if len(h) != 1 || h.Get("X-Request-Id") != "kept" {
		t.Fatalf("after StripOverrideHeaders: %v", h)
	}
}
