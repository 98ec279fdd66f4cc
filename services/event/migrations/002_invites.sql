-- 002_invites.sql — invitations to a role on an event, by email. The code
-- is made and mailed by the job event.mail_invite and only its BLAKE2b-256
-- hash is kept (code_hash is NULL until then). An invite lives 7 days and
-- is used once; a new invite for the same email and role replaces the
-- pending one (the unique index on pending invites).

CREATE TABLE invites (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower (email) AND char_length (email) <= 254),
    role        text NOT NULL
                CHECK (role IN ('organizer', 'coorganizer', 'track_organizer', 'moderator')),
    code_hash   bytea UNIQUE,
    invited_by  text,
    created_at  timestamptz NOT NULL DEFAULT now (),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     text
);
CREATE UNIQUE INDEX invites_pending ON invites (event_id, email, role) WHERE used_at IS NULL;
