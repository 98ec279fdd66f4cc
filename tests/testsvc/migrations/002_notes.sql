-- Notes: rows written by the test.note job, and by notes.enqueue in the
-- same transaction as the job it enqueues, so that tests can see from
-- outside which jobs ran, how often, and at which attempt.
CREATE TABLE notes (
    id          bigserial PRIMARY KEY,
    text        text NOT NULL,
    source      text NOT NULL,          -- 'request' or 'job'
    job_id      bigint,
    job_key     text,
    attempt     int,
    created_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX notes_text ON notes (text);
