-- 001_init.sql — the upload schema: blobs (the bytes, content-addressed by
-- the SHA-256 of what was uploaded, kept in the store under that name),
-- their variants (derived sizes, made once), uploads (one row per owner
-- and upload, pointing at a blob), the references other services hold on
-- uploads (an event's background, a user's avatar...), and the log that
-- the hourly upload quota counts.

CREATE TABLE blobs (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL,
    width        int NOT NULL CHECK (width > 0),
    height       int NOT NULL CHECK (height > 0),
    bytes        bigint NOT NULL CHECK (bytes >= 0),    -- as stored (cleaned)
    created_at   timestamptz NOT NULL DEFAULT now ()
);

CREATE TABLE variants (
    sha256       text NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    variant      text NOT NULL,
    content_type text NOT NULL,
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (sha256, variant)
);

CREATE TABLE uploads (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    owner       text,                       -- NULL once the owner's account is gone
    sha256      text NOT NULL REFERENCES blobs (sha256),
    bytes       bigint NOT NULL CHECK (bytes >= 0),     -- as uploaded: the quota's
    created_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX uploads_owner ON uploads (owner, created_at DESC, id DESC);
CREATE INDEX uploads_sha256 ON uploads (sha256);
CREATE INDEX uploads_created ON uploads (created_at);

-- Who shows an upload: one upload per (kind, ref_id), e.g. the background
-- of event <id>. An upload with a reference cannot be deleted (409).
CREATE TABLE refs (
    kind        text NOT NULL CHECK (kind IN ('event_background', 'avatar',
                                              'speaker_photo', 'sponsor_logo')),
    ref_id      text NOT NULL CHECK (char_length (ref_id) BETWEEN 1 AND 64),
    upload_id   uuid NOT NULL REFERENCES uploads (id),
    created_at  timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (kind, ref_id)
);
CREATE INDEX refs_upload ON refs (upload_id);

-- One row per accepted upload, for the per-hour quota (deleting an upload
-- does not give its slot back); rows older than an hour are purged daily.
CREATE TABLE upload_log (
    owner       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX upload_log_owner ON upload_log (owner, at);

CREATE FUNCTION rfc3339 (t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;
