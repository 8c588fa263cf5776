-- Where each record came from: one row per record and source (a feed or a file), with
-- the record's id there, when the source was first and last seen to list it, the round
-- (pull or import) that last listed it, and how many complete pulls in a row have not.
-- As in PostgreSQL's migration 14.
CREATE TABLE provenance (
    kind         TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    source       TEXT NOT NULL,
    id_there     TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    round        TEXT NOT NULL,
    missing      INTEGER NOT NULL DEFAULT 0,
    withdrawn_at TEXT,
    PRIMARY KEY (kind, record_id, source)
) STRICT;

CREATE INDEX provenance_by_source ON provenance (source, round);
CREATE INDEX provenance_withdrawn ON provenance (withdrawn_at) WHERE withdrawn_at IS NOT NULL;
