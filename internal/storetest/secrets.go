package storetest

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var secretTests = []storeTest{
	{"PutAndGet", testPutSecret},
	{"PutReplacesKeepingCreatedAt", testPutSecretReplaces},
	{"SealedRoundTrip", testSecretSealed},
	{"NotFound", testSecretNotFound},
	{"ListOrderedByName", testSecretsOrderedByName},
	{"Delete", testDeleteSecret},
}

func newSecret(name string) *warden.Secret {
	return &warden.Secret{Name: name, Sealed: hash("sealed " + name), CreatedAt: base, UpdatedAt: base}
}

func secretInUTC(sec *warden.Secret) *warden.Secret {
	c := *sec
	c.CreatedAt, c.UpdatedAt = sec.CreatedAt.UTC(), sec.UpdatedAt.UTC()
	return &c
}

func putSecret(t *testing.T, s warden.Store, sec *warden.Secret) {
	t.Helper()
	if err := s.PutSecret(t.Context(), sec); err != nil {
		t.Fatalf("PutSecret(%s): %v", sec.Name, err)
	}
}

func getSecret(t *testing.T, s warden.Store, name string) *warden.Secret {
	t.Helper()
	sec, err := s.Secret(t.Context(), name)
	if err != nil {
		t.Fatalf("Secret(%s): %v", name, err)
	}
	return sec
}

func testPutSecret(t *testing.T, s warden.Store) {
	sec := newSecret("github-token")
	sec.UpdatedAt = base.Add(time.Second)
	putSecret(t, s, sec)
	wantEqual(t, "Secret", getSecret(t, s, sec.Name), secretInUTC(sec))
	if !sec.CreatedAt.Equal(base) {
		t.Errorf("PutSecret of a new secret changed its CreatedAt to %v", sec.CreatedAt)
	}
	wantCode(t, s.PutSecret(t.Context(), &warden.Secret{Name: "unsealed", CreatedAt: base}), warden.EInvalid)
	_, err := s.Secret(t.Context(), "unsealed")
	wantCode(t, err, warden.ENotFound)
}

func testPutSecretReplaces(t *testing.T, s warden.Store) {
	first := newSecret("github-token")
	putSecret(t, s, first)
	later := base.Add(time.Hour)
	// A caller that replaces a value does not know when the secret was first stored.
	second := &warden.Secret{Name: first.Name, Sealed: hash("rotated"), CreatedAt: later, UpdatedAt: later}
	putSecret(t, s, second)
	want := &warden.Secret{Name: first.Name, Sealed: hash("rotated"), CreatedAt: base.UTC(), UpdatedAt: later.UTC()}
	wantEqual(t, "Secret after replacing its value", getSecret(t, s, first.Name), want)
	// The secret put reads as the stored one.
	wantEqual(t, "secret put", secretInUTC(second), want)

	all, err := s.Secrets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Secrets", all, []*warden.Secret{want})
}

func testSecretSealed(t *testing.T, s warden.Store) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name   string
		sealed []byte
	}{
		{"one byte", []byte{0}},
		{"every byte value", every},
		{"zeros", make([]byte, 64)},
		{"not UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, '\'', '"', '\\'}},
		{"a megabyte", big},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := newSecret(string(rune('a' + i)))
			sec.Sealed = tt.sealed
			putSecret(t, s, sec)
			wantEqual(t, "sealed bytes", getSecret(t, s, sec.Name).Sealed, tt.sealed)
		})
	}
}

func testSecretNotFound(t *testing.T, s warden.Store) {
	putSecret(t, s, newSecret("present"))
	_, err := s.Secret(t.Context(), "absent")
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.DeleteSecret(t.Context(), "absent"), warden.ENotFound)
}

func testSecretsOrderedByName(t *testing.T, s warden.Store) {
	all, err := s.Secrets(t.Context())
	if err != nil || len(all) != 0 {
		t.Fatalf("Secrets() of an empty store = %v, %v", all, err)
	}
	for _, name := range []string{"slack", "a-b", "github", "a1", "a"} {
		putSecret(t, s, newSecret(name))
	}
	all, err = s.Secrets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, all, func(sec *warden.Secret) string { return sec.Name }, []string{"a", "a-b", "a1", "github", "slack"})
	wantEqual(t, "first secret", all[0], secretInUTC(newSecret("a")))
}

func testDeleteSecret(t *testing.T, s warden.Store) {
	putSecret(t, s, newSecret("doomed"))
	putSecret(t, s, newSecret("survivor"))
	if err := s.DeleteSecret(t.Context(), "doomed"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Secret(t.Context(), "doomed")
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.DeleteSecret(t.Context(), "doomed"), warden.ENotFound)
	all, err := s.Secrets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, all, func(sec *warden.Secret) string { return sec.Name }, []string{"survivor"})
	// A secret stored again under the name is new: its CreatedAt is its own.
	again := newSecret("doomed")
	again.CreatedAt, again.UpdatedAt = base.Add(time.Hour), base.Add(time.Hour)
	putSecret(t, s, again)
	wantEqual(t, "secret stored again", getSecret(t, s, "doomed"), secretInUTC(again))
}
