-- Which locations each service shows, in place of a row per service-at-location.
-- Nothing ever read a service-at-location row by its own id: the table is asked only
-- which services show a location (to re-index them when it changes) and is rewritten
-- with its service. Keyed by (service, location) with no rowid, each pair is one
-- B-tree insert where the old table took three (its rows, its id and its service
-- index), and a service-at-location id that two services both used no longer moves
-- between them. See docs/BENCHMARKS.md, "Import throughput".
CREATE TABLE service_locations (
    service_id  TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id TEXT NOT NULL,
    PRIMARY KEY (service_id, location_id)
) STRICT, WITHOUT ROWID;
INSERT OR IGNORE INTO service_locations (service_id, location_id)
    SELECT service_id, location_id FROM service_at_locations;
DROP TABLE service_at_locations;
