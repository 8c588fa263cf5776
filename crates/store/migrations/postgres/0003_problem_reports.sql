-- Problem reports on listings ("the times are wrong"), for curators and groups to act on.
CREATE TABLE problem_reports (
    id          uuid PRIMARY KEY,
    service_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('closed', 'times', 'contact', 'place', 'other')),
    details     text NOT NULL CHECK (char_length(details) <= 2000),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at  timestamptz NOT NULL
);
CREATE INDEX problem_reports_by_service ON problem_reports (service_id, created_at);
CREATE INDEX problem_reports_open ON problem_reports (created_at) WHERE status = 'open';
