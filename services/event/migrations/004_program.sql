-- 004_program.sql — what happens at an event: tracks, microlocations
-- (rooms), speakers, sponsors and sessions (each in a track and a room of
-- the same event, with speakers of the same event, inside the event's
-- times: checked by event_parts.c). Upload ids are stored as given, once
-- checked as UUIDs, until the upload service exists.

CREATE TABLE tracks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    description text CHECK (char_length (description) <= 2000),
    color       text CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX tracks_event ON tracks (event_id, created_at, id);

CREATE TABLE microlocations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    floor       integer CHECK (floor BETWEEN -100 AND 1000),
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX microlocations_event ON microlocations (event_id, created_at, id);

CREATE TABLE speakers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    email           text CHECK (char_length (email) <= 254),
    bio             text CHECK (char_length (bio) <= 5000),
    photo_upload_id uuid,
    organisation    text CHECK (char_length (organisation) <= 200),
    created_at      timestamptz NOT NULL DEFAULT now (),
    updated_at      timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX speakers_event ON speakers (event_id, created_at, id);

CREATE TABLE sponsors (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    level           text CHECK (char_length (level) <= 50),
    url             text CHECK (char_length (url) <= 2048),
    logo_upload_id  uuid,
    created_at      timestamptz NOT NULL DEFAULT now (),
    updated_at      timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX sponsors_event ON sponsors (event_id, created_at, id);

CREATE TABLE sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id            uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    title               text NOT NULL CHECK (char_length (title) BETWEEN 1 AND 200),
    abstract            text CHECK (char_length (abstract) <= 10000),
    track_id            uuid REFERENCES tracks (id) ON DELETE SET NULL,
    microlocation_id    uuid REFERENCES microlocations (id) ON DELETE SET NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    state               text NOT NULL DEFAULT 'draft'
                        CHECK (state IN ('draft', 'accepted', 'rejected')),
    created_at          timestamptz NOT NULL DEFAULT now (),
    updated_at          timestamptz NOT NULL DEFAULT now (),
    CHECK (starts_at < ends_at)
);
CREATE INDEX sessions_event ON sessions (event_id, created_at, id);

CREATE TABLE session_speakers (
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    speaker_id  uuid NOT NULL REFERENCES speakers (id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, speaker_id)
);
CREATE INDEX session_speakers_speaker ON session_speakers (speaker_id);
