package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/wardenhq/warden"
)

var packageLockTests = []storeTest{
	{"PutGet", testPackageLocks},
}

func lockDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testPackageLocks: a lock comes back byte for byte under its digest; one stored under another
// digest, empty or not UTF-8 is refused and stores nothing; storing it again changes nothing.
func testPackageLocks(t *testing.T, s warden.Store) {
	ctx := t.Context()
	lock := []byte("{\n  \"lockfileVersion\": 3,\n  \"packages\": {\"\": {}}\n}\n")
	d := lockDigest(lock)
	if _, err := s.PackageLock(ctx, d); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("a lock never stored: %v, want ENotFound", err)
	}
	other := []byte(`{"lockfileVersion":3}`)
	if err := s.PutPackageLock(ctx, d, other); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a lock under another's digest: %v, want EInvalid", err)
	}
	if _, err := s.PackageLock(ctx, d); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("a refused lock was stored: %v", err)
	}
	for _, bad := range [][]byte{{}, {0xff, 0xfe}} {
		if err := s.PutPackageLock(ctx, lockDigest(bad), bad); warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("lock %q: %v, want EInvalid", bad, err)
		}
	}
	for range 2 {
		if err := s.PutPackageLock(ctx, d, lock); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PackageLock(ctx, d)
	if err != nil || string(got) != string(lock) {
		t.Fatalf("PackageLock = %q, %v", got, err)
	}
}
