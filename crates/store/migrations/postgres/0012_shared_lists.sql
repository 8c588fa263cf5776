-- A shortlist sent by text message: one short code stands for the services on it, so the
-- text carries one short link to their live listings. Service ids only: nothing about the
-- person it was sent to. As in SQLite's migration 12.
CREATE TABLE shared_lists (
    code        text PRIMARY KEY,
    service_ids uuid[] NOT NULL,
    created_at  timestamptz NOT NULL
);
