package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/wardenhq/warden/internal/connect"
)

var connectCommands = []command{
	{"connect", "--agent NAME --listen 127.0.0.1:PORT [--credentials FILE]", "serve the gateway on localhost with the agent's token added, for frameworks that cannot do OAuth", connectCmd},
}

// agentCredentials reads WARDEN_CLIENT_ID and WARDEN_CLIENT_SECRET, or a JSON file with
// client_id and client_secret (as `warden agent create --json` prints them).
func (inv *invocation) agentCredentials(file string) (connect.Credentials, error) {
	var c connect.Credentials
	if file != "" {
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
	var agent, listen, credFile string
	inv.fs.StringVar(&agent, "agent", "", "the agent's name; the sidecar checks that the credentials are this agent's (required)")
	inv.fs.StringVar(&listen, "listen", "127.0.0.1:8788", "loopback address to serve on")
	inv.fs.StringVar(&credFile, "credentials", "", "JSON file with client_id and client_secret (default: WARDEN_CLIENT_ID, WARDEN_CLIENT_SECRET)")
	if _, err := inv.parse(); err != nil {
		return err
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
	log := newLogger(inv.env.Stderr, logConfigAuto())
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
