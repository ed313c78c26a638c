package server

import (
	"context"
	"log/slog"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/config"
)

// VerifyStore verifies the audit log of a store read directly (sqlite:PATH or a postgres://
// URL): on the server's machine, or on a copy of its database, with no server in between. With
// a verifier, checkpoints must be signed by it; without, by a key the store holds, which
// someone able to write the store could have replaced. It is `warden audit verify --store`.
func VerifyStore(ctx context.Context, location string, verifier note.Verifier, external []byte) (*audit.Report, error) {
	cfg := config.Config{Store: location}
	kind, where, err := cfg.StoreKind()
	if err != nil {
		return nil, warden.WrapError(warden.EInvalid, err.Error(), err)
	}
	// Opening a path that does not exist would create an empty database, which verifies.
	if _, err := os.Stat(where); kind == "sqlite" && err != nil {
		return nil, warden.WrapError(warden.ENotFound, err.Error(), err)
	}
	s, err := openStore(ctx, cfg, slog.Default())
	if err != nil {
		return nil, warden.WrapError(warden.EUnavailable, "cannot open the store", err)
	}
	defer s.Close()
	var verifiers []note.Verifier
	if verifier != nil {
		verifiers = append(verifiers, verifier)
	} else {
		keys, err := s.AuditKeys(ctx)
		if err != nil {
			return nil, err
		}
		if verifiers, err = checkpoint.Verifiers(keys); err != nil {
			return nil, err
		}
	}
	return audit.Verify(ctx, s, audit.VerifyOptions{Verifiers: verifiers, External: external})
}
