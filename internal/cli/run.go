package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/runner"
	"github.com/wardenhq/warden/internal/sandbox"
)

var runCommands = []command{
	{"run", "--agent NAME [--workspace DIR] [--ro PATH …] [--rw PATH …] [--allow-host HOST[:PORT] …] [--memory 2G] [--pids 512] [--cpu 1.0] [--timeout 1h] [--env NAME …] [--skill NAME[@sha256:…] …] [--allow-weaker NAME …] [--on-lease-loss kill|freeze] [--credentials FILE] [--addr URL] -- CMD ARGS…",
		"run a command as the agent in a sandbox whose only way out is through warden", runCmd},
}

// Exit codes of `warden run` beyond the command's own (documented in docs/sandbox.md).
const (
	ExitRunTimeout  = 124 // --timeout ended the command
	ExitRunKilled   = 125 // warden killed the sandbox: the agent was killed or suspended, a lockdown began, or the lease was lost
	ExitRunNotFound = 127 // the command does not exist inside the sandbox
)

// ExitStatus is an error that carries the exit code of `warden run` and says nothing more:
// the command's own status, or one of warden's run codes after a message already printed.
type ExitStatus struct{ Code int }

func (e *ExitStatus) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// secretEnv are never passed into a sandbox, whatever --env says.
var secretEnv = map[string]bool{"WARDEN_CLIENT_ID": true, "WARDEN_CLIENT_SECRET": true, "WARDEN_TOKEN": true, "WARDEN_MASTER_KEY": true}

