-- 001_init.sql — the auth schema: users with their settings, sessions,
-- mailed codes and the login throttle. Tokens and codes are stored only as
-- BLAKE2b-256 hashes (auth_token.h); passwords only as argon2id strings.

CREATE TABLE users (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    username         text NOT NULL,
    email            text NOT NULL,
    password_hash    text NOT NULL,
    verified         boolean NOT NULL DEFAULT false,
    is_admin         boolean NOT NULL DEFAULT false,
    is_super_admin   boolean NOT NULL DEFAULT false,
    timezone         text NOT NULL DEFAULT 'UTC',
    play_sounds      boolean NOT NULL DEFAULT true,
    report_format    text NOT NULL DEFAULT 'html'
                     CHECK (report_format IN ('html', 'pdf')),
    reminder_channel text NOT NULL DEFAULT 'email'
                     CHECK (reminder_channel IN ('email', 'webhook', 'none')),
    webhook_url      text,
    reminder_time    text NOT NULL DEFAULT '20:00'
                     CHECK (reminder_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    created_at       timestamptz NOT NULL DEFAULT now (),
    updated_at       timestamptz NOT NULL DEFAULT now (),
    CONSTRAINT users_webhook_needs_url
        CHECK (reminder_channel <> 'webhook' OR webhook_url IS NOT NULL)
);
-- Unique ignoring case; also the lookups of login and password reset.
CREATE UNIQUE INDEX users_username_lower ON users (lower (username));
CREATE UNIQUE INDEX users_email_lower ON users (lower (email));
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now (),
    last_used_at timestamptz NOT NULL DEFAULT now (),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Single-use codes mailed for verification (24 h) and password reset
-- (30 min). A verification code verifies the address it was sent to only.
CREATE TABLE codes (
    code_hash  bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email      text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX codes_user ON codes (user_id, purpose);
CREATE INDEX codes_expires ON codes (expires_at);

-- Failed logins per key ("login:<name>", "ip:<address>", "user:<id>") in a
-- window that opens at the first failure (auth_throttle.h).
CREATE TABLE throttle (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL
);
CREATE INDEX throttle_window ON throttle (window_start);
