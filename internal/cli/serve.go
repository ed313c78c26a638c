package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/server"
)

var serveCommands = []command{
	{"serve", "[--listen ADDR] [--data DIR] [--store URL] [--config FILE] [--retention DURATION]", "run the warden server", serve},
}

func serve(ctx context.Context, inv *invocation) error {
	var listen, data, store, file string
	inv.fs.StringVar(&listen, "listen", "", "address to listen on (env WARDEN_LISTEN, default "+config.DefaultListen+")")
	inv.fs.StringVar(&data, "data", "", "data directory (env WARDEN_DATA, default "+config.DefaultData+")")
	inv.fs.StringVar(&store, "store", "", "sqlite:PATH or a postgres:// URL (env WARDEN_STORE, default sqlite:DATA/warden.db)")
	inv.fs.StringVar(&file, "config", "", "YAML configuration file")
	var retention time.Duration
	inv.fs.Func("retention", "delete audit events older than this (e.g. 90d, 2160h), keeping the log verifiable (default: keep every event)", func(v string) error {
		d, err := apitype.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration such as 90d or 2160h", v)
		}
		retention = d
		return nil
	})
	if _, err := inv.parse(); err != nil {
		return err
	}
	// defaults → file → environment → flags, at start and again on SIGHUP.
	load := func() (config.Config, error) {
		cfg := config.Default()
		if file != "" {
			if err := cfg.Load(file); err != nil {
				return cfg, err
			}
		}
		cfg.ApplyEnv(inv.getenv)
		for flagVal, field := range map[string]*string{listen: &cfg.Listen, data: &cfg.Data, store: &cfg.Store} {
			if flagVal != "" {
				*field = flagVal
			}
		}
		if retention != 0 {
			cfg.Audit.Retention = config.Duration(retention)
		}
		return cfg, cfg.Validate()
	}
	cfg, err := load()
	if err != nil {
		return usagef("%v", err)
	}
	log, level := newLevelLogger(inv.env.Stderr, cfg.Log)
	srv, err := server.Open(ctx, cfg, log, inv.getenv)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Bootstrap(ctx, inv.env.Stdout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// Caught from before the server answers, so that a SIGHUP never ends it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hupCtx, stopHUP := context.WithCancel(ctx)
	hupDone := make(chan struct{})
	go func() {
		defer close(hupDone)
		reloadOnHUP(hupCtx, hup, file, cfg, load, log, level)
	}()
	err = srv.Serve(ctx, ln, 10*time.Second)
	stopHUP()
	<-hupDone
	return err
}

// reloadOnHUP reads the configuration again on every SIGHUP until ctx ends. It applies what
// config.Reloadable lists, logs what it changed and every other change as needing a restart,
// and keeps the running configuration whole when the file is broken. It never stops the server.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, file string, running config.Config, load func() (config.Config, error), log *slog.Logger, level *slog.LevelVar) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if file == "" {
			log.Warn("SIGHUP: nothing to reload: warden serve was started without --config")
			continue
		}
		next, err := load()
		if err != nil {
			log.Error("configuration not reloaded: the file is invalid; the running configuration stays", "config", file, "err", err)
			continue
		}
		var applied, restart []string
		for _, key := range running.Changed(&next) {
			if slices.Contains(config.Reloadable, key) {
				applied = append(applied, key)
			} else {
				restart = append(restart, key)
			}
		}
		if slices.Contains(applied, "log.level") {
			var to slog.Level
			_ = to.UnmarshalText([]byte(next.Log.Level)) // validated by load
			// Said at the more verbose of the two levels, so that the change is seen either way.
			level.Set(min(level.Level(), to))
			log.Info("configuration reloaded", "config", file, "changed", applied, "log.level", next.Log.Level)
			level.Set(to)
			running.Log.Level = next.Log.Level
		} else {
			log.Info("configuration reloaded: nothing to apply", "config", file)
		}
		if len(restart) > 0 {
			log.Warn("configuration changes that need a restart are ignored until then", "config", file, "keys", restart)
		}
	}
}

// verifyStore is `warden audit verify --store`: it reads the store itself, with no server in
// between. With key (a verifier key, or a file holding one), checkpoints must be signed by it;
// without, by a key the store holds.
func verifyStore(ctx context.Context, location, key string, external []byte) (*apitype.VerifyReport, error) {
	var verifier note.Verifier
	if key != "" {
		vkey := key
		if b, err := warden.ReadFileLimited(key, 4096); err == nil {
			vkey = string(b)
		}
		v, err := checkpoint.ParseVerifierKey(vkey)
		if err != nil {
			return nil, usagef("--key: %v", err)
		}
		verifier = v
	}
	// The location is checked here too, so that a mistake in it is a usage error that names the flag.
	cfg := config.Config{Store: location}
	if _, _, err := cfg.StoreKind(); err != nil {
		return nil, usagef("--store: %v", err)
	}
	return server.VerifyStore(ctx, location, verifier, external)
}

// newLogger logs JSON unless stderr is a terminal (or the configuration says otherwise).
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	log, _ := newLevelLogger(w, c)
	return log
}

// newLevelLogger is newLogger with its level, which can be changed while it logs.
func newLevelLogger(w io.Writer, c config.Log) (*slog.Logger, *slog.LevelVar) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level)) // validated by config
	level := new(slog.LevelVar)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String()) // "500ms", not 500000000
		}
		return a
	}}
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), level
	}
	return slog.New(slog.NewJSONHandler(w, opts)), level
}

// logConfigAuto is the log configuration of client-side long-running commands.
func logConfigAuto() config.Log { return config.Log{Level: "info", Format: "auto"} }
