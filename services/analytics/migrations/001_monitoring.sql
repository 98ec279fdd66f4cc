-- 001_monitoring.sql — API monitoring (issue #14): the remote
-- flask-monitoring-dashboards users watch, their endpoints, their calls
-- (partitioned by month) and the hourly aggregates that answer counts,
-- sums, averages, minima and maxima without reading the calls.

CREATE TABLE dashboards (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    owner           text NOT NULL,
    name            text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    url             text NOT NULL CHECK (char_length (url) BETWEEN 1 AND 2048),
    token           text NOT NULL CHECK (octet_length (token) BETWEEN 1 AND 256),
    version         text NOT NULL DEFAULT '',          -- dashboard-version
    state           text NOT NULL DEFAULT 'backfilling'
                    CHECK (state IN ('backfilling', 'ok', 'failing')),
    error           text,                               -- the last failure, while failing
    failures        int NOT NULL DEFAULT 0,             -- failed fetches in a row
    first_request   timestamptz,                        -- FMD's, NULL when it had none
    fetched_to      timestamptz NOT NULL,               -- fetched up to here (whole seconds)
    backfilled      boolean NOT NULL DEFAULT false,     -- then hourly from last_call_at
    last_call_at    timestamptz,                        -- the newest call fetched
    last_fetch_at   timestamptz,
    builtin         boolean NOT NULL DEFAULT false,     -- Tally's own calls (staff see it)
    created_at      timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX dashboards_owner ON dashboards (owner, created_at, id);

-- The built-in dashboard: the calls every gateway of this Tally serves
-- (calls.ingest), never fetched
INSERT INTO dashboards (id, owner, name, url, token, state, fetched_to, backfilled, builtin)
VALUES ('00000000-0000-4000-8000-00000000a001', '', 'Tally', 'builtin:', '-', 'ok', now (),
        true, true);

-- The endpoints a dashboard's monitor rules and calls name; `enabled` is
-- the owner's choice (disabled ones are left out of the statistics)
CREATE TABLE endpoints (
    id              bigserial PRIMARY KEY,
    dashboard_id    uuid NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (octet_length (name) BETWEEN 1 AND 512),
    enabled         boolean NOT NULL DEFAULT true,
    monitor         boolean NOT NULL DEFAULT true,      -- as the remote rules say
    calls           bigint NOT NULL DEFAULT 0,
    UNIQUE (dashboard_id, name)
);

-- The calls, a partition a month (calls_YYYYMM, created ahead by the job
-- analytics.partitions and on demand for back-filled months; dropped past
-- the retention). The index answers a dashboard's range, and its
-- INCLUDE columns let percentiles and distinct visitors read the index
-- alone.
CREATE TABLE calls (
    dashboard_id    uuid NOT NULL,
    endpoint_id     bigint NOT NULL,
    at              timestamptz NOT NULL,
    duration_ms     float8 NOT NULL,
    ip              text NOT NULL DEFAULT '',
    version         text NOT NULL DEFAULT '',
    group_by        text NOT NULL DEFAULT '',
    status          smallint                            -- Tally's own calls: the HTTP status
) PARTITION BY RANGE (at);
CREATE INDEX calls_dashboard_at ON calls (dashboard_id, at) INCLUDE (endpoint_id, duration_ms, ip);

-- Per endpoint per hour: what counts, sums, averages and extremes need
CREATE TABLE calls_hourly (
    dashboard_id    uuid NOT NULL,
    endpoint_id     bigint NOT NULL,
    hour            timestamptz NOT NULL,
    visits          bigint NOT NULL,
    total_ms        float8 NOT NULL,
    min_ms          float8 NOT NULL,
    max_ms          float8 NOT NULL,
    PRIMARY KEY (dashboard_id, hour, endpoint_id)
);

-- Per dashboard, UTC day and client address: what distinct visitors and
-- visits per address need over whole days, all endpoints together
CREATE TABLE calls_daily_ip (
    dashboard_id    uuid NOT NULL,
    day             date NOT NULL,
    ip              text NOT NULL,
    visits          bigint NOT NULL,
    PRIMARY KEY (dashboard_id, day, ip)
);

-- Creates the partition of the month of `month` (UTC) unless it exists.
-- Instances take turns (a transaction-scoped advisory lock).
CREATE FUNCTION calls_partition (month date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc ('month', month)::date;
    part text := 'calls_' || to_char (first, 'YYYYMM');
BEGIN
    PERFORM pg_advisory_xact_lock (hashtextextended ('analytics.calls_partition', 0));
    IF to_regclass (quote_ident (current_schema ()) || '.' || part) IS NULL THEN
        EXECUTE format ('CREATE TABLE %I.%I PARTITION OF %I.calls FOR VALUES FROM (%L) TO (%L)',
                        current_schema (), part, current_schema (),
                        first::timestamp AT TIME ZONE 'UTC',
                        (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
END $$;

-- Drops the partitions (and hourly rows) wholly before `cutoff` (UTC);
-- returns how many partitions went.
CREATE FUNCTION calls_drop_before (cutoff date) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock (hashtextextended ('analytics.calls_partition', 0));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class p ON p.oid = i.inhparent
          JOIN pg_namespace n ON n.oid = p.relnamespace
         WHERE p.relname = 'calls' AND n.nspname = current_schema ()
           AND c.relname ~ '^calls_[0-9]{6}$'
           AND to_date (substr (c.relname, 7), 'YYYYMM') + interval '1 month'
               <= date_trunc ('month', cutoff)
    LOOP
        EXECUTE format ('DROP TABLE %I.%I', current_schema (), part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM calls_hourly WHERE hour < date_trunc ('month', cutoff)::timestamp AT TIME ZONE 'UTC';
    DELETE FROM calls_daily_ip WHERE day < date_trunc ('month', cutoff)::date;
    RETURN dropped;
END $$;

-- A time as the API writes it: RFC 3339 in UTC, milliseconds when it has
-- them (API monitoring's own name: store monitoring keeps its own)
CREATE FUNCTION monitor_rfc3339 (t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc ('second', t) = t THEN ''
                ELSE to_char (t AT TIME ZONE 'UTC', '.MS') END
        || 'Z'
$$;

-- The slices of a statistic from their boundaries (ms since the epoch,
-- n + 1 of them): slice k is [lo, hi), and [hlo, hhi) the whole UTC hours
-- inside it (the hourly aggregates answer those; the calls the edges). In
-- PL/pgSQL so that the planner takes its ROWS estimate (a few slices; a
-- built-in set function is guessed at 1000 rows and the plan goes wrong).
CREATE FUNCTION monitor_slices (bounds float8 [])
RETURNS TABLE (k int, lo timestamptz, hi timestamptz, hlo timestamptz, hhi timestamptz)
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY
    SELECT s.k, s.lo, s.hi,
           CASE WHEN date_trunc ('hour', s.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' = s.lo
                THEN s.lo
                ELSE (date_trunc ('hour', s.lo AT TIME ZONE 'UTC') + interval '1 hour')
                     AT TIME ZONE 'UTC' END,
           date_trunc ('hour', s.hi AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM (SELECT i AS k, to_timestamp (bounds [i] / 1000) AS lo,
                 to_timestamp (bounds [i + 1] / 1000) AS hi
          FROM generate_subscripts (bounds, 1) AS i
          WHERE i < array_upper (bounds, 1)) s;
END $$;

-- The same slices with [dlo, dhi), the whole UTC days inside each (the
-- daily aggregates answer those; the calls the edges).
CREATE FUNCTION monitor_day_slices (bounds float8 [])
RETURNS TABLE (k int, lo timestamptz, hi timestamptz, dlo timestamptz, dhi timestamptz,
               dlo_day date, dhi_day date)
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY
    SELECT d.k, d.lo, d.hi, d.dlo::timestamp AT TIME ZONE 'UTC', d.dhi::timestamp AT TIME ZONE 'UTC',
           d.dlo, d.dhi
    FROM (SELECT s.k, s.lo, s.hi,
                 CASE WHEN date_trunc ('day', s.lo AT TIME ZONE 'UTC') = s.lo AT TIME ZONE 'UTC'
                      THEN (s.lo AT TIME ZONE 'UTC')::date
                      ELSE (s.lo AT TIME ZONE 'UTC')::date + 1 END AS dlo,
                 (s.hi AT TIME ZONE 'UTC')::date AS dhi
          FROM (SELECT i AS k, to_timestamp (bounds [i] / 1000) AS lo,
                       to_timestamp (bounds [i + 1] / 1000) AS hi
                FROM generate_subscripts (bounds, 1) AS i
                WHERE i < array_upper (bounds, 1)) s) d;
END $$;
