-- 002_throttle_backoff.sql — the time of a key's last failure, so that an
-- account's failures from every address slow its tries down (a growing
-- wait after the last failure) rather than lock it (auth_throttle.h).
ALTER TABLE throttle ADD COLUMN last_failure timestamptz NOT NULL DEFAULT now ();
