package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512M": 512 << 20, "2G": 2 << 30, "1.5g": 3 << 29, "64k": 64 << 10, "1048576": 1 << 20} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1G", "lots", "2T", "NaN", "Inf", "1e30G"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
}

func TestRunRefusesBeforeStarting(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	env := Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--agent", "a"}, "no command"},
		{[]string{"run", "--", "true"}, "--agent is required"},
		{[]string{"run", "--agent", "a", "--workspace", "/", "--", "true"}, "whole filesystem"},
		{[]string{"run", "--agent", "a", "--workspace", home, "--", "true"}, "home directory"},
		{[]string{"run", "--agent", "a", "--env", "WARDEN_CLIENT_SECRET", "--", "true"}, "secrets never enter"},
		{[]string{"run", "--agent", "a", "--allow-weaker", "namespaces", "--", "true"}, "unknown mechanism"},
		{[]string{"run", "--agent", "a", "--allow-host", "a.*.com", "--", "true"}, "--allow-host"},
		{[]string{"run", "--agent", "a", "--on-lease-loss", "shrug", "--", "true"}, "kill or freeze"},
		{[]string{"run", "--agent", "a", "--skill", "Notes", "--", "true"}, "--skill: skill name"},
		{[]string{"run", "--agent", "a", "--skill", "notes@sha256:abc", "--", "true"}, "want sha256:"},
		{[]string{"run", "--agent", "a", "--skill", "notes", "--skill", "notes@sha256:" + strings.Repeat("ab", 32), "--", "true"}, "given twice"},
		{[]string{"run", "--agent", "a", "--env", "WARDEN_SKILLS", "--", "true"}, "warden sets it"},
		{[]string{"run", "--agent", "a", "--", "true"}, "credentials are needed"},
	} {
		err := Run(context.Background(), tc.args, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != ExitUsage {
			t.Errorf("%v: %v (exit %d), want a usage error about %q", tc.args, err, ExitCode(err), tc.want)
		}
	}
}

func TestExitStatusPassesThrough(t *testing.T) {
	err := &ExitStatus{Code: 7}
	if ExitCode(err) != 7 || ErrorLine(err) != "" {
		t.Fatalf("ExitStatus: exit %d, line %q", ExitCode(err), ErrorLine(err))
	}
}
