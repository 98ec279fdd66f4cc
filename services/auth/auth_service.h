//  auth_service.h — what the auth service's files share: its configuration,
//  the user row and its JSON shape, and the registration of each file's
//  methods and jobs. Private to services/auth.
#ifndef AUTH_SERVICE_H_INCLUDED
#define AUTH_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "auth_limits.h"
#include "tl_limits.h"
#include "tl_service.h"

//  Configuration, read once by main() before any thread starts.
typedef struct {
    char public_url [TL_MAX_URL_LEN + 1];   //  links in mails: <url>/verify?code=
    bool require_verification;              //  TALLY_REQUIRE_VERIFICATION
} auth_config_t;

extern auth_config_t auth_config;

//  The columns of a user, in this order, for every statement that returns
//  one (AUTH_COL_* index them).
#define AUTH_USER_COLUMNS \
    "id, username, email, verified, is_admin, is_super_admin, " \
    "to_char (created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), " \
    "timezone, play_sounds, report_format, reminder_channel, webhook_url, " \
    "reminder_time, avatar_url, password_hash"
enum {
    AUTH_COL_ID, AUTH_COL_USERNAME, AUTH_COL_EMAIL, AUTH_COL_VERIFIED,
    AUTH_COL_IS_ADMIN, AUTH_COL_IS_SUPER_ADMIN, AUTH_COL_CREATED_AT,
    AUTH_COL_TIMEZONE, AUTH_COL_PLAY_SOUNDS, AUTH_COL_REPORT_FORMAT,
    AUTH_COL_REMINDER_CHANNEL, AUTH_COL_WEBHOOK_URL, AUTH_COL_REMINDER_TIME,
    AUTH_COL_AVATAR_URL, AUTH_COL_PASSWORD_HASH
};

//  What auth_pack_user shows besides the public fields.
#define AUTH_SHOW_EMAIL     1           //  the user's email
#define AUTH_SHOW_WEBHOOK   2           //  settings.webhook_url (a secret of its owner's)
#define AUTH_SHOW_ALL       (AUTH_SHOW_EMAIL | AUTH_SHOW_WEBHOOK)

//  Packs the user of `row` as API.md's user object: {id, username, email,
//  verified, is_admin, is_super_admin, created_at, avatar_url, settings{...}}. The
//  email and settings.webhook_url are left out unless `show` names them
//  (AUTH_SHOW_*): staff lists never show another user's address or any
//  user's webhook. Never the password hash.
void auth_pack_user (msgpack_packer *pk, const PGresult *res, int row, int show);

//  True when a boolean column of `row` is true.
bool auth_col_true (const PGresult *res, int row, int col);

//  The string `field` of the call's body, copied (the caller frees), or
//  NULL when it is missing, not a string, holds a NUL or passes `max`
//  bytes.
char *auth_body_text (tl_call_t *call, const char *field, size_t max);

//  Checks a new password's length (AUTH_PASSWORD_MIN..MAX characters of
//  UTF-8). Answers 400 on `field` and returns false when it is weak.
bool auth_password_acceptable (tl_call_t *call, const char *field, const char *password);

//  Room for auth_client_address's text.
#define AUTH_ADDRESS_LEN 50

//  Writes the caller's address (the gateway's `client_ip` param, on
//  routes with "credentials") into `out` as throttles count it: an IPv6
//  address as its /64 ("2001:db8:1:2::/64": one host commonly holds a
//  whole /64), an IPv4-mapped one as IPv4, "-" when there is none.
void auth_client_address (tl_call_t *call, char out [AUTH_ADDRESS_LEN]);

//  Answers 429 too_many_attempts with Retry-After `seconds`.
void auth_refuse (tl_call_t *call, int seconds);

