-- Where each record came from: one row per record and source (a feed or a file), with
-- the record's id there, when the source was first and last seen to list it, the round
-- (pull or import) that last listed it, and how many complete pulls in a row have not.
-- As in SQLite's migration 14.
CREATE TABLE provenance (
    kind         text NOT NULL,
    record_id    uuid NOT NULL,
    source       text NOT NULL,
    id_there     text NOT NULL,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    round        uuid NOT NULL,
    missing      integer NOT NULL DEFAULT 0,
    withdrawn_at timestamptz,
    PRIMARY KEY (kind, record_id, source)
);

CREATE INDEX provenance_by_source ON provenance (source, round);
CREATE INDEX provenance_withdrawn ON provenance (withdrawn_at) WHERE withdrawn_at IS NOT NULL;
