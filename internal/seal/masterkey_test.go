package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/seal"
)

func TestMasterKeyFromEnv(t *testing.T) {
	want := bytes.Repeat([]byte{0xab}, seal.KeySize)
	tests := []struct {
		name, env string
		ok        bool
	}{
		{"base64", base64.StdEncoding.EncodeToString(want), true},
		{"base64 with newline", base64.StdEncoding.EncodeToString(want) + "\n", true},
		{"hex", hex.EncodeToString(want), true},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(want)), true},
		{"base64 of 16 bytes", base64.StdEncoding.EncodeToString(want[:16]), false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(want, 1)), false},
		{"hex of 31 bytes", hex.EncodeToString(want[:31]), false},
		{"raw base64url", base64.RawURLEncoding.EncodeToString(want), false},
		{"passphrase", "correct horse battery staple", false},
		{"hex with a non-hex digit", "zz" + hex.EncodeToString(want)[2:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key, err := seal.LoadOrCreateMasterKey(dir, tt.env)
			if !tt.ok {
				if err == nil {
					t.Fatalf("accepted %q", tt.env)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(tt.env)) {
					t.Fatalf("error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, want) {
				t.Fatalf("key = %x, want %x", key, want)
			}
			if _, err := os.Stat(filepath.Join(dir, seal.MasterKeyFile)); !os.IsNotExist(err) {
				t.Fatalf("a key from the environment must not create a key file (stat: %v)", err)
			}
		})
	}
}

func TestMasterKeyFileCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := seal.LoadOrCreateMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != seal.KeySize {
		t.Fatalf("key has %d bytes", len(first))
	}
	info, err := os.Stat(filepath.Join(dir, seal.MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", perm)
	}
	second, err := seal.LoadOrCreateMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("second load returned a different key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d entries, want only the key file", len(entries))
	}
}

func TestMasterKeyConcurrentCreateAgrees(t *testing.T) {
	dir := t.TempDir()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := seal.LoadOrCreateMasterKey(dir, "")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent first use produced different keys")
		}
	}
}

func TestMasterKeyFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr string
	}{
		{"group readable", make([]byte, 32), 0o640, "chmod 600"},
		{"world readable", make([]byte, 32), 0o644, "chmod 600"},
		{"executable", make([]byte, 32), 0o700, "chmod 600"},
		{"short", make([]byte, 31), 0o600, "holds 31 bytes"},
		{"long", make([]byte, 33), 0o600, "holds 33 bytes"},
		{"empty", nil, 0o600, "holds 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, seal.MasterKeyFile)
			if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // WriteFile's mode is subject to umask
				t.Fatal(err)
			}
			_, err := seal.LoadOrCreateMasterKey(dir, "")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMasterKeyReadOnlyFileAccepted(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte{7}, 32)
	path := filepath.Join(dir, seal.MasterKeyFile)
	if err := os.WriteFile(path, want, 0o400); err != nil {
		t.Fatal(err)
	}
	got, err := seal.LoadOrCreateMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("wrong key")
	}
}

func TestMasterKeySymlinkChecksTarget(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private target", 0o600, true},
		{"world-readable target", 0o644, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "mounted-secret")
			if err := os.WriteFile(target, make([]byte, 32), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(target, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, seal.MasterKeyFile)); err != nil {
				t.Fatal(err)
			}
			_, err := seal.LoadOrCreateMasterKey(dir, "")
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestMasterKeyDirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, seal.MasterKeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadOrCreateMasterKey(dir, ""); err == nil {
		t.Fatal("a directory was accepted as the key file")
	}
}

func TestMasterKeyNeedsDataDir(t *testing.T) {
	if _, err := seal.LoadOrCreateMasterKey("", ""); err == nil {
		t.Fatal("no data dir and no env accepted")
	}
}
