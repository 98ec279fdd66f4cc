-- 001_init.sql — the notification schema: each user's notifications with
-- a per-user sequence (the SSE event id), the counter that hands it out,
-- and the idempotency keys of the creates.

-- One row per user who ever got a notification: the last sequence handed
-- out. A create locks it, so that one user's creates take turns and commit
-- in sequence order: a stream that read last_seq has seen every
-- notification up to it committed (README.md "Catch-up"). `version` counts
-- the changes of the user's unread count: each one takes the row's lock,
-- bumps it and counts, so that a later version never carries an older
-- count (a gateway drops a count older than the one it sent).
CREATE TABLE counters (
    user_id     text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0)
);

CREATE TABLE notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    user_id     text NOT NULL,
    seq         bigint NOT NULL CHECK (seq > 0),
    title       text NOT NULL CHECK (char_length (title) BETWEEN 1 AND 200),
    message     text NOT NULL CHECK (char_length (message) BETWEEN 1 AND 2000),
    action      text CHECK (char_length (action) BETWEEN 1 AND 64),
    target_url  text CHECK (char_length (target_url) BETWEEN 1 AND 2000),
    sender      text NOT NULL,                  -- the calling service
    created_at  timestamptz NOT NULL DEFAULT now (),
    read_at     timestamptz,
    UNIQUE (user_id, seq)
);
-- The list: newest first, keyset pages; unread ones; the daily purge
CREATE INDEX notifications_page ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;
CREATE INDEX notifications_age ON notifications (created_at);

-- One key, one notification: a replay answers the first one, even after
-- it was read or deleted, for as long as notifications are kept.
CREATE TABLE keys (
    user_id     text NOT NULL,
    key         text NOT NULL CHECK (octet_length (key) BETWEEN 1 AND 128),
    id          uuid NOT NULL,
    seq         bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX keys_age ON keys (created_at);

-- RFC 3339 in UTC: seconds, and milliseconds only when there are some.
CREATE FUNCTION rfc3339 (t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc ('second', t) = t THEN ''
                ELSE to_char (t AT TIME ZONE 'UTC', '.MS') END
        || 'Z'
$$;
