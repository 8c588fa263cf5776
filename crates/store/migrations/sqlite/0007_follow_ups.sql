-- Follow-ups and outcome measures. A follow-up is due some weeks after a referral (or a
-- signpost, where the practice wants one); reminders and escalations are stamped here so
-- that several instances send each only once. The outcome closes it; the group's own
-- report of attendance is kept beside it. Both hold codes only, never free text.
CREATE TABLE follow_ups (
    referral_id        TEXT PRIMARY KEY NOT NULL REFERENCES referrals (id),
    practice_id        TEXT NOT NULL REFERENCES member_organisations (id),
    due_at             TEXT NOT NULL,
    assignee           TEXT NOT NULL REFERENCES users (id),
    reminded_at        TEXT,
    escalated_at       TEXT,
    outcome            TEXT CHECK (outcome IN ('started', 'still_attending', 'stopped', 'never_attended', 'could_not_contact')),
    outcome_reason     TEXT,
    outcome_at         TEXT,
    outcome_by         TEXT REFERENCES users (id),
    attendance         TEXT CHECK (attendance IN ('started', 'still_attending', 'stopped', 'never_attended', 'could_not_contact')),
    attendance_reason  TEXT,
    attendance_at      TEXT,
    CHECK ((outcome IS NULL) = (outcome_at IS NULL))
) STRICT;
CREATE INDEX follow_ups_open ON follow_ups (due_at) WHERE outcome IS NULL;
CREATE INDEX follow_ups_open_by_practice ON follow_ups (practice_id, due_at) WHERE outcome IS NULL;

CREATE TABLE measures (
    id           TEXT PRIMARY KEY NOT NULL,
    referral_id  TEXT NOT NULL REFERENCES referrals (id),
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    instrument   TEXT NOT NULL,
    stage        TEXT NOT NULL CHECK (stage IN ('baseline', 'follow_up')),
    answers      TEXT NOT NULL,
    taken_at     TEXT NOT NULL,
    recorded_by  TEXT NOT NULL REFERENCES users (id)
) STRICT;
CREATE INDEX measures_by_referral ON measures (referral_id, taken_at);

CREATE INDEX referrals_by_referrer ON referrals (referrer_org, created_at);
CREATE INDEX referrals_by_created ON referrals (created_at);
CREATE INDEX referrals_by_service ON referrals (service_id, created_at);
