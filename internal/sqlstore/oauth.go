package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

var _ warden.OAuthStore = (*Store)(nil)

// CreateOAuthClient stores a registered client; an ID already taken is EConflict.
func (s *Store) CreateOAuthClient(ctx context.Context, c *warden.OAuthClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return storeError(err)
	}
	_, err = s.exec(ctx, s.write, `INSERT INTO oauth_clients (client_id, name, redirect_uris, created_at) VALUES (?, ?, ?, ?)`,
		c.ID, c.Name, string(uris), unixNanos(c.CreatedAt))
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "client %q already exists", c.ID)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// OAuthClient returns a registered client.
func (s *Store) OAuthClient(ctx context.Context, id string) (*warden.OAuthClient, error) {
	var c warden.OAuthClient
	var uris string
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT client_id, name, redirect_uris, created_at FROM oauth_clients WHERE client_id = ?`), id).
		Scan(&c.ID, &c.Name, &uris, timeColumn{&c.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "no client %q is registered", id)
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, storeError(err)
	}
	return &c, nil
}

// CountOAuthClients counts the registered clients.
func (s *Store) CountOAuthClients(ctx context.Context) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_clients`).Scan(&n); err != nil {
		return 0, storeError(err)
	}
	return n, nil
}

const codeColumns = `hash, client_id, redirect_uri, agent_id, person, role, epoch, resource, scope, code_challenge, expires_at`

// CreateAuthorizationCode stores a code by its hash.
func (s *Store) CreateAuthorizationCode(ctx context.Context, c *warden.AuthorizationCode) error {
	_, err := s.exec(ctx, s.write, `INSERT INTO oauth_codes (`+codeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.RedirectURI, c.AgentID, c.Person, string(c.Role), c.Epoch, c.Resource, c.Scope, c.CodeChallenge, unixNanos(c.ExpiresAt))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// TakeAuthorizationCode deletes the code and returns it, unless it expired before now; a
// second take of one code finds nothing.
func (s *Store) TakeAuthorizationCode(ctx context.Context, hash string, now time.Time) (*warden.AuthorizationCode, error) {
	var c warden.AuthorizationCode
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+codeColumns+` FROM oauth_codes WHERE hash = ?`+s.dialect.ForUpdate), hash).
			Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.AgentID, &c.Person, &role, &c.Epoch, &c.Resource, &c.Scope, &c.CodeChallenge, timeColumn{&c.ExpiresAt})
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "no such authorization code")
		}
		if err != nil {
			return storeError(err)
		}
		c.Role = warden.Role(role)
		// Deleting is what makes the code single-use: of two concurrent takes only one deletes it.
		n, err := s.exec(ctx, tx, `DELETE FROM oauth_codes WHERE hash = ?`, hash)
		if err != nil {
			return storeError(err)
		}
		if n != 1 {
			return warden.Errorf(warden.ENotFound, "no such authorization code")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(c.ExpiresAt) {
		return nil, warden.Errorf(warden.ENotFound, "the authorization code expired")
	}
	return &c, nil
}

const refreshColumns = `hash, family, client_id, agent_id, person, role, epoch, resource, scope, created_at, auth_at, expires_at, used_at, revoked_at`

// CreateRefreshToken stores a refresh token by its hash.
func (s *Store) CreateRefreshToken(ctx context.Context, t *warden.RefreshToken) error {
	_, err := s.exec(ctx, s.write, `INSERT INTO oauth_refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.Family, t.ClientID, t.AgentID, t.Person, string(t.Role), t.Epoch, t.Resource, t.Scope,
		unixNanos(t.CreatedAt), unixNanos(t.AuthAt), unixNanos(t.ExpiresAt), unixNanos(t.UsedAt), unixNanos(t.RevokedAt))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// UseRefreshToken marks a live token used; a used or revoked one comes back with reused true.
func (s *Store) UseRefreshToken(ctx context.Context, hash string, now time.Time) (*warden.RefreshToken, bool, error) {
	var t warden.RefreshToken
	reused := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE hash = ?`+s.dialect.ForUpdate), hash).
			Scan(&t.Hash, &t.Family, &t.ClientID, &t.AgentID, &t.Person, &role, &t.Epoch, &t.Resource, &t.Scope,
				timeColumn{&t.CreatedAt}, timeColumn{&t.AuthAt}, timeColumn{&t.ExpiresAt}, timeColumn{&t.UsedAt}, timeColumn{&t.RevokedAt})
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "no such refresh token")
		}
		if err != nil {
			return storeError(err)
		}
		t.Role = warden.Role(role)
		if !t.UsedAt.IsZero() || !t.RevokedAt.IsZero() {
			reused = true
			return nil
		}
		n, err := s.exec(ctx, tx, `UPDATE oauth_refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL`,
			unixNanos(now), hash)
		if err != nil {
			return storeError(err)
		}
		reused = n != 1
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return &t, reused, nil
}

// RevokeRefreshFamily revokes every token of the family not revoked yet.
func (s *Store) RevokeRefreshFamily(ctx context.Context, family string, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.write, `UPDATE oauth_refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`,
		unixNanos(now), family)
	if err != nil {
		return 0, storeError(err)
	}
	return n, nil
}

// PruneOAuth deletes codes and refresh tokens that expired before t.
func (s *Store) PruneOAuth(ctx context.Context, before time.Time) (int, error) {
	var total int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM oauth_codes WHERE expires_at < ?`, `DELETE FROM oauth_refresh_tokens WHERE expires_at < ?`} {
			n, err := s.exec(ctx, tx, q, boundNanos(before))
			if err != nil {
				return storeError(err)
			}
			total += n
		}
		return nil
	})
	return total, err
}
