-- Directory feeds Kith pulls on a schedule, and a record of every pull. The feed's
-- settings and each pull's figures are JSON documents; what a claim needs is in columns.
-- As in SQLite's migration 13.
CREATE TABLE feeds (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    doc          jsonb NOT NULL,
    next_pull_at timestamptz NOT NULL,
    lease_until  timestamptz
);

CREATE TABLE feed_pulls (
    id         uuid PRIMARY KEY,
    feed_id    uuid NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);

CREATE INDEX feed_pulls_by_feed ON feed_pulls (feed_id, started_at);
