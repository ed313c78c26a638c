package identity_test

import (
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/wardenhq/warden/internal/identity"
)

func TestNewIDIsAULID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := identity.NewID("dec_")
		rest, ok := strings.CutPrefix(id, "dec_")
		if !ok || strings.ToLower(id) != id || seen[id] {
			t.Fatalf("%q: want dec_ and a new lowercase ULID", id)
		}
		if _, err := ulid.ParseStrict(strings.ToUpper(rest)); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		seen[id] = true
	}
	long := strings.Repeat("x", 60) + "_"
	if id := identity.NewID(long); !strings.HasPrefix(id, long) || len(id) != len(long)+ulid.EncodedSize {
		t.Fatalf("long prefix: %q", id)
	}
}
