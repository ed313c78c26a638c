package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestHelp: `warden COMMAND --help` prints the command's usage on stdout and succeeds; a wrong
// flag prints it on stderr and is a usage error.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		var out, errOut bytes.Buffer
		args := append(strings.Fields(c.name), "--help")
		err := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		if ExitCode(err) != ExitOK || ErrorLine(err) != "" {
			t.Errorf("%s --help: exit %d, error %q", c.name, ExitCode(err), ErrorLine(err))
		}
		if !strings.HasPrefix(out.String(), "Usage: warden "+c.name) || errOut.Len() != 0 {
			t.Errorf("%s --help: stdout %q, stderr %q", c.name, out.String(), errOut.String())
		}
	}
	for _, group := range []string{"secret", "admin token", "audit", "drill"} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), append(strings.Fields(group), "--help"), Env{Stdout: &out, Stderr: &errOut})
		if err != nil || !strings.Contains(out.String(), "warden "+group+" ") || errOut.Len() != 0 {
			t.Errorf("%s --help: %v, stdout %q, stderr %q", group, err, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"agent", "create", "--no-such-flag"}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	if ExitCode(err) != ExitUsage || !strings.Contains(errOut.String(), "Usage: warden agent create") || out.Len() != 0 {
		t.Errorf("a wrong flag: exit %d, stdout %q, stderr %q", ExitCode(err), out.String(), errOut.String())
	}
}

// TestHelpAndVersion: `warden help GROUP` and `warden help COMMAND` print what `--help` does;
// `--version` and `version` print the version, the commit and the Go version.
func TestHelpAndVersion(t *testing.T) {
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		return out.String(), errOut.String(), err
	}
	out, _, err := run("help", "agent")
	if err != nil || !strings.Contains(out, "warden agent create") || strings.Contains(out, "warden serve") {
		t.Fatalf("help agent: %v\n%s", err, out)
	}
	out, _, err = run("help", "agent", "create")
	if ExitCode(err) != ExitOK || !strings.HasPrefix(out, "Usage: warden agent create") || !strings.Contains(out, "\n  --owner string\n") ||
		strings.Contains(out, "\n  -owner") {
		t.Fatalf("help agent create: %v\n%s", err, out)
	}
	if _, errOut, err := run("help", "nosuch"); err == nil || !strings.Contains(err.Error(), `unknown command "nosuch"`) || errOut == "" {
		t.Fatalf("help nosuch: %v %q", err, errOut)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := run(args...)
		if err != nil || !strings.HasPrefix(out, "warden "+Version+" (") || !strings.Contains(out, runtime.Version()) {
			t.Fatalf("%v: %v %q", args, err, out)
		}
	}
}

// TestReasonRule: every command that stops or lets go an agent or a tool requires --reason,
// refused before the server is asked and said in its help; a policy rollback takes one
// optionally.
func TestReasonRule(t *testing.T) {
	asked := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = true
		http.Error(w, "{}", http.StatusTeapot)
	}))
	defer srv.Close()
	env := func(out, errOut *bytes.Buffer) Env {
		return Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errOut, Getenv: func(k string) string {
			return map[string]string{"WARDEN_ADDR": srv.URL, "WARDEN_TOKEN": "wadm_x"}[k]
		}}
	}
	digest := "sha256:" + strings.Repeat("a", 64)
	for _, args := range [][]string{
		{"kill", "bot"}, {"agent", "suspend", "bot"}, {"agent", "resume", "bot"}, {"agent", "restore", "bot"},
		{"lockdown"}, {"lockdown", "lift"}, {"quarantine", digest}, {"quarantine", "lift", digest},
		{"tool", "disable", "api"}, {"tool", "enable", "api"}, {"tool", "accept", "api"},
		{"agent", "resume", "bot", "--reason", "  "},
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), args, env(&out, &errOut))
		if ExitCode(err) != ExitUsage || !strings.Contains(ErrorLine(err), "a reason is required") {
			t.Errorf("%v: %v (exit %d), want a usage error asking for a reason", args, err, ExitCode(err))
		}
		out.Reset()
		if err := Run(context.Background(), append(args[:len(args):len(args)], "--help"), env(&out, &errOut)); ExitCode(err) != ExitOK ||
			!strings.Contains(out.String(), "--reason string\n    \twhy (required") {
			t.Errorf("%v --help does not say --reason is required:\n%s", args, out.String())
		}
	}
	if asked {
		t.Error("the server was asked without a reason")
	}
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"policy", "rollback", "1", "--help"}, env(&out, &errOut)); ExitCode(err) != ExitOK || !strings.Contains(out.String(), "why (optional") {
		t.Errorf("policy rollback --help: %v\n%s", err, out.String())
	}
	if err := Run(context.Background(), []string{"policy", "rollback", "1"}, env(&out, &errOut)); ExitCode(err) == ExitUsage || !asked {
		t.Errorf("policy rollback without a reason: %v (exit %d), asked %v; want it sent", err, ExitCode(err), asked)
	}
}
