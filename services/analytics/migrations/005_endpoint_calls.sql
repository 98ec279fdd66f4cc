-- 005_endpoint_calls.sql — the calls of one endpoint in a range, read from
-- an index alone (issue #14): distinct visitors and visits per address of
-- some endpoints read either the counted endpoints' calls, or all
-- addresses of the range's whole days (calls_daily_ip) minus the other
-- endpoints' calls, whichever set of calls is smaller. Either way the
-- calls come one endpoint at a time, and neither calls_dashboard_at
-- (every endpoint of the range) nor calls_endpoint_bucket (a bucket
-- before the time) reads one endpoint's range alone.
CREATE INDEX calls_endpoint_at ON calls (dashboard_id, endpoint_id, at) INCLUDE (ip);
