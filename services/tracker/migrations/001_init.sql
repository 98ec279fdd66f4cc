-- 001_init.sql — the tracker schema: trackers and their logs. Every row
-- carries its owner (the user id the gateway vouches for); every statement
-- filters on it. A log's value is in exactly one of num (numerical,
-- duration in seconds, mood 1..5), flag (boolean) or choice
-- (multiple_choice).

CREATE TABLE trackers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    owner       text NOT NULL,
    name        text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 100),
    description text NOT NULL DEFAULT '' CHECK (char_length (description) <= 2000),
    type        text NOT NULL
                CHECK (type IN ('numerical', 'multiple_choice', 'boolean', 'duration', 'mood')),
    choices     text[] CHECK ((type = 'multiple_choice') = (choices IS NOT NULL)),
    unit        text CHECK (char_length (unit) <= 32),
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX trackers_owner ON trackers (owner, created_at, id);

CREATE TABLE logs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    tracker_id  uuid NOT NULL REFERENCES trackers (id) ON DELETE CASCADE,
    owner       text NOT NULL,
    at          timestamptz NOT NULL,
    num         double precision,
    flag        boolean,
    choice      text,
    note        text NOT NULL DEFAULT '' CHECK (char_length (note) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now (),
    CHECK (num_nonnulls (num, flag, choice) = 1)
);
-- Newest first per tracker (lists, last log, ranges, stats); by owner for
-- "did this user log anything today" (reminders) and deletion.
CREATE INDEX logs_tracker_at ON logs (tracker_id, at DESC, id DESC);
CREATE INDEX logs_owner_at ON logs (owner, at);

-- RFC 3339 in UTC: seconds, and milliseconds only when there are some.
CREATE FUNCTION rfc3339 (t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc ('second', t) = t THEN ''
                ELSE to_char (t AT TIME ZONE 'UTC', '.MS') END
        || 'Z'
$$;
