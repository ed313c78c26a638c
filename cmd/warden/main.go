// Command warden is the security control plane for AI agents: `warden serve` runs the server;
// every other subcommand is a client of its API. See docs/cli.md for exit codes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/sandbox"
)

func main() {
	sandbox.MaybeInit() // a sandbox's init is this binary re-executed: it never returns
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.OSEnv())
	stop()
	if err != nil && cli.ErrorLine(err) != "" {
		fmt.Fprintln(os.Stderr, "warden:", cli.ErrorLine(err))
	}
	os.Exit(cli.ExitCode(err))
}
