// Package checkpoint signs and opens the audit log's checkpoints: C2SP tlog-checkpoint bodies
// (origin, size, head hash) in C2SP signed notes under an Ed25519 key sealed by the master key.
//
// The formats are https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note;
// golang.org/x/mod/sumdb/note implements the note, this package the body and the key.
package checkpoint

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/seal"
)

// MaxNoteSize bounds a checkpoint note that is read from a file or a request.
const MaxNoteSize = 16 << 10

// Checkpoint is the body of a tlog-checkpoint: the log's origin, its size (the number of events,
// which is the seq of the newest) and the hash of its newest event.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   [sha256.Size]byte
}

// HexHash is the hash as the audit log writes it.
func (c Checkpoint) HexHash() string { return hex.EncodeToString(c.Hash[:]) }

// Text is the note text of c: "<origin>\n<size>\n<base64 hash>\n".
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Hash[:]) + "\n"
}

// FromHex builds a checkpoint from an event's seq and its hex hash.
func FromHex(origin string, size int64, hexHash string) (Checkpoint, error) {
	c := Checkpoint{Origin: origin, Size: size}
	if len(hexHash) != 2*sha256.Size {
		return c, fmt.Errorf("checkpoint: hash %q is not a hex SHA-256", hexHash)
	}
	if _, err := hex.Decode(c.Hash[:], []byte(hexHash)); err != nil {
		return c, fmt.Errorf("checkpoint: hash %q is not a hex SHA-256", hexHash)
	}
	if hex.EncodeToString(c.Hash[:]) != hexHash {
		return c, fmt.Errorf("checkpoint: hash %q is not lowercase hex", hexHash)
	}
	return c, nil
}

// ParseText reads a checkpoint body. Lines after the third are extensions, which warden does not
// write and ignores; the first three must be exactly an origin, a decimal size and a base64
// SHA-256.
func ParseText(text string) (Checkpoint, error) {
	var c Checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint: the text does not end in a newline")
	}
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return c, errors.New("checkpoint: want origin, size and hash lines")
	}
	c.Origin = lines[0]
	if c.Origin == "" || !utf8.ValidString(c.Origin) {
		return c, errors.New("checkpoint: the origin line is empty or not UTF-8")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	c.Size = size
	hash, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(hash) != sha256.Size {
		return c, errors.New("checkpoint: the hash line is not a base64 SHA-256")
	}
	copy(c.Hash[:], hash)
	return c, nil
}

// Signer signs checkpoints with an Ed25519 key. It is a note.Signer.
type Signer struct {
	name string
	key  ed25519.PrivateKey
	hash uint32
}

var _ note.Signer = (*Signer)(nil)

// NewSigner returns a signer whose key name, the name in its signature lines, is name.
func NewSigner(name string, key ed25519.PrivateKey) (*Signer, error) {
	if !validName(name) {
		return nil, fmt.Errorf("checkpoint: key name %q must be non-empty UTF-8 without spaces or '+'", name)
	}
	return &Signer{name: name, key: key, hash: KeyHash(name, key.Public().(ed25519.PublicKey))}, nil
}

// Name is the key name.
func (s *Signer) Name() string { return s.name }

// KeyHash is the signed-note key ID of the key.
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign signs msg, the note text.
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// Public returns the public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// VerifierKey returns the public key in the signed-note verifier key format,
// "<name>+<hex key ID>+<base64(0x01 || public key)>", which `warden audit key` prints.
func (s *Signer) VerifierKey() string {
	vkey, err := note.NewEd25519VerifierKey(s.name, s.Public())
	if err != nil {
		panic("checkpoint: a valid name made an invalid verifier key: " + err.Error())
	}
	return vkey
}

// SignCheckpoint returns the signed note of c.
func (s *Signer) SignCheckpoint(c Checkpoint) (string, error) {
	msg, err := note.Sign(&note.Note{Text: c.Text()}, s)
	if err != nil {
		return "", fmt.Errorf("checkpoint: sign: %w", err)
	}
	return string(msg), nil
}

// KeyHash computes the signed-note key ID of an Ed25519 key: the first four bytes, big-endian,
// of SHA-256(name || "\n" || 0x01 || public key), 0x01 being the Ed25519 signature type.
func KeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', 0x01})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// NewVerifier returns a verifier for signatures by the Ed25519 key pub named name.
func NewVerifier(name string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: verifier for %q: %w", name, err)
	}
	return note.NewVerifier(vkey)
}

