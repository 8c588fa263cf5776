-- Follow-ups and outcome measures. A follow-up is due some weeks after a referral (or a
-- signpost, where the practice wants one); reminders and escalations are stamped here so
-- that several instances send each only once. The outcome closes it; the group's own
-- report of attendance is kept beside it. Both hold codes only, never free text.
CREATE TABLE follow_ups (
    referral_id        uuid PRIMARY KEY REFERENCES referrals (id),
    practice_id        uuid NOT NULL REFERENCES member_organisations (id),
    due_at             timestamptz NOT NULL,
    assignee           uuid NOT NULL REFERENCES users (id),
    reminded_at        timestamptz,
    escalated_at       timestamptz,
    outcome            text CHECK (outcome IN ('started', 'still_attending', 'stopped', 'never_attended', 'could_not_contact')),
    outcome_reason     text,
    outcome_at         timestamptz,
    outcome_by         uuid REFERENCES users (id),
    attendance         text CHECK (attendance IN ('started', 'still_attending', 'stopped', 'never_attended', 'could_not_contact')),
    attendance_reason  text,
    attendance_at      timestamptz,
    CHECK ((outcome IS NULL) = (outcome_at IS NULL))
);
CREATE INDEX follow_ups_open ON follow_ups (due_at) WHERE outcome IS NULL;
CREATE INDEX follow_ups_open_by_practice ON follow_ups (practice_id, due_at) WHERE outcome IS NULL;

CREATE TABLE measures (
    id           uuid PRIMARY KEY,
    referral_id  uuid NOT NULL REFERENCES referrals (id),
    patient_id   uuid NOT NULL REFERENCES patients (id),
    instrument   text NOT NULL,
    stage        text NOT NULL CHECK (stage IN ('baseline', 'follow_up')),
    answers      smallint[] NOT NULL,
    taken_at     timestamptz NOT NULL,
    recorded_by  uuid NOT NULL REFERENCES users (id)
);
CREATE INDEX measures_by_referral ON measures (referral_id, taken_at);

CREATE INDEX referrals_by_referrer ON referrals (referrer_org, created_at);
CREATE INDEX referrals_by_created ON referrals (created_at);
CREATE INDEX referrals_by_service ON referrals (service_id, created_at);
