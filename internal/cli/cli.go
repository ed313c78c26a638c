// Package cli implements the warden command: `warden serve` runs the server, and every other
// subcommand is a thin client of the server's HTTP API.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
)

// Exit codes, documented in docs/cli.md.
const (
	ExitOK           = 0
	ExitError        = 1 // the server failed or something unexpected happened
	ExitUsage        = 2 // the command line is wrong
	ExitUnauthorized = 3 // the credential is missing, unknown, or lacks the role
	ExitNotFound     = 4 // the named thing does not exist
	ExitConflict     = 5 // the request conflicts with the current state
	ExitUnavailable  = 6 // the server cannot be reached or is not ready
)

// Env is what a command runs with: its standard streams and environment.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	HTTPClient     *http.Client // nil means a default client
	// OpenURL opens a URL in the person's browser (`warden login`); nil: the system's opener.
	OpenURL func(ctx context.Context, url string) error
}

// OSEnv returns the process's own streams and environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// UsageError is a mistake on the command line.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// ExitCode maps an error from Run to the process's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if es := (*ExitStatus)(nil); errors.As(err, &es) {
		return es.Code
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK // `warden COMMAND --help` printed what was asked for
	}
	if errors.As(err, &ue) {
		return ExitUsage
	}
	switch warden.ErrorCode(err) {
	case warden.EUnauthenticated, warden.EForbidden:
		return ExitUnauthorized
	case warden.ENotFound:
		return ExitNotFound
	case warden.EConflict:
		return ExitConflict
	case warden.EUnavailable:
		return ExitUnavailable
	case warden.EInvalid:
		return ExitUsage
	}
	return ExitError
}

type command struct {
	name    string // "agent create"
	args    string // "NAME --owner EMAIL --purpose TEXT"
	summary string
	run     func(ctx context.Context, c *invocation) error
}

var commands []command

func init() {
	commands = slices.Concat(serveCommands, loginCommands, connectCommands, runCommands, applyCommands, skillCommands, killCommands, approvalCommands, alertCommands, agentCommands, toolCommands, policyCommands, setCommands, policySuggestCommands, policyShadowCommands, replayCommands, adminCommands, keyCommands, auditCommands, benchCommands, []command{
		{"whoami", "", "show the profile, server, person and role in use", whoami},
		{"version", "", "print the version", version},
	})
}

// Version and Commit are stamped at build time (make release, the Dockerfile) with
// -ldflags "-X github.com/wardenhq/warden/internal/cli.Version=… -X …cli.Commit=…". A stamped
// value wins over what the go command records, which these builds may not have (-buildvcs=false).
var (
	Version = "dev"
	Commit  = ""
)

// Run runs the warden command with args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	// `warden help agent`, `warden help agent create`: the group's commands, or the command's
	// flags, as `warden agent --help` and `warden agent create --help` print them.
	if len(args) > 1 && args[0] == "help" {
		name := strings.Join(args[1:], " ")
		if !slices.ContainsFunc(commands, func(c command) bool { return c.name == name || strings.HasPrefix(c.name, name+" ") }) {
			printUsage(env.Stderr, "")
			return usagef("unknown command %q", name)
		}
		return Run(ctx, append(slices.Clone(args[1:]), "--help"), env)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout, "")
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			inv := newInvocation(c, args[len(words):], env)
			return c.run(ctx, inv)
		}
	}
	// `warden secret --help`: the commands of a group.
	if last := args[len(args)-1]; len(args) >= 2 && (last == "-h" || last == "-help" || last == "--help") {
		group := strings.Join(args[:len(args)-1], " ")
		if slices.ContainsFunc(commands, func(c command) bool { return strings.HasPrefix(c.name, group+" ") }) {
			printUsage(env.Stdout, group+" ")
			return nil
		}
	}
	printUsage(env.Stderr, args[0])
	return usagef("unknown command %q", strings.Join(args, " "))
}

