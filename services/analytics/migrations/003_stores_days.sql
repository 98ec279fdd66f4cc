-- 003_stores_days.sql — store monitoring, second step (issue #15):
-- (1) a store's polls kept as one row per UTC day (an array), not one row
-- per poll; (2) the polled CSV sources of PUT /stores/source and their
-- state. See README.md "Store monitoring".

-- (1) Polls by day. A load of the take-home's 1.9 million polls wrote 1.9
-- million rows and as many primary-key entries (owner, store, time), each
-- a probe and an insert into a B-tree keyed by a 36-byte owner: 7.9 s of
-- merge for 1 s of bare COPY. By day it writes 36 000 rows (4 500 stores
-- × 8 days). `day`: at_us / 86 400 000 000 (UTC days since the epoch).
-- `polls`: the day's polls, each at_us * 2 + active (1 active, 0
-- inactive), one per time (a repeated (store, time) is kept once: the
-- first loaded), in time order.
CREATE TABLE store_poll_days (
    owner       text NOT NULL,
    store_id    bigint NOT NULL,
    day         integer NOT NULL CHECK (day >= 0),
    polls       bigint[] NOT NULL,
    PRIMARY KEY (owner, store_id, day)
);

INSERT INTO store_poll_days (owner, store_id, day, polls)
SELECT owner, store_id, (at_us / 86400000000)::int, array_agg (at_us * 2 + active::int ORDER BY at_us)
FROM store_polls GROUP BY 1, 2, 3;
DROP TABLE store_polls;

-- The polls one per row, as before, for reading by hand and by tests
CREATE VIEW store_polls AS
SELECT d.owner, d.store_id, p.v >> 1 AS at_us, (p.v & 1) = 1 AS active
FROM store_poll_days d, unnest (d.polls) AS p (v);

-- A day's polls merged with a load's for the same day: the union in time
-- order, one per time, the polls already kept winning a repeated time.
-- The common cases first: the same day loaded again unchanged (a polled
-- source's whole history, hourly), or a load that only adds later polls.
CREATE FUNCTION store_polls_merge (kept bigint[], loaded bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN kept = loaded THEN kept
        WHEN kept [cardinality (kept)] >> 1 < loaded [1] >> 1 THEN kept || loaded
        WHEN loaded [cardinality (loaded)] >> 1 < kept [1] >> 1 THEN loaded || kept
        ELSE (SELECT array_agg (v ORDER BY v) FROM (
                  SELECT DISTINCT ON (v >> 1) v FROM (
                      SELECT v, 0 AS src FROM unnest (kept) AS k (v)
                      UNION ALL
                      SELECT v, 1 AS src FROM unnest (loaded) AS l (v)) a
                  ORDER BY v >> 1, src) b)
    END
$$;

-- (2) A user's CSV sources, polled hourly (analytics.stores_poll). Each
-- PUT gives a new `generation`: the chain of polls of an older one stops.
CREATE TABLE store_sources (
    owner       text PRIMARY KEY,
    generation  uuid NOT NULL DEFAULT gen_random_uuid (),
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now ()
);

-- Each file of a source and its state: the validators of the last loaded
-- reply (sent as If-None-Match / If-Modified-Since), when it was last
-- polled and last loaded (on the job's clock), how many rows that load
-- had, and the last poll's error (NULL when it loaded or was not
-- modified) with the bad lines of a refused CSV ([{line, reason}]).
CREATE TABLE store_source_files (
    owner       text NOT NULL REFERENCES store_sources ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('status', 'hours', 'timezones')),
    url         text NOT NULL CHECK (char_length (url) BETWEEN 1 AND 2048),
    etag        text,
    last_modified text,
    polled_at   timestamptz,
    loaded_at   timestamptz,
    rows        bigint,
    http_status integer,
    error       text,
    bad_lines   jsonb,
    PRIMARY KEY (owner, kind)
);
