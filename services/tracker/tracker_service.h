//  tracker_service.h — what the tracker service's files share: the tracker
//  row, log values in SQL, the caller's time zone, time ranges, and the
//  registration of each file's methods and jobs. Private to
//  services/tracker.
#ifndef TRACKER_SERVICE_H_INCLUDED
#define TRACKER_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "tl_limits.h"
#include "tl_service.h"
#include "trk_limits.h"
#include "trk_value.h"

//  One tracker, as the handlers need it.
typedef struct {
    char id [37];
    char owner [TL_MAX_ID_LEN + 1];
    char name [TRK_NAME_MAX * 4 + 1];           //  UTF-8
    trk_type_t type;
    char unit [TRK_UNIT_MAX * 4 + 1];           //  "" when none
    size_t nchoices;
    char *choices [TRK_MAX_CHOICES];            //  multiple_choice; owned
} tracker_t;

//  The columns of a tracker for tracker_from_row, in this order.
#define TRACKER_ROW_COLUMNS "id, owner, name, type, coalesce (unit, ''), choices"

//  Reads tracker `id` of the caller into *tracker. Answers 404 (not the
//  caller's, or no such tracker: never told apart) or 503 and returns
//  false when it cannot. `lock` takes the row FOR UPDATE (writes that
//  check a rule across logs: mood days, type changes). Free with
//  tracker_clear.
bool tracker_load (tl_call_t *call, const char *id, bool lock, tracker_t *tracker);

//  The same on any connection for a known owner (jobs); 0, TL_ENOTFOUND or
//  a database code. tracker_lock_db also takes the row FOR UPDATE (inside a
//  transaction: writes that check a rule across logs take turns).
int tracker_load_db (tl_db_t *db, const char *owner, const char *id, tracker_t *tracker);
int tracker_lock_db (tl_db_t *db, const char *owner, const char *id, tracker_t *tracker);

//  Reads how many logs tracker `id` has into *count (trackers.log_count,
//  kept by triggers on logs: this transaction's own writes included). Call
//  it with the tracker's row locked (tracker_lock_db), so that no other
//  write adds logs until the transaction ends. Returns 0 or a database
//  code.
int tracker_log_count (tl_db_t *db, const char *id, long *count);

//  Fills a tracker from row `row` of a result with TRACKER_ROW_COLUMNS at
//  column `col`. Returns 0 or TL_ENOMEM / TL_EINVAL.
int tracker_from_row (const PGresult *res, int row, int col, tracker_t *tracker);

//  Frees a tracker's choices.
void tracker_clear (tracker_t *tracker);

//  A value's SQL parameters (num, flag, choice: two of them NULL), pointing
//  into `num_text` for a number.
void tracker_value_params (const trk_value_t *value, char num_text [40],
                           const char **num, const char **flag, const char **choice);

//  SQL: true when a log row's value (its num, flag and choice columns)
//  fits tracker type `type_param` (a text parameter such as "$5"), by
//  trk_value's rules; false or NULL otherwise. A row can break them (the
//  schema checks only that one column is set: a type changed under a write
//  before it was checked under the row lock, a hand-made row), and stats,
//  charts, boards and reports skip such rows rather than read them.
#define TRACKER_SQL_STR_(x) #x
#define TRACKER_SQL_STR(x) TRACKER_SQL_STR_(x)
#define TRACKER_VALUE_FITS(type_param) \
    "CASE " type_param "::text WHEN 'boolean' THEN flag IS NOT NULL " \
    "WHEN 'multiple_choice' THEN octet_length (choice) <= " \
    TRACKER_SQL_STR (TRK_CHOICE_MAX_LEN) " " \
    "WHEN 'mood' THEN num IN (1, 2, 3, 4, 5) " \
    "WHEN 'duration' THEN num BETWEEN 0 AND " TRACKER_SQL_STR (TRK_DURATION_MAX_SEC) " " \
    "ELSE num BETWEEN -" TRACKER_SQL_STR (TRK_VALUE_MAX_ABS) \
    " AND " TRACKER_SQL_STR (TRK_VALUE_MAX_ABS) " END"

//  Reads the value of a log row whose num, flag and choice columns start at
//  `col`, for a tracker of `type`. Returns 0 or TL_EINVAL (a row whose
//  value does not fit the type: TRACKER_VALUE_FITS).
int tracker_value_from_row (const PGresult *res, int row, int col, trk_type_t type,
                            trk_value_t *value);

