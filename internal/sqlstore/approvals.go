package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/wardenhq/warden"
)

// maxApprovals caps a listing of approval requests.
const maxApprovals = 1000

func scanApproval(row scanner) (*warden.Approval, error) {
	var a warden.Approval
	if err := row.Scan(jsonColumn{&a}); err != nil {
		return nil, err
	}
	return &a, nil
}

func approvalBody(a *warden.Approval) (string, error) {
	c := *a
	c.CreatedAt, c.ExpiresAt, c.DecidedAt, c.UsedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.DecidedAt.UTC(), c.UsedAt.UTC()
	c.Approvals = make([]warden.ApprovalVote, len(a.Approvals))
	for i, v := range a.Approvals {
		v.At = v.At.UTC()
		c.Approvals[i] = v
	}
	return jsonText(&c)
}

// CreateApproval stores a new request; another open request with the same binding is EConflict.
func (s *Store) CreateApproval(ctx context.Context, a *warden.Approval) error {
	body, err := checkApproval(a)
	if err != nil {
		return err
	}
	return s.insertApproval(ctx, s.write, a, body)
}

// CreateApprovalLimited stores a new request unless its agent already has maxPending pending
// requests that have not expired (ERateLimited). The count and the insert are one transaction
// under the table's lock (SQLite's one writer; PostgreSQL's LOCK TABLE), so that concurrent
// requests, from this replica or others, cannot together pass the limit.
func (s *Store) CreateApprovalLimited(ctx context.Context, a *warden.Approval, maxPending int) error {
	body, err := checkApproval(a)
	if err != nil {
		return err
	}
	if maxPending < 1 {
		return warden.Errorf(warden.EInvalid, "the limit of pending approval requests must be at least 1")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTable(ctx, tx, "approvals"); err != nil {
			return err
		}
		var pending int
		if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT count(*) FROM approvals WHERE agent_id = ? AND status = ? AND expires_at > ?`),
			a.AgentID, warden.ApprovalPending, unixNanos(a.CreatedAt)).Scan(&pending); err != nil {
			return storeError(err)
		}
		if pending >= maxPending {
			return warden.Errorf(warden.ERateLimited, "agent %s already has %d approval requests waiting for a person, the most it may have", a.AgentName, pending)
		}
		return s.insertApproval(ctx, tx, a, body)
	})
}

func checkApproval(a *warden.Approval) (string, error) {
	if a.ID == "" || a.Binding == "" || a.CreatedAt.IsZero() || a.ExpiresAt.IsZero() {
		return "", warden.Errorf(warden.EInvalid, "an approval request needs an id, a binding, a creation and an expiry time")
	}
	body, err := approvalBody(a)
	if err != nil {
		return "", storeError(err)
	}
	return body, nil
}

func (s *Store) insertApproval(ctx context.Context, q querier, a *warden.Approval, body string) error {
	_, err := s.exec(ctx, q, `INSERT INTO approvals (id, binding, status, agent_id, created_at, expires_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Binding, a.Status, a.AgentID, unixNanos(a.CreatedAt), unixNanos(a.ExpiresAt), body)
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "an open approval request for this call already exists")
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// Approval returns one request.
func (s *Store) Approval(ctx context.Context, id string) (*warden.Approval, error) {
	a, err := s.approval(ctx, s.read, id, "")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "approval request %q not found", id)
	}
	return a, err
}

// approval reads one request. It returns sql.ErrNoRows as it is, for the caller to map.
func (s *Store) approval(ctx context.Context, q querier, id, suffix string) (*warden.Approval, error) {
	row := q.QueryRowContext(ctx, s.dialect.rebind(`SELECT body FROM approvals WHERE id = ?`+suffix), id)
	a, err := scanApproval(row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, storeError(err)
	}
	return a, err
}

// ApprovalByBinding returns the newest request with the binding.
func (s *Store) ApprovalByBinding(ctx context.Context, binding string) (*warden.Approval, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT body FROM approvals WHERE binding = ?
		ORDER BY created_at DESC, id DESC LIMIT 1`), binding)
	a, err := scanApproval(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "no approval request for this call")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return a, nil
}

// Approvals lists the requests matching f, oldest first.
func (s *Store) Approvals(ctx context.Context, f warden.ApprovalFilter) ([]*warden.Approval, error) {
	var where []string
	var args []any
	if len(f.Statuses) > 0 {
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(f.Statuses)-1)+")")
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	if f.AgentID != "" {
		where = append(where, "agent_id = ?")
		args = append(args, f.AgentID)
	}
	if !f.ExpiresBefore.IsZero() {
		where = append(where, "expires_at <= ?")
		args = append(args, boundNanos(f.ExpiresBefore))
	}
	limit := f.Limit
	if limit <= 0 || limit > maxApprovals {
		limit = maxApprovals
	}
	q := `SELECT body FROM approvals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanApproval)
}

// UpdateApproval applies fn to the request and stores the result in one transaction.
func (s *Store) UpdateApproval(ctx context.Context, id string, fn func(a *warden.Approval) error) (*warden.Approval, error) {
	var updated *warden.Approval
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, err := s.approval(ctx, tx, id, s.dialect.ForUpdate)
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "approval request %q not found", id)
		}
		if err != nil {
			return err
		}
		binding := a.Binding
		if err := fn(a); err != nil {
			return err
		}
		if a.ID != id || a.Binding != binding {
			return warden.Errorf(warden.EInvalid, "the id and binding of approval request %q cannot change", id)
		}
		body, err := approvalBody(a)
		if err != nil {
			return storeError(err)
		}
		if _, err := s.exec(ctx, tx, `UPDATE approvals SET status = ?, expires_at = ?, body = ? WHERE id = ?`,
			a.Status, unixNanos(a.ExpiresAt), body, id); err != nil {
			if s.dialect.IsUniqueViolation(err) {
				return warden.Errorf(warden.EConflict, "another open approval request for this call exists")
			}
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
