-- Problem reports on listings ("the times are wrong"), for curators and groups to act on.
CREATE TABLE problem_reports (
    id          TEXT PRIMARY KEY,
    service_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('closed', 'times', 'contact', 'place', 'other')),
    details     TEXT NOT NULL CHECK (length(details) <= 2000),
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX problem_reports_by_service ON problem_reports (service_id, created_at);
CREATE INDEX problem_reports_open ON problem_reports (created_at) WHERE status = 'open';