func printUsage(w io.Writer, prefix string) {
	fmt.Fprintln(w, "warden: a security control plane for AI agents")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands {
		if prefix != "" && !strings.HasPrefix(c.name, prefix) {
			continue
		}
		fmt.Fprintf(w, "  warden %-22s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'warden COMMAND --help' for a command's flags. Client commands take --addr (WARDEN_ADDR),")
	fmt.Fprintln(w, "--data (WARDEN_DATA), --profile (WARDEN_PROFILE) and --json; the credential is WARDEN_TOKEN, else the")
	fmt.Fprintln(w, "profile's (warden login), else DATA/admin.token.")
	fmt.Fprintln(w, "--reason TEXT is required by every command that stops or lets go an agent or a tool (kill,")
	fmt.Fprintln(w, "agent suspend|resume|restore, lockdown [lift], quarantine [lift], tool disable|enable|accept)")
	fmt.Fprintln(w, "and optional elsewhere; it is recorded in the audit log.")
}

// invocation is one run of a command: its flags, positional arguments and environment.
type invocation struct {
	cmd  command
	env  Env
	args []string
	fs   *flag.FlagSet

	addr, data  string
	profileName string
	json        bool

	reason      *string // --reason, when the command takes one (reasonFlag)
	containment bool    // the reason is required: the command stops or lets go an agent or a tool
}

// reasonFlag adds --reason. A command that imposes or lifts a containment requires it, by the
// one rule of warden.CheckReason, which parse applies and the server applies again.
func (inv *invocation) reasonFlag(p *string, containment bool) {
	help := "why (optional; recorded in the audit log)"
	if containment {
		help = "why (required: this stops or lets go an agent or a tool; recorded in the audit log)"
	}
	inv.fs.StringVar(p, "reason", "", help)
	inv.reason, inv.containment = p, containment
}

func newInvocation(c command, args []string, env Env) *invocation {
	inv := &invocation{cmd: c, env: env, args: args}
	inv.fs = flag.NewFlagSet("warden "+c.name, flag.ContinueOnError)
	// Help that was asked for goes to stdout; usage after a mistake goes to stderr.
	out := env.Stderr
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			out = env.Stdout
		}
	}
	inv.fs.SetOutput(out)
	inv.fs.Usage = func() {
		fmt.Fprintf(out, "Usage: warden %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
		printFlags(out, inv.fs)
	}
	return inv
}

// printFlags lists a command's flags as they are written on the command line, with two dashes
// ("--owner EMAIL"), which flag.PrintDefaults would show with one.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		usage = strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
}

// clientFlags adds the flags every client command has.
func (inv *invocation) clientFlags() {
	inv.fs.StringVar(&inv.addr, "addr", "", "server address (env WARDEN_ADDR, default http://127.0.0.1:8787)")
	inv.fs.StringVar(&inv.data, "data", "", "data directory holding admin.token (env WARDEN_DATA, default ./warden-data)")
	inv.fs.StringVar(&inv.profileName, "profile", "", "the CLI profile to use (env WARDEN_PROFILE, default the current one; see warden config profiles)")
	inv.fs.BoolVar(&inv.json, "json", false, "print JSON for programs")
}

// parse parses flags wherever they appear among the positional arguments and checks that there
// are exactly as many positionals as names, which name them for the error message.
func (inv *invocation) parse(names ...string) ([]string, error) {
	return inv.parseOptional(len(names), names...)
}

// parseOptional is parse when only the first required of names must be given.
func (inv *invocation) parseOptional(required int, names ...string) ([]string, error) {
	var pos []string
	args := inv.args
	for {
		if err := inv.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v (see 'warden %s --help')", err, inv.cmd.name)
		}
		args = inv.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < required || len(pos) > len(names) {
		if len(pos) < required {
			return nil, usagef("missing %s (usage: warden %s %s)", names[len(pos)], inv.cmd.name, inv.cmd.args)
		}
		return nil, usagef("unexpected argument %q (usage: warden %s %s)", pos[len(names)], inv.cmd.name, inv.cmd.args)
	}
	if inv.reason != nil {
		r, err := warden.CheckReason(*inv.reason, inv.containment)
		if err != nil {
			return nil, usagef("%s", warden.ErrorMessage(err))
		}
		*inv.reason = r
	}
	return pos, nil
}

