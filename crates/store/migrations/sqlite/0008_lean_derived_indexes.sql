-- The derived rows of each service are read by service: to replace them when it changes,
-- and to filter services by taxonomy term, which SQLite does by probing the primary key
-- (service_id, taxonomy_term_id) for each service (the filter's `?4 IS NULL OR EXISTS`
-- form cannot be driven from an index by term). They are never read by location or by
-- term alone. The two indexes that served those unasked questions were where an import
-- spent most of its writing time (every insert landed at a random place in each), so
-- they go. See docs/BENCHMARKS.md, "Import throughput".
DROP INDEX IF EXISTS service_at_locations_location;
DROP INDEX IF EXISTS service_taxonomy_terms_term;