//  A user as the auth service tells it (user.get, users.lookup): what the
//  tracker needs of their account and settings.
typedef struct {
    char id [TL_MAX_ID_LEN + 1];
    char username [TL_USERNAME_MAX + 1];
    char email [TL_MAX_EMAIL_LEN + 1];
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    char channel [16];                          //  email, webhook, none
    char webhook_url [TL_MAX_URL_LEN + 1];      //  "" when none
    char reminder_time [8];                     //  HH:MM
    char report_format [8];                     //  html, pdf
    bool verified;                              //  the address is proven: mail may go
} tracker_user_t;

//  Reads one user object (auth's shape). Returns false for one without an
//  id, user name or address; settings that are missing or malformed read
//  as auth's defaults (UTC, reminders by email at 20:00, HTML); an address
//  is verified only when auth says `verified: true`.
bool tracker_user_from_mp (const msgpack_object *obj, tracker_user_t *user);

//  The caller's account and settings, asked of the auth service on the
//  caller's behalf (a nested call: only for what the caller does not
//  carry, such as the user name and report settings); auth's defaults when
//  it has no such user. Answers 503 / 504 and returns false when auth
//  cannot be asked.
bool tracker_user_get (tl_call_t *call, tracker_user_t *user);

//  The caller's IANA time zone, as the gateway put it in the request's
//  caller from the session check (tl_call_user_zone): "UTC" when the
//  request carries none or one this machine does not know. Borrowed from
//  the call.
const char *tracker_caller_zone (tl_call_t *call);


//  Runs handler `fn` as one of the caller's expensive requests: at most
//  TRK_MAX_EXPENSIVE_PER_USER of them run at once, whatever the instance.
//  Takes the first free slot of the caller, a session advisory lock on
//  the call's connection keyed "tracker.expensive:<user>:<slot>", runs fn,
//  then gives the slot back, whatever fn answered. With no slot free,
//  answers 429 with Retry-After and does not run fn; 503 / 504 when the
//  database cannot say. A call without a user (mesh) just runs fn.
void tracker_expensive (tl_call_t *call, tl_handler_fn *fn);


//  --- Shared by tracker_stats.c (which defines them) and the reports ----

typedef struct _trk_chart_t trk_chart_t;
typedef struct _trk_board_t trk_board_t;

//  Packs a tracker's stats over [from_ms, to_ms] (INT64_MIN / INT64_MAX:
//  unbounded) by the local days of IANA `zone`, exactly as GET
//  /trackers/{id}/stats answers them. Returns 0 or a database code.
int tracker_stats_pack (tl_db_t *db, const tracker_t *tracker, const char *zone,
                        int64_t from_ms, int64_t to_ms, msgpack_packer *pk);

//  Builds the tracker's chart over [from_ms, to_ms] (line for numerical and
//  duration, bars otherwise), dates in `zone`. Returns 0 with the chart in
//  *chart_p (the caller's), or a code.
int tracker_chart_build (tl_db_t *db, const tracker_t *tracker, const char *zone,
                         int64_t from_ms, int64_t to_ms, trk_chart_t **chart_p);

//  Builds a mood tracker's board of `year` (local days of `zone`).
//  Returns 0 with the board in *board_p (the caller's), or a code.
int tracker_board_build (tl_db_t *db, const tracker_t *tracker, const char *zone,
                         int year, trk_board_t **board_p);

//  Registration of each file's methods and jobs, and its statements (each
//  handler and job thread's init). Return 0 or a code.
int tracker_trackers_register (tl_service_t *svc);
int tracker_trackers_prepare (tl_db_t *db);
int tracker_logs_register (tl_service_t *svc);
int tracker_logs_prepare (tl_db_t *db);
int tracker_stats_register (tl_service_t *svc);     //  stats, charts, boards
int tracker_stats_prepare (tl_db_t *db);
int tracker_csv_register (tl_service_t *svc);       //  CSV export and import
int tracker_csv_prepare (tl_db_t *db);
int tracker_reports_register (tl_service_t *svc);   //  reminders, monthly reports
int tracker_reports_prepare (tl_db_t *db);

#endif
