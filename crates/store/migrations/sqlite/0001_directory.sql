-- The directory: one row per aggregate, the HSDS document in `doc`, and the columns
-- that queries filter or sort on beside it. Timestamps are RFC 3339 UTC text with a
-- fixed width, so they compare correctly as text.

CREATE TABLE taxonomies (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    modified_at TEXT NOT NULL
) STRICT;

CREATE TABLE taxonomy_terms (
    id          TEXT PRIMARY KEY NOT NULL,
    taxonomy_id TEXT,
    parent_id   TEXT,
    code        TEXT,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    modified_at TEXT NOT NULL
) STRICT;
CREATE INDEX taxonomy_terms_taxonomy ON taxonomy_terms (taxonomy_id, name);
CREATE INDEX taxonomy_terms_parent ON taxonomy_terms (parent_id);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    modified_at TEXT NOT NULL
) STRICT;
CREATE INDEX organizations_name ON organizations (name, id);

CREATE TABLE locations (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT,
    name            TEXT,
    latitude        REAL,
    longitude       REAL,
    postcode        TEXT,
    doc             TEXT NOT NULL,
    modified_at     TEXT NOT NULL
) STRICT;
CREATE INDEX locations_organization ON locations (organization_id);

CREATE TABLE services (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('active', 'temporarily closed', 'inactive', 'defunct')),
    last_verified_at TEXT,
    last_verified_by TEXT,
    doc              TEXT NOT NULL,
    modified_at      TEXT NOT NULL
) STRICT;
CREATE INDEX services_name ON services (name, id);
CREATE INDEX services_organization ON services (organization_id);
CREATE INDEX services_modified ON services (modified_at);

-- Derived from each service's document, for filtering and for "services at this place".
CREATE TABLE service_at_locations (
    id          TEXT PRIMARY KEY NOT NULL,
    service_id  TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id TEXT NOT NULL
) STRICT;
CREATE INDEX service_at_locations_service ON service_at_locations (service_id);
CREATE INDEX service_at_locations_location ON service_at_locations (location_id);

CREATE TABLE service_taxonomy_terms (
    service_id       TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    taxonomy_term_id TEXT NOT NULL,
    PRIMARY KEY (service_id, taxonomy_term_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX service_taxonomy_terms_term ON service_taxonomy_terms (taxonomy_term_id);

-- Every directory write appends here, in the same transaction.
CREATE TABLE change_feed (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    object_type TEXT NOT NULL
                CHECK (object_type IN ('organization', 'service', 'location', 'taxonomy', 'taxonomy_term')),
    object_id   TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    at          TEXT NOT NULL
) STRICT;
