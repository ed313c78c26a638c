package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/wardenhq/warden"
)

const toolColumns = `name, kind, url, command, risk, secret, inject, secret_env, routes, sensitive_args, labels,
	disabled, created_at, updated_at, approval, sandbox, package, action_labels`

// toolArgs lists t's fields in the order of toolColumns.
//
// The routes column holds a decision-only tool's declared actions (warden.ToolAction): such a
// tool has no routes, and a JSON array column of what maps calls to actions needs no migration.
func toolArgs(t *warden.Tool) ([]any, error) {
	var routes any = t.Routes
	if t.Kind == warden.ToolDecisionOnly {
		routes = t.Actions
	}
	var texts [9]string
	for i, v := range []any{t.Command, t.SecretEnv, routes, t.SensitiveArgs, t.Labels, t.Approval, t.Sandbox, t.Package, t.ActionLabels} {
		text, err := jsonText(v)
		if err != nil {
			return nil, err
		}
		texts[i] = text
	}
	return []any{t.Name, string(t.Kind), t.URL, texts[0], string(t.Risk), t.Secret, t.Inject, texts[1], texts[2],
		texts[3], texts[4], t.Disabled, unixNanos(t.CreatedAt), unixNanos(t.UpdatedAt), texts[5], texts[6], texts[7], texts[8]}, nil
}

func scanTool(row scanner) (*warden.Tool, error) {
	var t warden.Tool
	var routes json.RawMessage
	err := row.Scan(&t.Name, &t.Kind, &t.URL, jsonColumn{&t.Command}, &t.Risk, &t.Secret, &t.Inject,
		jsonColumn{&t.SecretEnv}, jsonColumn{&routes}, jsonColumn{&t.SensitiveArgs}, jsonColumn{&t.Labels},
		&t.Disabled, timeColumn{&t.CreatedAt}, timeColumn{&t.UpdatedAt}, jsonColumn{&t.Approval}, jsonColumn{&t.Sandbox}, jsonColumn{&t.Package},
		jsonColumn{&t.ActionLabels})
	if err != nil {
		return nil, err
	}
	if t.Kind == warden.ToolDecisionOnly {
		err = json.Unmarshal(routes, &t.Actions)
	} else {
		err = json.Unmarshal(routes, &t.Routes)
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTool stores a new tool; a taken name is EConflict.
func (s *Store) CreateTool(ctx context.Context, t *warden.Tool) error {
	args, err := toolArgs(t)
	if err != nil {
		return storeError(err)
	}
	_, err = s.exec(ctx, s.write, `INSERT INTO tools (`+toolColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		args...)
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "tool %q already exists", t.Name)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// Tool returns the tool with the given name.
func (s *Store) Tool(ctx context.Context, name string) (*warden.Tool, error) {
	t, err := s.tool(ctx, s.read, name, "")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "tool %q not found", name)
	}
	return t, err
}

// tool reads the named tool. It returns sql.ErrNoRows as it is, for the caller to map.
func (s *Store) tool(ctx context.Context, q querier, name, suffix string) (*warden.Tool, error) {
	row := q.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+toolColumns+` FROM tools WHERE name = ?`+suffix), name)
	t, err := scanTool(row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, storeError(err)
	}
	return t, err
}

// Tools lists every tool, ordered by name.
func (s *Store) Tools(ctx context.Context) ([]*warden.Tool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+toolColumns+` FROM tools ORDER BY name`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanTool)
}

// UpdateTool applies fn to the named tool and stores the result in one transaction, so that
// concurrent changes never lose one another. fn runs while the transaction holds its lock, so it
// must be quick and must not call the store; it must not change the name, which policies and
// audit events refer to. If fn returns an error nothing is written.
func (s *Store) UpdateTool(ctx context.Context, name string, fn func(t *warden.Tool) error) (*warden.Tool, error) {
	var updated *warden.Tool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := s.tool(ctx, tx, name, s.dialect.ForUpdate)
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "tool %q not found", name)
		}
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		if t.Name != name {
			return warden.Errorf(warden.EInvalid, "the name of tool %q cannot change", name)
		}
		args, err := toolArgs(t)
		if err != nil {
			return storeError(err)
		}
		if _, err := s.exec(ctx, tx, `UPDATE tools SET (`+toolColumns+`) = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			WHERE name = ?`, append(args, name)...); err != nil {
			return storeError(err)
		}
		updated = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// DeleteTool removes the named tool.
func (s *Store) DeleteTool(ctx context.Context, name string) error {
	n, err := s.exec(ctx, s.write, `DELETE FROM tools WHERE name = ?`, name)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "tool %q not found", name)
	}
	return nil
}
