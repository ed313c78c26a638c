package secrets

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/sqlite"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// openStore opens a real SQLite store in a temporary directory and returns it with its path.
func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, path
}

func newService(store warden.SecretStore, master []byte, clk *clock.Fake) *Service {
	s := New(store, master)
	s.Clock = clk
	return s
}

const plaintext = "ghp_sUp3rS3cr3tT0k3nValue0123456789"

// A secret is sealed at rest: neither its row nor any byte of the database files holds the
// plaintext, and the service resolves it back.
func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, path := openStore(t)
	s := newService(store, key(1), clock.NewFake(time.Now()))
	sec, err := s.Put(ctx, "github", plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sec.Sealed, []byte(plaintext)) {
		t.Fatal("Put returned the plaintext in the sealed value")
	}

	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	var sealed []byte
	if err := db.QueryRowContext(ctx, `SELECT name, sealed FROM secrets`).Scan(&name, &sealed); err != nil {
		t.Fatal(err)
	}
	if name != "github" || len(sealed) == 0 || bytes.Contains(sealed, []byte(plaintext)) {
		t.Errorf("row %s %q: want the secret sealed", name, sealed)
	}
	// Nor in the database files, the write-ahead log included.
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(plaintext)) {
			t.Errorf("%s holds the plaintext", filepath.Base(f))
		}
	}
	got, err := s.SecretValue(ctx, "github")
	if err != nil || got != plaintext {
		t.Errorf("SecretValue = %q, %v; want the plaintext", got, err)
	}
	// A service started afresh on the same key resolves it from the store.
	if got, err := newService(store, key(1), clock.NewFake(time.Now())).SecretValue(ctx, "github"); err != nil || got != plaintext {
		t.Errorf("after a restart: %q, %v", got, err)
	}
	// Listing gives names and dates, and List's sealed bytes never hold the plaintext either.
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "github" || bytes.Contains(list[0].Sealed, []byte(plaintext)) {
		t.Errorf("List = %+v, %v", list, err)
	}
}

// The wrong master key fails closed: an error, no value, and no plaintext in the error. So does
// a sealed value moved to another secret's name: each is bound to its own.
func TestWrongKeyFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := openStore(t)
	clk := clock.NewFake(time.Now())
	if _, err := newService(store, key(1), clk).Put(ctx, "github", plaintext); err != nil {
		t.Fatal(err)
	}
	got, err := newService(store, key(2), clk).SecretValue(ctx, "github")
	if err == nil || got != "" {
		t.Fatalf("SecretValue with another master key = %q, %v; want an error and nothing", got, err)
	}
	if warden.ErrorCode(err) != warden.EInternal || strings.Contains(err.Error(), plaintext) || !strings.Contains(warden.ErrorMessage(err), "master key") {
		t.Errorf("error %v (message %q); want internal, naming the master key, without the value", err, warden.ErrorMessage(err))
	}

	// The sealed value of "github" stored under the name "other".
	sec, err := store.Secret(ctx, "github")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutSecret(ctx, &warden.Secret{Name: "other", Sealed: sec.Sealed, CreatedAt: clk.Now(), UpdatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := newService(store, key(1), clk).SecretValue(ctx, "other"); err == nil || got != "" {
		t.Errorf("a sealed value under another name opened: %q, %v", got, err)
	}
	// A damaged sealed value does not open either.
	damaged := bytes.Clone(sec.Sealed)
	damaged[len(damaged)-1] ^= 1
	if err := store.PutSecret(ctx, &warden.Secret{Name: "github", Sealed: damaged, CreatedAt: clk.Now(), UpdatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := newService(store, key(1), clk).SecretValue(ctx, "github"); err == nil || got != "" {
		t.Errorf("a damaged sealed value opened: %q, %v", got, err)
	}
}

// A resolved value is reused for at most cacheTTL: another replica's change shows once it has
// passed; this service's own Put and Delete show at once.
func TestCacheExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := openStore(t)
	clk := clock.NewFake(time.Now())
	s := newService(store, key(1), clk)
	other := newService(store, key(1), clk) // another replica on the same store
	if _, err := s.Put(ctx, "api", "v1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SecretValue(ctx, "api"); got != "v1" {
		t.Fatalf("SecretValue = %q", got)
	}
	if _, err := other.Put(ctx, "api", "v2"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(cacheTTL - time.Millisecond)
	if got, _ := s.SecretValue(ctx, "api"); got != "v1" {
		t.Errorf("within the cache time: %q; want the cached v1", got)
	}
	clk.Advance(time.Millisecond)
	if got, _ := s.SecretValue(ctx, "api"); got != "v2" {
		t.Errorf("once the cache time passed: %q; want v2", got)
	}
	// This service's own change shows at once.
	if _, err := s.Put(ctx, "api", "v3"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SecretValue(ctx, "api"); got != "v3" {
		t.Errorf("after its own Put: %q; want v3", got)
	}
	if err := s.Delete(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SecretValue(ctx, "api"); warden.ErrorCode(err) != warden.ENotFound || got != "" {
		t.Errorf("after its own Delete: %q, %v; want not found", got, err)
	}
	// Another replica's delete shows once the cache time passed.
	if _, err := s.Put(ctx, "api", "v4"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SecretValue(ctx, "api"); got != "v4" {
		t.Fatalf("SecretValue = %q", got)
	}
	if err := other.Delete(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(cacheTTL)
	if got, err := s.SecretValue(ctx, "api"); warden.ErrorCode(err) != warden.ENotFound || got != "" {
		t.Errorf("after another replica's delete and the cache time: %q, %v; want not found", got, err)
	}
}

// Bad input is EInvalid and stores nothing.
func TestPutRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := openStore(t)
	s := newService(store, key(1), clock.NewFake(time.Now()))
	for _, c := range []struct{ name, value string }{
		{"", "v"},
		{"bad name", "v"},
		{"../etc", "v"},
		{"ok", ""},
		{"ok", strings.Repeat("x", MaxValue+1)},
		{"ok", "\xff\xfe"},
	} {
		if _, err := s.Put(ctx, c.name, c.value); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("Put(%q, %d bytes): %v; want invalid", c.name, len(c.value), err)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("refused puts stored %+v", list)
	}
	if _, err := s.Put(ctx, "ok", strings.Repeat("x", MaxValue)); err != nil {
		t.Errorf("a value of exactly MaxValue: %v", err)
	}
	if err := s.Delete(ctx, "bad name"); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("Delete with a bad name: %v", err)
	}
	if err := s.Delete(ctx, "missing"); warden.ErrorCode(err) != warden.ENotFound {
		t.Errorf("Delete of a missing secret: %v", err)
	}
	for name, want := range map[string]bool{"ok": true, "missing": false} {
		if got, err := s.Exists(ctx, name); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}
