-- Retention: what the outbox keeps of a message once it is done with it.
-- user_id names the user a message is for (given by the sender), so that
-- user.deleted can forget that user's messages; message becomes NULL when
-- the body is dropped (mailer.purge, a week after sending; user.deleted).
ALTER TABLE outbox ADD COLUMN user_id text;
ALTER TABLE outbox ALTER COLUMN message DROP NOT NULL;
CREATE INDEX outbox_user ON outbox (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX outbox_bodies_done ON outbox (coalesce (sent_at, created_at))
    WHERE message IS NOT NULL AND status <> 'pending';
