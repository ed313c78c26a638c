package identity

// EncodedHeader exposes the header VerifyToken recognises without parsing, so that a test can
// check that warden's own tokens take that path.
var EncodedHeader = encodedHeader
