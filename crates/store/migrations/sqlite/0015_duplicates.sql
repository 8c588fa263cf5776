-- Duplicates across sources. `merged` says which record each merged one became, so a
-- source that still lists the merged id adds a sighting to the survivor instead of
-- writing the duplicate back. `duplicate_pairs` is the curators' queue and what they
-- decided: a pair kept apart is never queued again. As in PostgreSQL's migration 15.
CREATE TABLE merged (
    kind        TEXT NOT NULL CHECK (kind IN ('organization', 'service')),
    merged_id   TEXT NOT NULL,
    survivor_id TEXT NOT NULL,
    merged_at   TEXT NOT NULL,
    PRIMARY KEY (kind, merged_id)
) STRICT;

CREATE INDEX merged_by_survivor ON merged (kind, survivor_id);

CREATE TABLE duplicate_pairs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('organization', 'service')),
    a          TEXT NOT NULL,
    b          TEXT NOT NULL,
    reason     TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'merged', 'kept_apart')),
    found_at   TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    note       TEXT,
    CHECK ((state = 'waiting') = (decided_at IS NULL))
) STRICT;

CREATE INDEX duplicate_pairs_waiting ON duplicate_pairs (found_at, id) WHERE state = 'waiting';
CREATE INDEX duplicate_pairs_a ON duplicate_pairs (a);
CREATE INDEX duplicate_pairs_b ON duplicate_pairs (b);
