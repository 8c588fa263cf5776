-- Which locations each service shows, in place of a row per service-at-location:
-- nothing read a service-at-location row by its own id, and a service-at-location id
-- that two services both used no longer moves between them. As in SQLite's migration 9.
CREATE TABLE service_locations (
    service_id  uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id uuid NOT NULL,
    PRIMARY KEY (service_id, location_id)
);
INSERT INTO service_locations (service_id, location_id)
    SELECT DISTINCT service_id, location_id FROM service_at_locations;
DROP TABLE service_at_locations;
