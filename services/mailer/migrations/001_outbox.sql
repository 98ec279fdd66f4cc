-- The outbox: every mail and webhook the mailer was asked to deliver, built
-- once when asked (so a retry sends the very same bytes, with the same
-- Message-ID) and delivered at least once by the job "mail.deliver" or
-- "webhook.deliver". One idempotency key, one message.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    idem_key     text NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('mail', 'webhook')),
    recipients   text NOT NULL,             -- addresses one per line, or the webhook URL
    sender       text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    message      bytea NOT NULL,            -- the MIME message, or the JSON body
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'failed')),
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now (),
    sent_at      timestamptz
);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE status = 'pending';
