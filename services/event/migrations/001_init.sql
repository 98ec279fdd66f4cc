-- 001_init.sql — the event schema: events, the roles people hold on them,
-- and the permission table (role × service × create/read/update/delete)
-- that every handler's check reads (ev_perm, event_common.c: one query
-- per request joins the caller's role to its permissions, so a change by
-- a super admin applies from the next request on every instance).

CREATE TABLE events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    name        text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (char_length (description) <= 10000),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    timezone    text NOT NULL CHECK (char_length (timezone) BETWEEN 1 AND 64),
    location    text NOT NULL DEFAULT '' CHECK (char_length (location) <= 500),
    state       text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'published')),
    creator     text,                       -- NULL once the creator's account is gone
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now (),
    CHECK (starts_at < ends_at)
);
-- The public list: published events by start, newest first (keyset pages)
CREATE INDEX events_published ON events (starts_at DESC, id DESC) WHERE state = 'published';
-- The staff list: every event by start
CREATE INDEX events_all ON events (starts_at DESC, id DESC);

-- One role per user per event. `seniority` orders the roles of an event
-- (the oldest first) for the hand-over when an only organizer leaves.
CREATE TABLE roles (
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    role        text NOT NULL
                CHECK (role IN ('organizer', 'coorganizer', 'track_organizer', 'moderator')),
    email       text,                       -- as auth told it when the role was taken
    created_at  timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX roles_user ON roles (user_id);

-- What each role may do on each service of an event. Staff (admin,
-- super_admin) may do everything and the public reads what API.md says:
-- neither is in the table (ev_perm.c).
CREATE TABLE permissions (
    role        text NOT NULL
                CHECK (role IN ('organizer', 'coorganizer', 'track_organizer', 'moderator')),
    service     text NOT NULL
                CHECK (service IN ('event', 'tickets', 'orders', 'tracks', 'sessions',
                                   'speakers', 'sponsors', 'microlocations')),
    can_create  boolean NOT NULL,
    can_read    boolean NOT NULL,
    can_update  boolean NOT NULL,
    can_delete  boolean NOT NULL,
    PRIMARY KEY (role, service)
);

-- API.md's defaults: organizer all; coorganizer create, read and update,
-- no delete; track_organizer read on all and everything on tracks;
-- moderator read on all.
INSERT INTO permissions (role, service, can_create, can_read, can_update, can_delete)
SELECT r.role, s.service,
       r.role IN ('organizer', 'coorganizer') OR (r.role = 'track_organizer' AND s.service = 'tracks'),
       true,
       r.role IN ('organizer', 'coorganizer') OR (r.role = 'track_organizer' AND s.service = 'tracks'),
       r.role = 'organizer' OR (r.role = 'track_organizer' AND s.service = 'tracks')
FROM (VALUES ('organizer'), ('coorganizer'), ('track_organizer'), ('moderator')) AS r (role),
     (VALUES ('event'), ('tickets'), ('orders'), ('tracks'), ('sessions'), ('speakers'),
             ('sponsors'), ('microlocations')) AS s (service);

-- RFC 3339 in UTC: seconds, and milliseconds only when there are some.
CREATE FUNCTION rfc3339 (t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc ('second', t) = t THEN ''
                ELSE to_char (t AT TIME ZONE 'UTC', '.MS') END
        || 'Z'
$$;
