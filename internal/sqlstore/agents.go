package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wardenhq/warden"
)

const agentColumns = `id, name, owner, purpose, labels, status, status_reason, epoch, secret_hash,
	created_at, updated_at, expires_at`

// agentArgs lists a's fields in the order of agentColumns.
func agentArgs(a *warden.Agent) ([]any, error) {
	labels, err := jsonText(a.Labels)
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.Name, a.Owner, a.Purpose, labels, string(a.Status), a.StatusReason, a.Epoch, a.SecretHash,
		unixNanos(a.CreatedAt), unixNanos(a.UpdatedAt), unixNanos(a.ExpiresAt)}, nil
}

func scanAgent(row scanner) (*warden.Agent, error) {
	var a warden.Agent
	err := row.Scan(&a.ID, &a.Name, &a.Owner, &a.Purpose, jsonColumn{&a.Labels}, &a.Status, &a.StatusReason,
		&a.Epoch, &a.SecretHash, timeColumn{&a.CreatedAt}, timeColumn{&a.UpdatedAt}, timeColumn{&a.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateAgent stores a new agent; a taken name (or ID) is EConflict.
func (s *Store) CreateAgent(ctx context.Context, a *warden.Agent) error {
	args, err := agentArgs(a)
	if err != nil {
		return storeError(err)
	}
	_, err = s.exec(ctx, s.write, `INSERT INTO agents (`+agentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "agent %q already exists", a.Name)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// Agent returns the agent with the given name.
func (s *Store) Agent(ctx context.Context, name string) (*warden.Agent, error) {
	a, err := s.agent(ctx, s.read, "name", name, "")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "agent %q not found", name)
	}
	return a, err
}

// AgentByID returns the agent with the given ID.
func (s *Store) AgentByID(ctx context.Context, id string) (*warden.Agent, error) {
	a, err := s.agent(ctx, s.read, "id", id, "")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "agent with ID %q not found", id)
	}
	return a, err
}

// agent reads the agent whose column key holds value. It returns sql.ErrNoRows as it is, for the
// caller to name what was missing.
func (s *Store) agent(ctx context.Context, q querier, key, value, suffix string) (*warden.Agent, error) {
	row := q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+agentColumns+` FROM agents WHERE `+key+` = ?`+suffix), value)
	a, err := scanAgent(row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, storeError(err)
	}
	return a, err
}

// Agents lists every agent, ordered by name.
func (s *Store) Agents(ctx context.Context) ([]*warden.Agent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanAgent)
}

// UpdateAgent applies fn to the named agent and stores the result in one transaction. fn runs
// while the transaction holds its lock, so it must be quick and must not call the store.
func (s *Store) UpdateAgent(ctx context.Context, name string, fn func(a *warden.Agent) error) (*warden.Agent, error) {
	var updated *warden.Agent
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, err := s.agent(ctx, tx, "name", name, s.dialect.ForUpdate)
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "agent %q not found", name)
		}
		if err != nil {
			return err
		}
		id := a.ID
		if err := fn(a); err != nil {
			return err
		}
		if a.ID != id {
			return warden.Errorf(warden.EInvalid, "the ID of agent %q cannot change", name)
		}
		args, err := agentArgs(a)
		if err != nil {
			return storeError(err)
		}
		// Rewriting every column leaves the ID as it was, checked above; it comes again last,
		// for the WHERE, because fn may have changed the name.
		_, err = s.exec(ctx, tx, `UPDATE agents SET (`+agentColumns+`) = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`,
			append(args, id)...)
		if err != nil && s.dialect.IsUniqueViolation(err) {
			return warden.Errorf(warden.EConflict, "agent %q already exists", a.Name)
		}
		if err != nil {
			return storeError(err)
		}
		updated = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// DeleteAgent removes the named agent.
func (s *Store) DeleteAgent(ctx context.Context, name string) error {
	// Grants made to the name go with the agent: an agent created later under the name starts
	// with none.
	return s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM agents WHERE name = ?`, name)
		if err != nil {
			return storeError(err)
		}
		if n == 0 {
			return warden.Errorf(warden.ENotFound, "agent %q not found", name)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM skill_grants WHERE agent = ?`, name); err != nil {
			return storeError(err)
		}
		return nil
	})
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, storeError(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(err)
	}
	return out, nil
}
