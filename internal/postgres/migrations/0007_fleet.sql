-- The fleet of replicas sharing this database (internal/fleet). fleet_version numbers the
-- changes replicas announce to each other over LISTEN/NOTIFY, so that versions rise across the
-- fleet; fleet_replicas holds each live replica's heartbeat and the newest version it applied.
-- Times are the database's clock, so that replicas whose clocks disagree still agree on who is
-- live.
CREATE SEQUENCE fleet_version;

CREATE TABLE fleet_replicas (
    id              TEXT PRIMARY KEY,
    instance        TEXT NOT NULL,         -- a nonce per process: two live processes may not share an id
    address         TEXT NOT NULL DEFAULT '',
    version         TEXT NOT NULL DEFAULT '',
    started_at      TIMESTAMPTZ NOT NULL,
    heartbeat_at    TIMESTAMPTZ NOT NULL,
    applied_version BIGINT NOT NULL DEFAULT 0,
    fresh           BOOLEAN NOT NULL DEFAULT FALSE -- it could confirm its view was current at heartbeat_at
);
