-- Accounts: the organisations and areas that use Kith, their people and roles, sign-in
-- state, and the audit log. Fields that identify a person (users.email, users.name,
-- users.totp_secret) hold AES-256-GCM sealed text; users.email_index is a keyed hash
-- for finding an email without decrypting.
CREATE TABLE areas (
    id    uuid PRIMARY KEY,
    kind  text NOT NULL CHECK (kind IN ('pcn', 'neighbourhood')),
    name  text NOT NULL CHECK (length(trim(name)) > 0)
);

CREATE TABLE member_organisations (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('practice', 'vcs')),
    name          text NOT NULL CHECK (length(trim(name)) > 0),
    ods_code      text UNIQUE,
    directory_id  uuid,
    CHECK (kind <> 'practice' OR ods_code IS NOT NULL)
);
CREATE INDEX member_organisations_by_directory_id ON member_organisations (directory_id);

CREATE TABLE area_members (
    area_id          uuid NOT NULL REFERENCES areas (id) ON DELETE CASCADE,
    organisation_id  uuid NOT NULL REFERENCES member_organisations (id) ON DELETE CASCADE,
    PRIMARY KEY (area_id, organisation_id)
);
CREATE INDEX area_members_by_organisation ON area_members (organisation_id);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email_index     text NOT NULL UNIQUE,
    email           text NOT NULL,
    name            text NOT NULL,
    password_hash   text,
    totp_secret     text,
    totp_last_step  bigint,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL
);

CREATE TABLE user_grants (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('receptionist', 'clinician', 'link_worker', 'vcs_member', 'curator',
                                              'area_admin', 'commissioner')),
    scope_kind  text NOT NULL CHECK (scope_kind IN ('organisation', 'area')),
    scope_id    uuid NOT NULL,
    PRIMARY KEY (user_id, role, scope_kind, scope_id)
);

CREATE TABLE recovery_codes (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_index  text NOT NULL,
    PRIMARY KEY (user_id, code_index)
);

CREATE TABLE sessions (
    digest        text PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage         text NOT NULL CHECK (stage IN ('second_factor', 'complete')),
    purpose       text CHECK (purpose IN ('update_listing', 'answer_referral')),
    target        uuid,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    CHECK ((purpose IS NULL) = (target IS NULL))
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE magic_links (
    digest      text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('update_listing', 'answer_referral')),
    target      uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Sign-in and magic-link attempts, for rate limits that hold across instances.
CREATE TABLE sign_in_attempts (
    key  text NOT NULL,
    at   timestamptz NOT NULL,
    ok   boolean NOT NULL
);
CREATE INDEX sign_in_attempts_by_key ON sign_in_attempts (key, at);

-- Append-only: triggers refuse every UPDATE, DELETE and TRUNCATE, whoever sends them,
-- and the application's role (when it is not the owner) is granted INSERT and SELECT only.
CREATE TABLE audit_log (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        uuid,
    actor_roles  text NOT NULL,
    action       text NOT NULL,
    record_type  text NOT NULL,
    record_id    text,
    ip           text,
    reason       text NOT NULL
);
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
