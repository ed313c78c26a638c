package seal_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/wardenhq/warden/internal/seal"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	return key
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := newKey(t)
	for _, plaintext := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		sealed, err := seal.Seal(key, plaintext, []byte("kid-1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(plaintext) > 8 && bytes.Contains(sealed, plaintext) {
			t.Fatal("sealed value contains the plaintext")
		}
		got, err := seal.Open(key, sealed, []byte("kid-1"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Fatalf("Open = %q, want %q", got, plaintext)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	key := newKey(t)
	a, _ := seal.Seal(key, []byte("same"), nil)
	b, _ := seal.Seal(key, []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	key := newKey(t)
	sealed, err := seal.Seal(key, []byte("private key bytes"), []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		key    []byte
		sealed []byte
		aad    []byte
		isOpen bool // the failure must be ErrOpen, not a format error
	}{
		{"wrong aad", key, sealed, []byte("kid-2"), true},
		{"missing aad", key, sealed, nil, true},
		{"wrong key", newKey(t), sealed, []byte("kid-1"), true},
		{"tampered nonce", key, flip(1), []byte("kid-1"), true},
		{"tampered ciphertext", key, flip(14), []byte("kid-1"), true},
		{"tampered tag", key, flip(len(sealed) - 1), []byte("kid-1"), true},
		{"truncated", key, sealed[:len(sealed)-1], []byte("kid-1"), true},
		{"unknown version", key, flip(0), []byte("kid-1"), false},
		{"too short", key, sealed[:10], []byte("kid-1"), false},
		{"empty", key, nil, []byte("kid-1"), false},
		{"short key", key[:16], sealed, []byte("kid-1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.Open(tt.key, tt.sealed, tt.aad)
			if err == nil {
				t.Fatalf("Open succeeded with %q", got)
			}
			if errors.Is(err, seal.ErrOpen) != tt.isOpen {
				t.Fatalf("Open error = %v; errors.Is(ErrOpen) = %v, want %v", err, !tt.isOpen, tt.isOpen)
			}
		})
	}
}

func TestSealRejectsBadKey(t *testing.T) {
	if _, err := seal.Seal(make([]byte, 16), []byte("x"), nil); err == nil {
		t.Fatal("Seal accepted a 16-byte key")
	}
}

// fuzzSealed is "plaintext" sealed under the all-zero key with aad "aad". It is a constant, not
// made in the fuzz function, because every fuzz worker process would make a different one.
const fuzzSealed = "01d07d8b240955207f963d5af3f20eafc9cadbbe2ffd903dcfcc1252b1cfea06fefe2375d7e4"

func FuzzOpen(f *testing.F) {
	key := make([]byte, seal.KeySize)
	sealed, err := hex.DecodeString(fuzzSealed)
	if err != nil {
		f.Fatal(err)
	}
	if got, err := seal.Open(key, sealed, []byte("aad")); err != nil || string(got) != "plaintext" {
		f.Fatalf("the seed does not open: %q, %v", got, err)
	}
	f.Add(sealed, []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("aad"))
	f.Add(make([]byte, 28), []byte("aad"))
	f.Add(make([]byte, 29), []byte("aad"))
	f.Fuzz(func(t *testing.T, data, aad []byte) {
		plaintext, err := seal.Open(key, data, aad)
		if err != nil {
			return
		}
		// Only the seed opens under this key: anything else would be a forgery.
		if !bytes.Equal(data, sealed) || !bytes.Equal(aad, []byte("aad")) || string(plaintext) != "plaintext" {
			t.Fatalf("Open accepted forged input %x (aad %q)", data, aad)
		}
	})
}
