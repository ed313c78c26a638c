package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/oklog/ulid/v2"
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

// NewID returns prefix followed by a lowercase ULID: sortable by creation time, and, unlike
// ulid.Make, with 80 bits from crypto/rand, so an ID does not reveal its neighbours.
// Prefixes in use: "agt_" agents (and client IDs), "tok_" token IDs (jti), "key_" signing
// keys. Sessions ("ses_") are not IDs of this kind: they are bound to a person (session.go).
//
// Every decision takes one, so it is built with a single allocation, the string itself.
func NewID(prefix string) string {
	var id ulid.ULID
	if err := id.SetTime(ulid.Now()); err != nil {
		panic(err) // only after the year 10889
	}
	rand.Read(id[6:]) // crypto/rand.Read never fails
	var text [ulid.EncodedSize]byte
	_ = id.MarshalTextTo(text[:]) // the size is right
	for i, c := range text {
		if 'A' <= c && c <= 'Z' {
			text[i] = c + ('a' - 'A')
		}
	}
	var b strings.Builder
	b.Grow(len(prefix) + len(text))
	b.WriteString(prefix)
	b.Write(text[:])
	return b.String()
}
