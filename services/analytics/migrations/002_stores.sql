-- 002_stores.sql — store monitoring (issue #15, shared/API.md "Analytics",
-- README.md "Store monitoring"): each user's stores, their status polls,
-- business hours and time zones, and the uptime reports made from them.
-- Loads go through a staging table (COPY) and are merged in one
-- transaction: all rows or none.

-- The stores a user has loaded anything about: what a report walks.
-- `last_us`: the store's newest poll (NULL before its first), kept by each
-- load, so that a report's "now" is read without scanning the polls.
CREATE TABLE stores (
    owner       text NOT NULL,
    store_id    bigint NOT NULL CHECK (store_id >= 0),
    last_us     bigint,
    PRIMARY KEY (owner, store_id)
);

-- Status polls. `at_us`: microseconds since the Unix epoch, UTC (the
-- report reads integers, not times). A repeated (store, time) is kept once.
-- The key carries `active` too, so that a report reads a store's week from
-- the index alone (an index-only scan once the table is vacuumed).
CREATE TABLE store_polls (
    owner       text NOT NULL,
    store_id    bigint NOT NULL,
    at_us       bigint NOT NULL,
    active      boolean NOT NULL,
    PRIMARY KEY (owner, store_id, at_us) INCLUDE (active)
);

-- Business hours in the store's local time: `dow` 0 = Monday .. 6 = Sunday,
-- start and end in seconds after local midnight (end 86400 is the
-- `23:59:59` of the take-home: midnight; end < start runs past midnight).
CREATE TABLE store_hours (
    owner       text NOT NULL,
    store_id    bigint NOT NULL,
    dow         smallint NOT NULL CHECK (dow BETWEEN 0 AND 6),
    start_s     integer NOT NULL CHECK (start_s BETWEEN 0 AND 86399),
    end_s       integer NOT NULL CHECK (end_s BETWEEN 0 AND 86400)
);
CREATE INDEX store_hours_store ON store_hours (owner, store_id);

-- A store's IANA time zone (checked against the system's tz database).
CREATE TABLE store_zones (
    owner       text NOT NULL,
    store_id    bigint NOT NULL,
    zone        text NOT NULL CHECK (char_length (zone) BETWEEN 1 AND 64),
    PRIMARY KEY (owner, store_id)
);

-- Reports: running until the job completes them (or fails them); kept
-- 30 days (the daily analytics.stores_purge job).
CREATE TABLE store_reports (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    owner       text NOT NULL,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'complete', 'failed')),
    error       text,
    now_us      bigint,                     -- the newest poll: the report's "now"
    stores      integer,
    csv         text,
    pdf         bytea,
    created_at  timestamptz NOT NULL DEFAULT now (),
    finished_at timestamptz
);
CREATE INDEX store_reports_owner ON store_reports (owner, created_at);
CREATE INDEX store_reports_age ON store_reports (created_at);
