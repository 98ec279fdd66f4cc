-- 004_duration_histograms.sql — exact percentiles without sorting every
-- call of a range (issue #14): per dashboard, UTC day and endpoint, how
-- many calls fall in each duration bucket. A statistic sums them over a
-- range's whole days (and buckets the calls of its partial days) to learn
-- which bucket holds the ranks it needs, then sorts only the calls of that
-- bucket in the range, read through an index on (dashboard, endpoint,
-- bucket, at).

-- The bucket of a duration (ms): width_bucket over fixed thresholds, 0 and
-- then 2^(i/16) from 2^-10 to 2^40 ms (16 a doubling, each ~4.4 % wide).
-- width_bucket only compares, so the buckets follow the order of the
-- durations exactly (a larger duration never falls in a smaller bucket),
-- which the rank search relies on. Durations are stored finite and >= 0:
-- bucket 1 holds [0, 2^-10), the last one everything from 2^40 on.
DO $$
BEGIN
    EXECUTE format (
        'CREATE FUNCTION monitor_bucket (ms float8) RETURNS smallint LANGUAGE sql '
        'IMMUTABLE PARALLEL SAFE AS $f$ SELECT width_bucket (ms, %L::float8 [])::smallint $f$',
        (SELECT '{0,' || string_agg (power (2::float8, i::float8 / 16)::text, ',' ORDER BY i) || '}'
         FROM generate_series (-160, 640) AS i));
END $$;

-- Per dashboard, UTC day, endpoint and bucket: the calls (the ingest keeps
-- it in the statement that stores the calls)
CREATE TABLE calls_daily_hist (
    dashboard_id    uuid NOT NULL,
    day             date NOT NULL,
    endpoint_id     bigint NOT NULL,
    bucket          smallint NOT NULL,
    visits          bigint NOT NULL,
    PRIMARY KEY (dashboard_id, day, endpoint_id, bucket) INCLUDE (visits)
);

INSERT INTO calls_daily_hist (dashboard_id, day, endpoint_id, bucket, visits)
SELECT dashboard_id, (at AT TIME ZONE 'UTC')::date, endpoint_id, monitor_bucket (duration_ms),
       count (*)
FROM calls GROUP BY 1, 2, 3, 4;

-- The calls of one endpoint and bucket in a range (a statistic of several
-- endpoints reads each one's)
CREATE INDEX calls_endpoint_bucket
    ON calls (dashboard_id, endpoint_id, monitor_bucket (duration_ms), at) INCLUDE (duration_ms);

-- The daily addresses' key covers their visits too, so that distinct
-- visitors and visits per address read the index alone
CREATE UNIQUE INDEX calls_daily_ip_cover ON calls_daily_ip (dashboard_id, day, ip) INCLUDE (visits);
ALTER TABLE calls_daily_ip DROP CONSTRAINT calls_daily_ip_pkey,
    ADD CONSTRAINT calls_daily_ip_pkey PRIMARY KEY USING INDEX calls_daily_ip_cover;

-- Retention drops the histograms with the calls
CREATE OR REPLACE FUNCTION calls_drop_before (cutoff date) RETURNS int LANGUAGE plpgsql AS $$
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
    DELETE FROM calls_daily_hist WHERE day < date_trunc ('month', cutoff)::date;
    RETURN dropped;
END $$;
