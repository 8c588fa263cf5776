-- Postcode geography, in the ONS Postcode Directory's terms, and deprivation by small
-- area. Loaded by `kith geo import` and `kith geo import-deprivation`; read on every
-- search, so keyed for point lookups and prefix scans (byte order, hence COLLATE "C").

CREATE TABLE postcodes (
    postcode        text COLLATE "C" PRIMARY KEY,  -- standard form: "G31 2ER"
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    country         text,
    local_authority text,
    health_area     text,
    hscp            text,
    ward            text,
    lsoa11          text,
    lsoa21          text
);

CREATE TABLE deprivation (
    index_version text NOT NULL CHECK (index_version IN ('imd2019', 'imd2025', 'simd2020v2')),
    area_code     text NOT NULL,
    rank          integer NOT NULL CHECK (rank > 0),
    decile        smallint NOT NULL CHECK (decile BETWEEN 1 AND 10),
    quintile      smallint NOT NULL CHECK (quintile BETWEEN 1 AND 5),
    PRIMARY KEY (area_code, index_version)
);

CREATE TABLE places (
    name_key        text COLLATE "C" NOT NULL,  -- lower case, single spaces
    name            text NOT NULL,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    local_authority text NOT NULL DEFAULT '',
    PRIMARY KEY (name_key, local_authority)
);
