package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// TraceContext is a W3C trace context (https://www.w3.org/TR/trace-context/).
type TraceContext struct {
	TraceID string // 32 lowercase hex digits
	SpanID  string // 16 lowercase hex digits
	Flags   string // 2 hex digits
	// Incoming is set when the context came from the request's traceparent: a span of the
	// caller's, which warden's span of the call names as its parent.
	Incoming bool
}

// ParseTraceparent reads a traceparent header. An absent or malformed header starts a new trace,
// as the specification asks; it is never an error.
func ParseTraceparent(h string) TraceContext {
	parts := strings.Split(strings.TrimSpace(h), "-")
	if len(parts) < 4 || parts[0] == "00" && len(parts) != 4 || !isHex(parts[0], 2) || parts[0] == "ff" ||
		!isHex(parts[1], 32) || !isHex(parts[2], 16) || !isHex(parts[3], 2) ||
		parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
		return NewTrace()
	}
	return TraceContext{TraceID: parts[1], SpanID: parts[2], Flags: parts[3], Incoming: true}
}

// NewTrace starts a new trace.
func NewTrace() TraceContext {
	return TraceContext{TraceID: randomHex(16), SpanID: randomHex(8), Flags: "01"}
}

// Child returns a new span in the same trace: the span warden's own hop is.
func (t TraceContext) Child() TraceContext {
	if t.TraceID == "" {
		return NewTrace()
	}
	return TraceContext{TraceID: t.TraceID, SpanID: randomHex(8), Flags: t.Flags}
}

// Traceparent renders the header value.
func (t TraceContext) Traceparent() string {
	return "00-" + t.TraceID + "-" + t.SpanID + "-" + t.Flags
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// randomHex returns n random bytes in hex (n ≤ 16), with one allocation: the string.
func randomHex(n int) string {
	var b [16]byte
	var h [32]byte
	_, _ = rand.Read(b[:n]) // crypto/rand.Read never fails on Linux
	hex.Encode(h[:], b[:n])
	return string(h[:2*n])
}
