-- Duplicates across sources. `merged` says which record each merged one became, so a
-- source that still lists the merged id adds a sighting to the survivor instead of
-- writing the duplicate back. `duplicate_pairs` is the curators' queue and what they
-- decided: a pair kept apart is never queued again. As in SQLite's migration 15.
CREATE TABLE merged (
    kind        text NOT NULL CHECK (kind IN ('organization', 'service')),
    merged_id   uuid NOT NULL,
    survivor_id uuid NOT NULL,
    merged_at   timestamptz NOT NULL,
    PRIMARY KEY (kind, merged_id)
);

CREATE INDEX merged_by_survivor ON merged (kind, survivor_id);

CREATE TABLE duplicate_pairs (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('organization', 'service')),
    a          uuid NOT NULL,
    b          uuid NOT NULL,
    reason     text NOT NULL,
    state      text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'merged', 'kept_apart')),
    found_at   timestamptz NOT NULL,
    decided_by text,
    decided_at timestamptz,
    note       text,
    CHECK ((state = 'waiting') = (decided_at IS NULL))
);

CREATE INDEX duplicate_pairs_waiting ON duplicate_pairs (found_at, id) WHERE state = 'waiting';
CREATE INDEX duplicate_pairs_a ON duplicate_pairs (a);
CREATE INDEX duplicate_pairs_b ON duplicate_pairs (b);
