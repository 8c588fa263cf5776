-- Patients and referrals. Everything that identifies a patient is sealed
-- (patients.details, referrals.details); NHS numbers and local ids are found by blind
-- index. The referral's status follows the FHIR Task state machine: the CHECK holds the
-- states, the trigger the moves (the same table as kith_domain::referral::TaskStatus).
CREATE TABLE patients (
    id                  uuid PRIMARY KEY,
    organisation_id     uuid NOT NULL REFERENCES member_organisations (id),
    nhs_number_index    text,
    local_id_index      text,
    details             text NOT NULL,
    contact_method      text NOT NULL CHECK (contact_method IN ('phone', 'text', 'email', 'letter')),
    language            text,
    deprivation_decile  smallint CHECK (deprivation_decile BETWEEN 1 AND 10),
    neighbourhood       text,
    created_at          timestamptz NOT NULL,
    CHECK (nhs_number_index IS NOT NULL OR local_id_index IS NOT NULL),
    UNIQUE (organisation_id, nhs_number_index),
    UNIQUE (organisation_id, local_id_index)
);

CREATE TABLE referral_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
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
    id             uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('signpost', 'referral')),
    patient_id     uuid NOT NULL REFERENCES patients (id),
    service_id     uuid NOT NULL,
    group_id       uuid REFERENCES member_organisations (id),
    referrer_user  uuid NOT NULL REFERENCES users (id),
    referrer_org   uuid NOT NULL REFERENCES member_organisations (id),
    status         text NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'rejected', 'in-progress', 'on-hold', 'completed', 'cancelled', 'failed')),
    details        text NOT NULL,
    safeguarding   boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    follow_up_due  timestamptz
);
CREATE INDEX referrals_by_group ON referrals (group_id, created_at);
CREATE INDEX referrals_by_patient ON referrals (patient_id, created_at);
CREATE INDEX referrals_by_follow_up ON referrals (follow_up_due) WHERE follow_up_due IS NOT NULL;
CREATE FUNCTION referrals_move_by_the_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND NOT EXISTS (
        SELECT 1 FROM referral_transitions WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'a referral cannot make that move' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER referrals_move_by_the_rules BEFORE UPDATE OF status ON referrals
    FOR EACH ROW EXECUTE FUNCTION referrals_move_by_the_rules();

CREATE TABLE referral_events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_id  uuid NOT NULL REFERENCES referrals (id),
    at           timestamptz NOT NULL,
    actor        uuid,
    status       text NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'rejected', 'in-progress', 'on-hold', 'completed', 'cancelled', 'failed')),
    note         text NOT NULL
);
CREATE INDEX referral_events_by_referral ON referral_events (referral_id, seq);
