-- Tool calls by time (the console's calls per minute, docs/console.md): a search by type and a
-- time range was planned on the type index, which walks every event of that type. One index,
-- not more, since each one is written at every audit append (issue 20).

CREATE INDEX audit_events_type_time ON audit_events (type, time);
