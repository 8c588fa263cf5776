-- A shortlist sent by text message: one short code stands for the services on it, so the
-- text carries one short link to their live listings. Service ids only: nothing about the
-- person it was sent to. As in PostgreSQL's migration 12.
CREATE TABLE shared_lists (
    code        TEXT PRIMARY KEY,
    service_ids TEXT NOT NULL,  -- JSON array of service ids, in the list's order
    created_at  TEXT NOT NULL
) STRICT;
