-- The derived rows of each service are read by service (to replace them when it changes)
-- and by taxonomy term (to filter services by a term), never by location. The index that
-- served that unasked question cost import time (every insert landed at a random place
-- in it), so it goes. SQLite also drops its index by term, which its planner cannot use
-- for the term filter; PostgreSQL's planner can, so it stays here.
-- See docs/BENCHMARKS.md, "Import throughput".
DROP INDEX IF EXISTS service_at_locations_location;
