-- Messages waiting to be sent. recipient and body are sealed, and erased once sent.
-- Workers on several instances claim messages with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id               uuid PRIMARY KEY,
    channel          text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    purpose          text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