func (inv *invocation) getenv(name string) string {
	if inv.env.Getenv == nil {
		return ""
	}
	return inv.env.Getenv(name)
}

// dataDir is --data, else WARDEN_DATA, else ./warden-data.
func (inv *invocation) dataDir() string {
	switch {
	case inv.data != "":
		return inv.data
	case inv.getenv("WARDEN_DATA") != "":
		return inv.getenv("WARDEN_DATA")
	}
	return "./warden-data"
}

// client returns an API client with the address and credential the flags and environment name.
func (inv *invocation) client() (*apiclient.Client, error) {
	token, err := inv.adminToken()
	if err != nil {
		return nil, err
	}
	return inv.newClient(inv.serverAddr(), token), nil
}

// adminToken is the credential: WARDEN_TOKEN; else with --data the admin.token there; else
// the profile's (when the server is the profile's); else DATA/admin.token.
func (inv *invocation) adminToken() (string, error) {
	if token := inv.getenv("WARDEN_TOKEN"); token != "" {
		return token, nil
	}
	if inv.data == "" {
		_, pr, err := inv.profile()
		if err != nil {
			return "", err
		}
		// A profile's credential goes only to the profile's server, never to an --addr or
		// WARDEN_ADDR elsewhere.
		if pr != nil && sameServer(inv.serverAddr(), pr.Server) {
			return pr.credential()
		}
	}
	path := filepath.Join(inv.dataDir(), "admin.token")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", warden.Errorf(warden.EUnauthenticated, "no credential: run warden login --server URL, set WARDEN_TOKEN, or run where %s exists (--data or WARDEN_DATA)", path)
	}
	return strings.TrimSpace(string(b)), nil
}

func whoami(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	p, err := c.Whoami(ctx)
	if err != nil {
		return err
	}
	profile, _, _ := inv.profile()
	out := struct {
		*warden.Principal
		Profile string `json:"profile,omitempty"`
		Server  string `json:"server"`
	}{p, profile, strings.TrimSuffix(c.Base, "/")}
	return inv.print(out, func(w io.Writer) {
		kv(w, "profile", profile, "server", out.Server, "name", p.Name, "email", p.Email, "role", string(p.Role))
	})
}

func version(ctx context.Context, inv *invocation) error {
	if _, err := inv.parse(); err != nil {
		return err
	}
	fmt.Fprintln(inv.env.Stdout, versionLine())
	return nil
}

// versionLine is what `warden version` prints: the version, the commit it was built from and the
// Go version. Stamped values come first; otherwise what the go command recorded: the module's
// version for `go install …@v1.2.3`, the VCS revision ("+modified" for a tree with uncommitted
// changes) for a build in a checkout.
func versionLine() string {
	version, commit := Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if commit == "" && rev != "" {
			commit = rev[:min(12, len(rev))]
			if modified == "true" {
				commit += "+modified"
			}
		}
	}
	if commit == "" {
		commit = "unknown commit"
	} else {
		commit = "commit " + commit
	}
	return fmt.Sprintf("warden %s (%s, %s)", version, commit, runtime.Version())
}

// ErrorLine renders err as the single line the command prints on stderr.
func ErrorLine(err error) string {
	if es := (*ExitStatus)(nil); errors.As(err, &es) {
		return "" // the command's own status: warden has nothing to add
	}
	if errors.Is(err, flag.ErrHelp) {
		return "" // the help was printed; it is not an error
	}
	var e *warden.Error
	if errors.As(err, &e) && e.Code != warden.EInternal {
		return strings.Join(strings.Fields(e.Message), " ")
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
