-- 002_log_count.sql — each tracker counts its logs (trackers.log_count),
-- kept by statement triggers on logs, so that the quota of logs a tracker
-- (trk_limits.h) is read from the tracker's row instead of counted. A write
-- that checks the quota locks the row first (FOR NO KEY UPDATE): a
-- concurrent insert or delete of its logs updates that row in its own
-- transaction, so the lock returns the count with it (PostgreSQL re-reads
-- a row that changed while it waited), even within one statement.

ALTER TABLE trackers ADD COLUMN log_count integer NOT NULL DEFAULT 0;

UPDATE trackers t SET log_count = c.n
FROM (SELECT tracker_id, count (*) AS n FROM logs GROUP BY tracker_id) AS c
WHERE c.tracker_id = t.id;

CREATE FUNCTION logs_counted () RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE trackers t SET log_count = t.log_count + c.n
        FROM (SELECT tracker_id, count (*) AS n FROM new_logs GROUP BY tracker_id) AS c
        WHERE c.tracker_id = t.id;
    ELSE
        UPDATE trackers t SET log_count = t.log_count - c.n
        FROM (SELECT tracker_id, count (*) AS n FROM old_logs GROUP BY tracker_id) AS c
        WHERE c.tracker_id = t.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER logs_count_insert AFTER INSERT ON logs
    REFERENCING NEW TABLE AS new_logs FOR EACH STATEMENT EXECUTE FUNCTION logs_counted ();
CREATE TRIGGER logs_count_delete AFTER DELETE ON logs
    REFERENCING OLD TABLE AS old_logs FOR EACH STATEMENT EXECUTE FUNCTION logs_counted ();
