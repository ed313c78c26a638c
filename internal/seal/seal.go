// Package seal encrypts warden's secrets at rest (signing keys, brokered credentials) under one
// 32-byte master key, and loads or creates that key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// KeySize is the length of a master key: AES-256.
const KeySize = 32

// version leads every sealed value so that a future change of algorithm can still open what is
// already on disk. It is also authenticated, so it cannot be swapped without detection.
const version byte = 1

// ErrOpen means a sealed value could not be opened: wrong key, wrong aad, or tampered data.
// The three are deliberately indistinguishable.
var ErrOpen = errors.New("seal: message authentication failed")

// Seal encrypts plaintext with AES-256-GCM under key. aad is authenticated but not stored: Open
// needs the same aad, which binds a sealed value to its context (a key ID, a row name) so it
// cannot be moved to another place in the store.
func Seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+aead.Overhead()+len(plaintext))
	out[0] = version
	return aead.Seal(out, nil, plaintext, versionedAAD(aad)), nil
}

// Open decrypts a value made by Seal with the same key and aad.
func Open(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.Overhead() {
		return nil, errors.New("seal: sealed value too short")
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("seal: unknown version %d", sealed[0])
	}
	plaintext, err := aead.Open(nil, nil, sealed[1:], versionedAAD(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// newAEAD uses GCM with random nonces prepended to the ciphertext: a master key seals few values
// (far below the 2^32 limit for random 96-bit nonces), and no nonce counter has to be kept.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(block)
}

func versionedAAD(aad []byte) []byte {
	return append([]byte{version}, aad...)
}
