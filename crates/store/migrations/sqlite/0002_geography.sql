-- Postcode geography, in the ONS Postcode Directory's terms, and deprivation by small
-- area. Loaded by `kith geo import` and `kith geo import-deprivation`; read on every
-- search, so keyed for point lookups and prefix scans.

CREATE TABLE postcodes (
    postcode        TEXT PRIMARY KEY NOT NULL,  -- standard form: "G31 2ER"
    latitude        REAL NOT NULL,
    longitude       REAL NOT NULL,
    country         TEXT,
    local_authority TEXT,
    health_area     TEXT,
    hscp            TEXT,
    ward            TEXT,
    lsoa11          TEXT,
    lsoa21          TEXT
) STRICT, WITHOUT ROWID;

CREATE TABLE deprivation (
    index_version TEXT NOT NULL CHECK (index_version IN ('imd2019', 'imd2025', 'simd2020v2')),
    area_code     TEXT NOT NULL,
    rank          INTEGER NOT NULL CHECK (rank > 0),
    decile        INTEGER NOT NULL CHECK (decile BETWEEN 1 AND 10),
    quintile      INTEGER NOT NULL CHECK (quintile BETWEEN 1 AND 5),
    PRIMARY KEY (area_code, index_version)
) STRICT, WITHOUT ROWID;

CREATE TABLE places (
    name_key        TEXT NOT NULL,  -- lower case, single spaces
    name            TEXT NOT NULL,
    latitude        REAL NOT NULL,
    longitude       REAL NOT NULL,
    local_authority TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name_key, local_authority)
) STRICT, WITHOUT ROWID;
