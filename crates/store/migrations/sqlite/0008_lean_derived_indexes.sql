-- The derived rows of each service are read by service (to replace them when it changes,
-- and to filter services by taxonomy term through the primary key), never by location or
-- by term alone. The two indexes that served those unasked questions cost a third of an
-- import's time on SQLite (every insert landed at a random place in each), so they go.
-- See docs/BENCHMARKS.md, "Import throughput".
DROP INDEX IF EXISTS service_at_locations_location;
DROP INDEX IF EXISTS service_taxonomy_terms_term;
