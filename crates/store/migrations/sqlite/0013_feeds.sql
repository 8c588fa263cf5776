-- Directory feeds Kith pulls on a schedule, and a record of every pull. The feed's
-- settings and each pull's figures are JSON documents; what a claim needs is in columns.
-- As in PostgreSQL's migration 13.
CREATE TABLE feeds (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    doc          TEXT NOT NULL,
    next_pull_at TEXT NOT NULL,
    lease_until  TEXT
) STRICT;

CREATE TABLE feed_pulls (
    id         TEXT PRIMARY KEY,
    feed_id    TEXT NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    started_at TEXT NOT NULL,
    doc        TEXT NOT NULL
) STRICT;

CREATE INDEX feed_pulls_by_feed ON feed_pulls (feed_id, started_at);
