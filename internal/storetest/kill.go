package storetest

import (
	"testing"

	"github.com/wardenhq/warden"
)

var killTests = []storeTest{
	{"LockdownRoundTrip", testLockdown},
	{"Quarantine", testQuarantine},
}

func testLockdown(t *testing.T, s warden.Store) {
	l, err := s.Lockdown(t.Context())
	if err != nil || l.Active {
		t.Fatalf("Lockdown before any: %+v, %v; want none", l, err)
	}
	want := warden.Lockdown{Active: true, MinRisk: warden.RiskHigh, Reason: "incident 42", By: "alice", Since: base.UTC()}
	if err := s.SetLockdown(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lockdown(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Lockdown", got, want)
	lifted := warden.Lockdown{Reason: "resolved", By: "bob"}
	if err := s.SetLockdown(t.Context(), lifted); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lockdown(t.Context()); got.Active || got.Reason != "resolved" {
		t.Fatalf("after lift: %+v", got)
	}
}

func testQuarantine(t *testing.T, s warden.Store) {
	first := &warden.Quarantine{Digest: "sha256:bb", Reason: "malicious", By: "alice", At: base.UTC()}
	if err := s.Quarantine(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(t.Context(), &warden.Quarantine{Digest: "sha256:bb", Reason: "again", By: "bob", At: base.UTC()}); err != nil {
		t.Fatalf("quarantining twice: %v", err)
	}
	if err := s.Quarantine(t.Context(), &warden.Quarantine{Digest: "sha256:aa", Reason: "r", By: "bob", At: base.UTC()}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Quarantine(t.Context(), &warden.Quarantine{}), warden.EInvalid)
	list, err := s.Quarantined(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Digest != "sha256:aa" {
		t.Fatalf("Quarantined: %+v", list)
	}
	wantEqual(t, "first record kept", list[1], first)
}
