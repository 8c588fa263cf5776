-- Accounts: the organisations and areas that use Kith, their people and roles, sign-in
-- state, and the audit log. Fields that identify a person (users.email, users.name,
-- users.totp_secret) hold AES-256-GCM sealed text; users.email_index is a keyed hash
-- for finding an email without decrypting.
CREATE TABLE areas (
    id    TEXT PRIMARY KEY NOT NULL,
    kind  TEXT NOT NULL CHECK (kind IN ('pcn', 'neighbourhood')),
    name  TEXT NOT NULL CHECK (length(trim(name)) > 0)
) STRICT;

CREATE TABLE member_organisations (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('practice', 'vcs')),
    name          TEXT NOT NULL CHECK (length(trim(name)) > 0),
    ods_code      TEXT UNIQUE,
    directory_id  TEXT,
    CHECK (kind <> 'practice' OR ods_code IS NOT NULL)
) STRICT;
CREATE INDEX member_organisations_by_directory_id ON member_organisations (directory_id);

CREATE TABLE area_members (
    area_id          TEXT NOT NULL REFERENCES areas (id) ON DELETE CASCADE,
    organisation_id  TEXT NOT NULL REFERENCES member_organisations (id) ON DELETE CASCADE,
    PRIMARY KEY (area_id, organisation_id)
) STRICT;
CREATE INDEX area_members_by_organisation ON area_members (organisation_id);

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    email_index     TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    password_hash   TEXT,
    totp_secret     TEXT,
    totp_last_step  INTEGER,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE user_grants (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('receptionist', 'clinician', 'link_worker', 'vcs_member', 'curator',
                                              'area_admin', 'commissioner')),
    scope_kind  TEXT NOT NULL CHECK (scope_kind IN ('organisation', 'area')),
    scope_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, role, scope_kind, scope_id)
) STRICT;

CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_index  TEXT NOT NULL,
    PRIMARY KEY (user_id, code_index)
) STRICT;

CREATE TABLE sessions (
    digest        TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage         TEXT NOT NULL CHECK (stage IN ('second_factor', 'complete')),
    purpose       TEXT CHECK (purpose IN ('update_listing', 'answer_referral')),
    target        TEXT,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    CHECK ((purpose IS NULL) = (target IS NULL))
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE magic_links (
    digest      TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('update_listing', 'answer_referral')),
    target      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;

-- Sign-in and magic-link attempts, for rate limits that hold across instances.
CREATE TABLE sign_in_attempts (
    key  TEXT NOT NULL,
    at   TEXT NOT NULL,
    ok   INTEGER NOT NULL CHECK (ok IN (0, 1))
) STRICT;
CREATE INDEX sign_in_attempts_by_key ON sign_in_attempts (key, at);

-- Append-only: the triggers refuse every UPDATE and DELETE, whoever sends it.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT,
    actor_roles  TEXT NOT NULL,
    action       TEXT NOT NULL,
    record_type  TEXT NOT NULL,
    record_id    TEXT,
    ip           TEXT,
    reason       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
