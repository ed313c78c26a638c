package warden

import (
	"crypto/rand"
	"strings"
	"time"
)

// NewID returns prefix followed by a lowercase ULID (ulid.github.io): 48 bits of milliseconds
// since the Unix epoch and 80 bits from crypto/rand, in Crockford's base32. It sorts by
// creation time and, unlike a monotonic ULID, does not reveal its neighbours.
//
// Prefixes in use: "agt_" agents (and client IDs), "tok_" token IDs (jti), "key_" signing keys,
// "dec_" decisions, "apr_" approval requests, "run_" runners. Sessions ("ses_") are not IDs of
// this kind: they are bound to a person.
//
// It lives here rather than in the identity package because every decision takes one, and the
// pipeline must not depend on the token service for it. It is built with one allocation, the
// string itself.
func NewID(prefix string) string {
	var entropy [10]byte
	rand.Read(entropy[:]) // crypto/rand.Read never fails
	var text [ulidLen]byte
	encodeULID(&text, uint64(time.Now().UnixMilli()), &entropy)
	var b strings.Builder
	b.Grow(len(prefix) + len(text))
	b.WriteString(prefix)
	b.Write(text[:])
	return b.String()
}

// ulidLen is the length of an encoded ULID: 128 bits in 5-bit characters, two spare bits first.
const ulidLen = 26

// crockford is Crockford's base32 alphabet, lowercase: no i, l, o or u.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// encodeULID writes the ULID of a millisecond timestamp (its low 48 bits) and 80 bits of
// entropy to dst.
func encodeULID(dst *[ulidLen]byte, ms uint64, entropy *[10]byte) {
	// The 128 bits as hi:lo, the timestamp in the top 48.
	hi := ms<<16 | uint64(entropy[0])<<8 | uint64(entropy[1])
	var lo uint64
	for _, b := range entropy[2:] {
		lo = lo<<8 | uint64(b)
	}
	for i := ulidLen - 1; i >= 0; i-- {
		dst[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}
