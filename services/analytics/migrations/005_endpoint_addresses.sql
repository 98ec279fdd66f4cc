-- 005_endpoint_addresses.sql — distinct visitors and visits per address
-- of some endpoints without reading their calls (issue #14): per
-- dashboard, endpoint, UTC day and client address, the visits (kept by
-- the ingest's statement, as calls_daily_ip is for all endpoints
-- together). A statistic of some endpoints reads either the counted
-- endpoints' rows, or calls_daily_ip less the other endpoints' rows,
-- whichever is smaller, for each slice's whole days, and the calls of its
-- partial days. Clients mostly call the same endpoints again: the
-- bench's 10 million calls make 600 000 rows here.
CREATE TABLE calls_daily_endpoint_ip (
    dashboard_id    uuid NOT NULL,
    endpoint_id     bigint NOT NULL,
    day             date NOT NULL,
    ip              text NOT NULL,
    visits          bigint NOT NULL,
    PRIMARY KEY (dashboard_id, endpoint_id, day, ip) INCLUDE (visits)
);

INSERT INTO calls_daily_endpoint_ip (dashboard_id, endpoint_id, day, ip, visits)
SELECT dashboard_id, endpoint_id, (at AT TIME ZONE 'UTC')::date, ip, count (*)
FROM calls GROUP BY 1, 2, 3, 4;

-- Retention drops them with the calls
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
    DELETE FROM calls_daily_endpoint_ip WHERE day < date_trunc ('month', cutoff)::date;
    RETURN dropped;
END $$;
