package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"strings"
)

// A token's session id (sid) is warden's, never the client's: approvals, budgets and the
// session's flow facts are keyed by it, so a client free to choose it could make the sid of a
// token acting for one person equal that of a token acting for another, and an approval given
// in one person's session would cover the other person's call (issue 12).
//
// A sid is sessionPrefix followed by base32 of a 16-byte nonce and a 16-byte tag that binds the
// nonce to the agent and to the person it acts for (empty when it acts for itself):
//
//	tag = SHA-256("warden sid tag v1", agent, person, nonce)[:16]
//
// The client's session_id is an opaque request, not the sid:
//   - none: a new session, with a random nonce;
//   - a sid this agent was given for this same person: that session again, unchanged, so an
//     agent that renews its token with the sid it holds stays in its session;
//   - anything else (a sid of another person or agent, or a name of the client's own): a sid
//     derived from it, nonce = SHA-256("warden sid nonce v1", agent, person, value)[:16]. The
//     same agent, person and value always give the same session; another person never does.
//
// No key is needed: for one value to pass as the session of two people its tags under both
// must agree, a 2^128 search, and every input is length-prefixed so no two differ only in
// where one ends.
const sessionPrefix = "ses_"

const (
	sessionNonceLen = 16
	sessionTagLen   = 16
)

var sessionEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// sessionFor returns the sid of a token issued to agent acting for person (or itself), as
// requested by the client (empty: a new session).
func sessionFor(agent, person, requested string) string {
	var nonce [sessionNonceLen]byte
	switch {
	case requested == "":
		rand.Read(nonce[:]) // crypto/rand.Read never fails
	case boundSession(agent, person, requested):
		return requested
	default:
		sum := sessionHash("warden sid nonce v1", agent, person, []byte(requested))
		copy(nonce[:], sum[:])
	}
	tag := sessionHash("warden sid tag v1", agent, person, nonce[:])
	raw := append(nonce[:], tag[:sessionTagLen]...)
	return sessionPrefix + strings.ToLower(sessionEncoding.EncodeToString(raw))
}

// boundSession reports whether sid is one that sessionFor gives agent acting for person.
func boundSession(agent, person, sid string) bool {
	enc, ok := strings.CutPrefix(sid, sessionPrefix)
	if !ok || len(enc) != sessionEncoding.EncodedLen(sessionNonceLen+sessionTagLen) || strings.ToLower(enc) != enc {
		return false
	}
	raw, err := sessionEncoding.DecodeString(strings.ToUpper(enc))
	if err != nil || len(raw) != sessionNonceLen+sessionTagLen {
		return false
	}
	tag := sessionHash("warden sid tag v1", agent, person, raw[:sessionNonceLen])
	return subtle.ConstantTimeCompare(tag[:sessionTagLen], raw[sessionNonceLen:]) == 1
}

func sessionHash(domain, agent, person string, value []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(domain), []byte(agent), []byte(person), value} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