//  Counts this request against each of `keys` (auth_throttle_hit, with
//  `limits` [i] requests per AUTH_THROTTLE_WINDOW_SEC). Returns true when
//  every key is within its limit; otherwise answers 429 with Retry-After
//  (or the database error) and returns false. Keys after a refusing one
//  are not counted.
bool auth_throttle_admit (tl_call_t *call, const char *const *keys, const int *limits,
                          int nkeys);

//  Counts a request that costs a hash or a mail (`what`: register, reset)
//  against its client address and its email (AUTH_REQUESTS_PER_*), as
//  "<what>-ip:<address>" and "<what>-email:<email>", before any hash runs.
//  Returns true when it may go on; otherwise it has answered 429.
bool auth_admit_costly (tl_call_t *call, const char *what, const char *email);


//  Enqueues an auth job whose payload is a map of the `count` string pairs
//  in `pairs` (key, value, key, value...), in db's current transaction.
//  Returns as tl_jobs_enqueue.
int auth_enqueue (tl_db_t *db, const char *kind, const char *const *pairs, int count,
                  const char *unique_key, int max_attempts);

//  What auth_password_try found.
#define AUTH_PASSWORD_WRONG  0          //  not answered: the caller says 401
#define AUTH_PASSWORD_RIGHT  1

//  A throttle key of a password check and the rule it counts by
//  (auth_throttle.h; limits in auth_limits.h).
typedef enum {
    AUTH_GUARD_LOCK,        //  AUTH_THROTTLE_FAILURES, then 429 to the window's end;
                            //  a success clears it
    AUTH_GUARD_ADDRESS,     //  AUTH_THROTTLE_IP_FAILURES, then 429; a success keeps it
    AUTH_GUARD_BACKOFF      //  past AUTH_BACKOFF_AFTER failures a doubling wait after
                            //  each (at most AUTH_BACKOFF_MAX_SEC); a success clears it
} auth_guard_rule_t;

typedef struct {
    const char *key;
    auth_guard_rule_t rule;
} auth_guard_t;

//  Checks `password` against `stored` (NULL: no such user, checked against
//  the dummy at the same cost) under the failure throttle of `guards`: a
//  guard that refuses answers 429 with Retry-After before any hash runs; a
//  failure counts against every guard; a success clears every guard but
//  an address. Returns AUTH_PASSWORD_RIGHT or _WRONG, or a negative code
//  once it has answered (429, 503).
int auth_password_try (tl_call_t *call, const auth_guard_t *guards, int nguards,
                       const char *stored, const char *password);

//  Starts a session for `user_id` and writes its token into `token`; the
//  user's sessions beyond the newest AUTH_MAX_SESSIONS_PER_USER end (and
//  the gateways hear of it). Returns 0 or a database code.
int auth_session_create (tl_call_t *call, const char *user_id,
                         char token [AUTH_TOKEN_TEXT_LEN + 1]);

//  Tells every gateway, once the call's writes are committed and before it
//  answers, that what it keeps of `user_id`'s sessions is stale: a session
//  ended, or what the session check says of the user changed (time zone,
//  verified, staff roles). The gateways forget that user's cached session
//  checks (topic AUTH_TOPIC_USER_CHANGED, body {user_id}).
void auth_user_changed (tl_call_t *call, const char *user_id);

//  Adds the Set-Cookie header that gives (token) or takes back (NULL) the
//  web session cookie.
void auth_session_cookie (tl_call_t *call, const char *token);

//  The service's statements, prepared on each thread (main.c's init).
int auth_accounts_prepare (tl_db_t *db);
int auth_sessions_prepare (tl_db_t *db);
int auth_jobs_prepare (tl_db_t *db);

//  Registration of each file's methods and jobs. Return 0 or a code.
int auth_accounts_register (tl_service_t *svc);
int auth_sessions_register (tl_service_t *svc);
int auth_jobs_register (tl_service_t *svc);
int auth_avatar_register (tl_service_t *svc);     //  /me/avatar (auth_avatar.c)
int auth_avatar_prepare (tl_db_t *db);

#endif
