package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Secret prefixes. A recognisable prefix lets secret scanners and log redaction find a leaked
// credential and tell what kind it is.
const (
	AgentSecretPrefix = "wsec_"
	AdminTokenPrefix  = "wadm_"
)

// NewSecret returns a new credential (prefix followed by 32 random bytes in base64url) and its
// SHA-256, the only form in which it is stored. A plain hash suffices: with 256 random bits
// there is nothing for a slow hash to protect against guessing.
func NewSecret(prefix string) (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret returns the SHA-256 of a secret, as stored in Agent.SecretHash and AdminToken.Hash.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
