package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/connect"
)

var connectCommands = []command{
	{"connect", "--agent NAME --listen 127.0.0.1:PORT | --stdio [--tool NAME] [--credentials FILE]", "serve the gateway on localhost, or MCP on stdio for desktop clients, with the agent's token added", connectCmd},
}

// agentCredentials reads WARDEN_CLIENT_ID and WARDEN_CLIENT_SECRET, or a JSON file with
// client_id and client_secret (as `warden agent create --json` prints them).
func (inv *invocation) agentCredentials(file string) (connect.Credentials, error) {
	var c connect.Credentials
	if file != "" {
		if err := checkPrivate(file); err != nil {
			return c, err
		}
		b, err := readLimited(file)
		if err != nil {
			return c, err
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return c, usagef("%s: want a JSON object with client_id and client_secret", file)
		}
	} else {
		c.ClientID, c.ClientSecret = inv.getenv("WARDEN_CLIENT_ID"), inv.getenv("WARDEN_CLIENT_SECRET")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return c, usagef("the agent's credentials are needed: set WARDEN_CLIENT_ID and WARDEN_CLIENT_SECRET, or give --credentials FILE")
	}
	return c, nil
}

// checkPrivate refuses a credentials file that others than its owner may read, as ssh refuses
// such a private key: the secret in it acts as the agent.
func checkPrivate(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return usagef("%v", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return usagef("%s is readable by others (mode %04o): its secret acts as the agent; run chmod 600 %s", file, perm, file)
	}
	return nil
}

func (inv *invocation) serverAddr() string {
	switch {
	case inv.addr != "":
		return inv.addr
	case inv.getenv("WARDEN_ADDR") != "":
		return inv.getenv("WARDEN_ADDR")
	}
	if _, pr, err := inv.profile(); err == nil && pr != nil {
		return pr.Server
	}
	return "http://127.0.0.1:8787"
}

// sameServer reports whether two server addresses name one server (a trailing slash aside).
func sameServer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

func connectCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var agent, listen, credFile, tool, level string
	var stdio bool
	inv.fs.StringVar(&agent, "agent", "", "the agent's name; connect checks that the credentials are this agent's (required with --listen)")
	inv.fs.StringVar(&listen, "listen", "127.0.0.1:8788", "loopback address to serve on")
	inv.fs.BoolVar(&stdio, "stdio", false, "serve MCP on stdin and stdout, for a client that launches a command (Claude Desktop, Claude Code, Cursor, VS Code)")
	inv.fs.StringVar(&tool, "tool", "", "with --stdio: relay to one tool's server (/mcp/NAME) instead of every granted tool (/mcp)")
	inv.fs.StringVar(&credFile, "credentials", "", "JSON file with client_id and client_secret, mode 0600 (default: WARDEN_CLIENT_ID, WARDEN_CLIENT_SECRET)")
	inv.fs.StringVar(&level, "log-level", "info", "what to log on stderr: debug, info, warn, error")
	if _, err := inv.parse(); err != nil {
		return err
	}
	switch level {
	case "debug", "info", "warn", "error":
	default:
		return usagef("--log-level %q: want debug, info, warn or error", level)
	}
	lvl := logConfigAuto()
	lvl.Level = level
	if stdio {
		listenSet := false
		inv.fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
		if listenSet {
			return usagef("--listen and --stdio are two ways to serve: give one")
		}
		return inv.connectStdio(ctx, agent, tool, credFile, lvl)
	}
	if tool != "" {
		return usagef("--tool goes with --stdio")
	}
	if agent == "" {
		return usagef("--agent is required")
	}
	if err := connect.CheckLoopback(listen); err != nil {
		return err
	}
	creds, err := inv.agentCredentials(credFile)
	if err != nil {
		return err
	}
	log := newLogger(inv.env.Stderr, lvl)
	sc, err := connect.New(inv.serverAddr(), creds, log)
	if err != nil {
		return err
	}
	name, err := sc.AgentName(ctx)
	if err != nil {
		return err
	}
	if name != agent {
		return usagef("the credentials are agent %q's, not %q's", name, agent)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	fmt.Fprintf(inv.env.Stdout, "Serving warden's gateway for agent %q on http://%s (MCP at /mcp, HTTP tools at /http/<tool>/…).\n", agent, ln.Addr())
	return sc.Serve(ctx, ln)
}

// connectStdio is `warden connect --stdio`: stdout carries JSON-RPC and nothing else; what
// connect has to say goes to stderr. It checks the credentials with warden before it reads
// stdin, so a client that starts it against an unreachable warden or with bad credentials
// sees it exit at once with the reason on stderr.
func (inv *invocation) connectStdio(ctx context.Context, agent, tool, credFile string, lvl config.Log) error {
	path := "/mcp"
	if tool != "" {
		if err := warden.ValidateName("tool", tool); err != nil {
			return usagef("--tool: %s", warden.ErrorMessage(err))
		}
		path += "/" + tool
	}
	creds, err := inv.agentCredentials(credFile)
	if err != nil {
		return err
	}
	sc, err := connect.New(inv.serverAddr(), creds, newLogger(inv.env.Stderr, lvl))
	if err != nil {
		return err
	}
	name, err := sc.AgentName(ctx)
	if err != nil {
		return err
	}
	if agent != "" && name != agent {
		return usagef("the credentials are agent %q's, not %q's", name, agent)
	}
	in, ok := inv.env.Stdin.(io.ReadCloser)
	if !ok {
		in = io.NopCloser(inv.env.Stdin)
	}
	return sc.Stdio(ctx, in, inv.env.Stdout, path, name)
}