// ParseVerifierKey reads a verifier key as VerifierKey writes it.
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: verifier key: %w", err)
	}
	return v, nil
}

// ErrUnsigned means a note carries no signature by any of the keys it was checked against, or
// a bad one: a checkpoint that is not warden's.
var ErrUnsigned = errors.New("checkpoint: not signed by a known checkpoint key")

// Open checks that msg is a note signed by one of verifiers and returns its checkpoint and the
// names of the keys that signed it.
func Open(msg []byte, verifiers ...note.Verifier) (Checkpoint, []string, error) {
	if len(msg) > MaxNoteSize {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: the note is over %d bytes", MaxNoteSize)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
		}
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	c, err := ParseText(n.Text)
	if err != nil {
		return c, nil, err
	}
	var names []string
	for _, sig := range n.Sigs {
		names = append(names, sig.Name)
	}
	return c, names, nil
}

// KeyStore is where checkpoint keys are kept.
type KeyStore interface {
	CreateAuditKey(ctx context.Context, k *warden.AuditKey) error
	AuditKeys(ctx context.Context) ([]*warden.AuditKey, error)
}

// Keys are the checkpoint keys of a store: the one that signs, and verifiers for all of them.
type Keys struct {
	Signer    *Signer
	Verifiers []note.Verifier
}

// LoadOrCreate opens the store's checkpoint key with the master key, creating one named name
// if the store has none. Replicas that start together on a new store each create one and then
// agree on the oldest.
func LoadOrCreate(ctx context.Context, store KeyStore, masterKey []byte, name string, now time.Time) (*Keys, error) {
	keys, err := store.AuditKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: load keys: %w", err)
	}
	if len(keys) == 0 {
		if err := create(ctx, store, masterKey, name, now); err != nil {
			return nil, err
		}
		if keys, err = store.AuditKeys(ctx); err != nil {
			return nil, fmt.Errorf("checkpoint: load keys: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("checkpoint: the key just created is not in the store")
		}
	}
	k := keys[0]
	seed, err := seal.Open(masterKey, k.Sealed, aad(k.Name))
	if errors.Is(err, seal.ErrOpen) {
		return nil, fmt.Errorf("checkpoint: cannot decrypt checkpoint key %s: is this the master key the store was created with?", k.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: key %s: %w", k.Name, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("checkpoint: key %s has a %d-byte seed", k.Name, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), k.Public) {
		return nil, fmt.Errorf("checkpoint: key %s does not match its public key", k.Name)
	}
	signer, err := NewSigner(k.Name, priv)
	if err != nil {
		return nil, err
	}
	verifiers, err := Verifiers(keys)
	if err != nil {
		return nil, err
	}
	return &Keys{Signer: signer, Verifiers: verifiers}, nil
}

// Verifiers returns a verifier for each key.
func Verifiers(keys []*warden.AuditKey) ([]note.Verifier, error) {
	var out []note.Verifier
	for _, k := range keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("checkpoint: key %s has a %d-byte public key", k.Name, len(k.Public))
		}
		v, err := NewVerifier(k.Name, ed25519.PublicKey(k.Public))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func create(ctx context.Context, store KeyStore, masterKey []byte, name string, now time.Time) error {
	if !validName(name) {
		return fmt.Errorf("checkpoint: origin %q must be non-empty UTF-8 without spaces or '+'", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("checkpoint: generate key: %w", err)
	}
	sealed, err := seal.Seal(masterKey, priv.Seed(), aad(name))
	if err != nil {
		return fmt.Errorf("checkpoint: seal key: %w", err)
	}
	err = store.CreateAuditKey(ctx, &warden.AuditKey{Name: name, Public: pub, Sealed: sealed, CreatedAt: now.UTC()})
	if err != nil && warden.ErrorCode(err) != warden.EConflict {
		return fmt.Errorf("checkpoint: store key: %w", err)
	}
	return nil
}

// aad binds a sealed key to its name, so that a sealed key moved to another row does not open.
func aad(name string) []byte { return []byte("audit-key:" + name) }
