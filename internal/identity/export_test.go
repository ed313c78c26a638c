package identity

// EncodedHeader exposes the header VerifyToken recognises without parsing, so that a test can
// check that warden's own tokens take that path.
var EncodedHeader = encodedHeader

// SessionFor exposes the binding of a session to an agent and a person, for its fuzz target.
var SessionFor = sessionFor
