-- Tool calls by time (the console's calls per minute, docs/console.md): a search by type and a
-- time range reads one range of this index instead of every event of the type or of the time
-- range. One index, not more, since each one is written at every audit append (issue 20).

CREATE INDEX audit_events_type_time ON audit_events (type, time, seq);
