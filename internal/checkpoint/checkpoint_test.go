package checkpoint

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden"
)

func testSigner(t testing.TB, name string) *Signer {
	t.Helper()
	seed := sha256.Sum256([]byte(name))
	s, err := NewSigner(name, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignOpen(t *testing.T) {
	s := testSigner(t, "example.com/audit")
	c := Checkpoint{Origin: "example.com/audit", Size: 1234, Hash: sha256.Sum256([]byte("head"))}
	msg, err := s.SignCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	// The layout of a C2SP checkpoint: body, blank line, "— name base64(keyhash || sig)".
	body, sigs, ok := strings.Cut(msg, "\n\n")
	if !ok || body+"\n" != c.Text() || !strings.HasPrefix(sigs, "\u2014 example.com/audit ") {
		t.Fatalf("note layout:\n%s", msg)
	}
	v, err := ParseVerifierKey(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	got, names, err := Open([]byte(msg), v)
	if err != nil || got != c || len(names) != 1 || names[0] != "example.com/audit" {
		t.Fatalf("Open: %+v %v %v", got, names, err)
	}
	if v.KeyHash() != s.KeyHash() {
		t.Fatalf("key hash %08x, x/mod computes %08x", s.KeyHash(), v.KeyHash())
	}

	other := testSigner(t, "example.com/audit-other")
	ov, _ := ParseVerifierKey(other.VerifierKey())
	if _, _, err := Open([]byte(msg), ov); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("opened with another key: %v", err)
	}
	for name, tampered := range map[string]string{
		"size":      strings.Replace(msg, "\n1234\n", "\n1235\n", 1),
		"origin":    strings.Replace(msg, "example.com/audit\n", "example.org/audit\n", 1),
		"signature": msg[:len(msg)-6] + "AAAA=\n",
	} {
		if _, _, err := Open([]byte(tampered), v); err == nil {
			t.Errorf("a note with its %s changed opened", name)
		}
	}
}

func TestParseText(t *testing.T) {
	hash := sha256.Sum256(nil)
	good := Checkpoint{Origin: "o", Size: 7, Hash: hash}.Text()
	if c, err := ParseText(good); err != nil || c.Size != 7 || c.Origin != "o" || c.Hash != hash {
		t.Fatalf("ParseText(%q) = %+v, %v", good, c, err)
	}
	if _, err := ParseText(good + "extension line\n"); err != nil {
		t.Fatalf("an extension line is allowed: %v", err)
	}
	for _, bad := range []string{
		"", "o\n7\n", strings.TrimSuffix(good, "\n"), "\n7\n" + strings.Split(good, "\n")[2] + "\n",
		"o\n07\n" + strings.Split(good, "\n")[2] + "\n", "o\n-1\n" + strings.Split(good, "\n")[2] + "\n",
		"o\n+7\n" + strings.Split(good, "\n")[2] + "\n", "o\n7\nAAAA\n", "o\n7\n" + strings.Repeat("A", 43) + "\n",
	} {
		if _, err := ParseText(bad); err == nil {
			t.Errorf("ParseText(%q) accepted", bad)
		}
	}
}

func TestFromHex(t *testing.T) {
	h := sha256.Sum256([]byte("x"))
	c, err := FromHex("o", 3, fmt.Sprintf("%x", h))
	if err != nil || c.Hash != h || c.HexHash() != fmt.Sprintf("%x", h) {
		t.Fatalf("FromHex: %+v %v", c, err)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("A", 64), strings.Repeat("0", 63) + "g"} {
		if _, err := FromHex("o", 1, bad); err == nil {
			t.Errorf("FromHex(%q) accepted", bad)
		}
	}
}

func TestNewSignerRefusesBadNames(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for _, name := range []string{"", "a b", "a+b", "a\nb", "\xff"} {
		if _, err := NewSigner(name, ed25519.NewKeyFromSeed(seed)); err == nil {
			t.Errorf("NewSigner(%q) accepted", name)
		}
	}
}

// memKeys is a KeyStore in memory.
type memKeys struct {
	mu   sync.Mutex
	keys []*warden.AuditKey
}

func (m *memKeys) CreateAuditKey(ctx context.Context, k *warden.AuditKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.keys {
		if o.Name == k.Name {
			return warden.Errorf(warden.EConflict, "taken")
		}
	}
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) AuditKeys(ctx context.Context) ([]*warden.AuditKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*warden.AuditKey(nil), m.keys...), nil
}

func TestLoadOrCreate(t *testing.T) {
	master := make([]byte, 32)
	store := &memKeys{}
	now := time.Now()
	first, err := LoadOrCreate(t.Context(), store, master, "warden.example/audit", now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(t.Context(), store, master, "another-name-is-ignored", now)
	if err != nil {
		t.Fatal(err)
	}
	if first.Signer.VerifierKey() != again.Signer.VerifierKey() || len(store.keys) != 1 {
		t.Fatal("a second start made or chose another key")
	}
	if first.Signer.Name() != "warden.example/audit" {
		t.Fatalf("key name %q", first.Signer.Name())
	}
	wrong := make([]byte, 32)
	wrong[0] = 1
	if _, err := LoadOrCreate(t.Context(), store, wrong, "x", now); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("with another master key: %v", err)
	}
	// The sealed key is bound to its name.
	store.keys[0].Name = "renamed"
	if _, err := LoadOrCreate(t.Context(), store, master, "x", now); err == nil {
		t.Fatal("a sealed key moved to another name opened")
	}
}

func FuzzOpen(f *testing.F) {
	s := testSigner(f, "fuzz/audit")
	msg, _ := s.SignCheckpoint(Checkpoint{Origin: "fuzz/audit", Size: 9, Hash: sha256.Sum256(nil)})
	f.Add([]byte(msg))
	f.Add([]byte("o\n1\nAAAA\n\n\u2014 fuzz/audit AAAA\n"))
	f.Add([]byte(""))
	v, _ := ParseVerifierKey(s.VerifierKey())
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, names, err := Open(msg, v)
		if err != nil {
			return
		}
		// Whatever opens was signed by the key, and its body is the text it claims.
		if len(names) == 0 || c.Origin == "" || c.Size < 0 {
			t.Fatalf("opened %+v %v", c, names)
		}
		if n, err := note.Open(msg, note.VerifierList(v)); err != nil || n.Text != c.Text() && !strings.HasPrefix(n.Text, c.Text()) {
			t.Fatalf("the body %q does not read back from the note %q", c.Text(), msg)
		}
	})
}

func FuzzParseText(f *testing.F) {
	f.Add(Checkpoint{Origin: "o", Size: 1, Hash: sha256.Sum256(nil)}.Text())
	f.Add("o\n7\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseText(text)
		if err != nil {
			return
		}
		if !strings.HasPrefix(text, c.Text()) {
			t.Fatalf("ParseText(%q) = %+v, which does not write back as its prefix", text, c)
		}
	})
}
