package identity

// EncodedHeader exposes the header VerifyToken recognises without parsing, so that a test can
// check that warden's own tokens take that path.
var EncodedHeader = encodedHeader

// SessionFor exposes the binding of a session to an agent and a person, for its fuzz target.
var SessionFor = sessionFor

// Tracked is how many sources l remembers, for the test of its bound.
func (l *RefusalLog) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources) + l.lru.Len()
}