func runCmd(ctx context.Context, inv *invocation) error {
	inv.fs.StringVar(&inv.addr, "addr", "", "server address (env WARDEN_ADDR, default http://127.0.0.1:8787)")
	var (
		agent, credFile, workspace, memory, onLeaseLoss string
		ro, rw, allowHosts, envNames, weaker, skills    listFlag
		pids                                            int
		cpu                                             float64
		timeout                                         time.Duration
	)
	inv.fs.StringVar(&agent, "agent", "", "the agent to run as (required); the credentials must be its")
	inv.fs.StringVar(&credFile, "credentials", "", "JSON file with client_id and client_secret (default: WARDEN_CLIENT_ID, WARDEN_CLIENT_SECRET)")
	inv.fs.StringVar(&workspace, "workspace", ".", "directory the command may write, mounted at the same path; it starts there")
	inv.fs.Var(&ro, "ro", "more host paths to show read-only (repeatable)")
	inv.fs.Var(&rw, "rw", "more host paths to share read-write (repeatable)")
	inv.fs.Var(&allowHosts, "allow-host", "HOST[:PORT] or *.DOMAIN[:PORT] this run may reach through the egress proxy (repeatable); narrows what policy allows, never widens it")
	inv.fs.StringVar(&memory, "memory", "2G", "memory limit (K, M, G suffixes; 0 for none)")
	inv.fs.IntVar(&pids, "pids", 512, "process and thread limit (0 for none)")
	inv.fs.Float64Var(&cpu, "cpu", 0, "CPU limit in CPUs, such as 1.5 (0 for none)")
	inv.fs.DurationVar(&timeout, "timeout", 0, "kill the sandbox after this long (0 for never)")
	inv.fs.Var(&envNames, "env", "environment variable to pass into the sandbox (repeatable); nothing else passes")
	inv.fs.Var(&skills, "skill", "NAME or NAME@sha256:… of a skill the agent is granted, verified and mounted read-only at $HOME/.claude/skills/NAME (repeatable); its allowed-tools grant nothing")
	inv.fs.Var(&weaker, "allow-weaker", "a mechanism the sandbox may run without if this machine lacks it: "+mechanismNames()+" (repeatable)")
	inv.fs.StringVar(&onLeaseLoss, "on-lease-loss", runner.OnLeaseLossKill, "when warden stays silent for a lease: kill, or freeze until it answers")
	if err := inv.fs.Parse(inv.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v (see 'warden run --help')", err)
	}
	command := inv.fs.Args()
	if len(command) == 0 {
		return usagef("no command to run (usage: warden run --agent NAME -- CMD ARGS…)")
	}
	if agent == "" {
		return usagef("--agent is required")
	}
	if onLeaseLoss != runner.OnLeaseLossKill && onLeaseLoss != runner.OnLeaseLossFreeze {
		return usagef("--on-lease-loss must be kill or freeze")
	}
	mem, err := parseBytes(memory)
	if err != nil {
		return usagef("--memory: %v", err)
	}
	if pids < 0 || cpu < 0 || timeout < 0 {
		return usagef("--pids, --cpu and --timeout must not be negative")
	}
	spec := sandbox.Spec{
		Command: command,
		Limits:  sandbox.Limits{Memory: mem, Pids: pids, CPU: cpu},
		Stdin:   inv.env.Stdin, Stdout: inv.env.Stdout, Stderr: inv.env.Stderr,
	}
	if spec.Workspace, err = hostPath(workspace); err != nil {
		return err
	}
	if cwd, err := os.Getwd(); err == nil && (cwd == spec.Workspace || strings.HasPrefix(cwd, spec.Workspace+"/")) {
		spec.Dir = cwd
	}
	for _, p := range ro {
		hp, err := hostPath(p)
		if err != nil {
			return err
		}
		spec.ReadOnly = append(spec.ReadOnly, hp)
	}
	for _, p := range rw {
		hp, err := hostPath(p)
		if err != nil {
			return err
		}
		spec.ReadWrite = append(spec.ReadWrite, hp)
	}
	for _, w := range weaker {
		m, err := sandbox.ParseMechanism(w)
		if err != nil {
			return usagef("--allow-weaker: %v", err)
		}
		spec.AllowWeaker = append(spec.AllowWeaker, m)
	}
	spec.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + sandbox.HomeDir}
	for _, name := range envNames {
		if secretEnv[name] {
			return usagef("--env %s: the runner's secrets never enter the sandbox", name)
		}
		if name == "WARDEN_SKILLS" {
			return usagef("--env WARDEN_SKILLS: warden sets it to the skills --skill mounted")
		}
		if v, ok := os.LookupEnv(name); ok {
			spec.Env = append(spec.Env, name+"="+v)
		}
	}
	var mount []runner.Skill
	for _, s := range skills {
		sk, err := runner.ParseSkill(s)
		if err != nil {
			return usagef("--skill: %s", warden.ErrorMessage(err))
		}
		for _, other := range mount {
			if other.Name == sk.Name {
				return usagef("--skill %s is given twice", sk.Name)
			}
		}
		mount = append(mount, sk)
	}
	var hosts []egress.HostPattern
	for _, h := range allowHosts {
		hp, err := egress.ParseHostPattern(h)
		if err != nil {
			return usagef("--allow-host %v", err)
		}
		hosts = append(hosts, hp)
	}
	creds, err := inv.agentCredentials(credFile)
	if err != nil {
		return err
	}

	log := newLogger(inv.env.Stderr, logConfigAuto())
	res, err := runner.Run(ctx, runner.Options{
		Server: inv.serverAddr(), Agent: agent, Credentials: creds, Spec: spec, AllowHosts: hosts, Skills: mount,
		Timeout: timeout, OnLeaseLoss: onLeaseLoss, Log: log, HTTP: inv.env.HTTPClient,
	})
	if err != nil {
		var se *sandbox.StartError
		if errors.Is(err, sandbox.ErrNotFound) && errors.As(err, &se) {
			fmt.Fprintf(inv.env.Stderr, "warden: %s\n", se.Err) // "command not found in the sandbox: NAME…", once
			return &ExitStatus{ExitRunNotFound}
		}
		var we *sandbox.WeakerError
		if errors.As(err, &we) {
			return warden.Errorf(warden.EConflict, "%s", we.Error())
		}
		if errors.As(err, &se) {
			// One line, said once: the message holds the step and the cause (WrapError would
			// append the cause a second time).
			return warden.Errorf(warden.EInternal, "the sandbox could not be built: %s: %s", se.Step, se.Err)
		}
		return err
	}
	for _, p := range res.Weakened {
		fmt.Fprintf(inv.env.Stderr, "warden: ran without %s (%s), as --allow-weaker allowed\n", p.Mechanism, p.Why)
	}
	switch {
	case res.Timeout:
		fmt.Fprintf(inv.env.Stderr, "warden: %s; %d processes killed\n", res.Ended, res.Exit.Killed)
		return &ExitStatus{ExitRunTimeout}
	case res.Exit.Kind == sandbox.ExitedKilled:
		fmt.Fprintf(inv.env.Stderr, "warden: sandbox killed (%s); %d processes killed\n", res.Ended, res.Exit.Killed)
		return &ExitStatus{ExitRunKilled}
	case res.Exit.Code != 0:
		return &ExitStatus{res.Exit.Code}
	}
	return nil
}

func mechanismNames() string {
	var names []string
	for _, m := range sandbox.Mechanisms {
		names = append(names, string(m))
	}
	return strings.Join(names, ", ")
}

// hostPath makes p absolute and resolves its symlinks, so that the sandbox shows it at the
// path it really has.
func hostPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", usagef("%s: %v", p, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return "", usagef("%s: %v", p, pe.Err) // not "/x: lstat /x: …"
	}
	if err != nil {
		return "", usagef("%s: %v", p, err)
	}
	if real == "/" {
		return "", usagef("%s: the whole filesystem cannot be shared with the sandbox", p)
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" && (real == home || strings.HasPrefix(home, real+"/")) {
		return "", usagef("%s holds your home directory (%s), with its keys and credentials: share a project directory instead", p, home)
	}
	return real, nil
}

// parseBytes reads 512M, 2G, 1048576 or 0.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	// !(n >= 0) also refuses NaN; the bound refuses Inf and sizes int64 cannot hold, which
	// would otherwise convert to a negative limit.
	if err != nil || !(n >= 0) || n*float64(mult) >= 1<<63 {
		return 0, fmt.Errorf("%q is not a size such as 512M or 2G", s)
	}
	return int64(n * float64(mult)), nil
}
