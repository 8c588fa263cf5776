-- Patients and referrals. Everything that identifies a patient is sealed
-- (patients.details, referrals.details); NHS numbers and local ids are found by blind
-- index. The referral's status follows the FHIR Task state machine: the CHECK holds the
-- states, the triggers the moves (the same table as kith_domain::referral::TaskStatus).
CREATE TABLE patients (
    id                  TEXT PRIMARY KEY NOT NULL,
    organisation_id     TEXT NOT NULL REFERENCES member_organisations (id),
    nhs_number_index    TEXT,
    local_id_index      TEXT,
    details             TEXT NOT NULL,
    contact_method      TEXT NOT NULL CHECK (contact_method IN ('phone', 'text', 'email', 'letter')),
    language            TEXT,
    deprivation_decile  INTEGER CHECK (deprivation_decile BETWEEN 1 AND 10),
    neighbourhood       TEXT,
    created_at          TEXT NOT NULL,
    CHECK (nhs_number_index IS NOT NULL OR local_id_index IS NOT NULL),
    UNIQUE (organisation_id, nhs_number_index),
    UNIQUE (organisation_id, local_id_index)
) STRICT;

CREATE TABLE referral_transitions (
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    PRIMARY KEY (from_status, to_status)
) STRICT;
INSERT INTO referral_transitions (from_status, to_status) VALUES
        ('requested', 'received'),
        ('requested', 'accepted'),
        ('requested', 'rejected'),
        ('requested', 'on-hold'),
        ('requested', 'cancelled'),
        ('received', 'accepted'),
        ('received', 'rejected'),
        ('received', 'on-hold'),
        ('received', 'cancelled'),
        ('accepted', 'in-progress'),
        ('accepted', 'on-hold'),
        ('accepted', 'completed'),
        ('accepted', 'cancelled'),
        ('accepted', 'failed'),
        ('on-hold', 'accepted'),
        ('on-hold', 'in-progress'),
        ('on-hold', 'rejected'),
        ('on-hold', 'cancelled'),
        ('on-hold', 'failed'),
        ('in-progress', 'on-hold'),
        ('in-progress', 'completed'),
        ('in-progress', 'cancelled'),
        ('in-progress', 'failed');

CREATE TABLE referrals (
    id             TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('signpost', 'referral')),
    patient_id     TEXT NOT NULL REFERENCES patients (id),
    service_id     TEXT NOT NULL,
    group_id       TEXT REFERENCES member_organisations (id),
    referrer_user  TEXT NOT NULL REFERENCES users (id),
    referrer_org   TEXT NOT NULL REFERENCES member_organisations (id),
    status         TEXT NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'rejected', 'in-progress', 'on-hold', 'completed', 'cancelled', 'failed')),
    details        TEXT NOT NULL,
    safeguarding   INTEGER NOT NULL DEFAULT 0 CHECK (safeguarding IN (0, 1)),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    follow_up_due  TEXT
) STRICT;
CREATE INDEX referrals_by_group ON referrals (group_id, created_at);
CREATE INDEX referrals_by_patient ON referrals (patient_id, created_at);
CREATE INDEX referrals_by_follow_up ON referrals (follow_up_due) WHERE follow_up_due IS NOT NULL;
CREATE TRIGGER referrals_move_by_the_rules BEFORE UPDATE OF status ON referrals
WHEN NEW.status <> OLD.status
 AND NOT EXISTS (SELECT 1 FROM referral_transitions WHERE from_status = OLD.status AND to_status = NEW.status)
BEGIN
    SELECT RAISE(ABORT, 'a referral cannot make that move');
END;

CREATE TABLE referral_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    referral_id  TEXT NOT NULL REFERENCES referrals (id),
    at           TEXT NOT NULL,
    actor        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'rejected', 'in-progress', 'on-hold', 'completed', 'cancelled', 'failed')),
    note         TEXT NOT NULL
) STRICT;
CREATE INDEX referral_events_by_referral ON referral_events (referral_id, seq);
