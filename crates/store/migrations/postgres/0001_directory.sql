-- The directory: one row per aggregate, the HSDS document in `doc`, and the columns
-- that queries filter or sort on beside it.

CREATE TABLE taxonomies (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    doc         jsonb NOT NULL,
    modified_at timestamptz NOT NULL
);

CREATE TABLE taxonomy_terms (
    id          uuid PRIMARY KEY,
    taxonomy_id uuid,
    parent_id   uuid,
    code        text,
    name        text NOT NULL,
    doc         jsonb NOT NULL,
    modified_at timestamptz NOT NULL
);
CREATE INDEX taxonomy_terms_taxonomy ON taxonomy_terms (taxonomy_id, name);
CREATE INDEX taxonomy_terms_parent ON taxonomy_terms (parent_id);

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    doc         jsonb NOT NULL,
    modified_at timestamptz NOT NULL
);
CREATE INDEX organizations_name ON organizations (name COLLATE "C", id);

CREATE TABLE locations (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    name            text,
    latitude        double precision,
    longitude       double precision,
    postcode        text,
    doc             jsonb NOT NULL,
    modified_at     timestamptz NOT NULL
);
CREATE INDEX locations_organization ON locations (organization_id);

CREATE TABLE services (
    id               uuid PRIMARY KEY,
    organization_id  uuid,
    name             text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('active', 'temporarily closed', 'inactive', 'defunct')),
    last_verified_at timestamptz,
    last_verified_by text,
    doc              jsonb NOT NULL,
    modified_at      timestamptz NOT NULL
);
CREATE INDEX services_name ON services (name COLLATE "C", id);
CREATE INDEX services_organization ON services (organization_id);
CREATE INDEX services_modified ON services (modified_at);

-- Derived from each service's document, for filtering and for "services at this place".
CREATE TABLE service_at_locations (
    id          uuid PRIMARY KEY,
    service_id  uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id uuid NOT NULL
);
CREATE INDEX service_at_locations_service ON service_at_locations (service_id);
CREATE INDEX service_at_locations_location ON service_at_locations (location_id);

CREATE TABLE service_taxonomy_terms (
    service_id       uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    taxonomy_term_id uuid NOT NULL,
    PRIMARY KEY (service_id, taxonomy_term_id)
);
CREATE INDEX service_taxonomy_terms_term ON service_taxonomy_terms (taxonomy_term_id);

-- Every directory write appends here, in the same transaction. Writers take a
-- transaction-scoped advisory lock before appending, so sequence numbers become visible
-- in order and a reader polling "after seq N" never skips a late commit.
CREATE TABLE change_feed (
    seq         bigserial PRIMARY KEY,
    object_type text NOT NULL
                CHECK (object_type IN ('organization', 'service', 'location', 'taxonomy', 'taxonomy_term')),
    object_id   uuid NOT NULL,
    op          text NOT NULL CHECK (op IN ('upsert', 'delete')),
    at          timestamptz NOT NULL
);

-- Documents are a few kilobytes, so PostgreSQL compresses them out of line. lz4 is
-- several times cheaper than the default pglz for a bulk import; servers built
-- without it keep pglz.
DO $$
BEGIN
    ALTER TABLE taxonomies ALTER COLUMN doc SET COMPRESSION lz4;
    ALTER TABLE taxonomy_terms ALTER COLUMN doc SET COMPRESSION lz4;
    ALTER TABLE organizations ALTER COLUMN doc SET COMPRESSION lz4;
    ALTER TABLE locations ALTER COLUMN doc SET COMPRESSION lz4;
    ALTER TABLE services ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available; documents keep pglz compression';
END
$$;
