package sqlstore

import (
	"context"
	"time"

	"github.com/wardenhq/warden"
)

var _ warden.FlowStore = (*Store)(nil)

const flowColumns = `id, agent_id, session, tool, action, decision, untrusted, private, vals, bytes, partial, created_at`

func scanFlowObservation(row scanner) (*warden.FlowObservation, error) {
	var o warden.FlowObservation
	err := row.Scan(&o.ID, &o.AgentID, &o.Session, &o.Tool, &o.Action, &o.Decision, &o.Untrusted, &o.Private, &o.Values, &o.Bytes, &o.Partial,
		timeColumn{&o.CreatedAt})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// AppendFlowObservation stores an observation and sets its ID.
func (s *Store) AppendFlowObservation(ctx context.Context, o *warden.FlowObservation) error {
	switch {
	case o.AgentID == "" || o.Session == "" || o.Tool == "":
		return warden.Errorf(warden.EInvalid, "a flow observation names its agent, session and tool")
	case len(o.Values) > warden.MaxFlowValues || o.Bytes < 0:
		return warden.Errorf(warden.EInvalid, "a flow observation's values are at most %d bytes", warden.MaxFlowValues)
	}
	vals := o.Values
	if vals == nil {
		vals = []byte{}
	}
	err := s.write.QueryRowContext(ctx, s.dialect.rebind(`INSERT INTO flow_observations
		(agent_id, session, tool, action, decision, untrusted, private, vals, bytes, partial, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		o.AgentID, o.Session, o.Tool, o.Action, o.Decision, o.Untrusted, o.Private, vals, o.Bytes, o.Partial, unixNanos(o.CreatedAt)).Scan(&o.ID)
	if err != nil {
		return storeError(err)
	}
	return nil
}

// FlowObservations returns a session's observations with an ID over after, oldest first.
func (s *Store) FlowObservations(ctx context.Context, agentID, session string, after int64, limit int) ([]*warden.FlowObservation, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT `+flowColumns+` FROM flow_observations
		WHERE agent_id = ? AND session = ? AND id > ? ORDER BY id LIMIT ?`), agentID, session, after, limit)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanFlowObservation)
}

// DeleteFlowSession forgets a session's observations.
func (s *Store) DeleteFlowSession(ctx context.Context, agentID, session string) error {
	if _, err := s.exec(ctx, s.write, `DELETE FROM flow_observations WHERE agent_id = ? AND session = ?`, agentID, session); err != nil {
		return storeError(err)
	}
	return nil
}

// PruneFlowObservations deletes the observations of the sessions whose newest observation is
// older than before: a session is pruned whole, never its older half only.
func (s *Store) PruneFlowObservations(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, s.write, `DELETE FROM flow_observations WHERE created_at < ? AND NOT EXISTS (
		SELECT 1 FROM flow_observations newer WHERE newer.agent_id = flow_observations.agent_id
			AND newer.session = flow_observations.session AND newer.created_at >= ?)`, unixNanos(before), unixNanos(before))
	if err != nil {
		return 0, storeError(err)
	}
	return int64(n), nil
}
