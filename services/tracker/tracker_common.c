//  tracker_common.c — the tracker row, values in SQL, the caller's zone and
//  time ranges, shared by the tracker service's handlers.
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"
#include "tl_time.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "tracker_get",
      "SELECT " TRACKER_ROW_COLUMNS " FROM trackers WHERE id = $1 AND owner = $2", 2 },
    { "tracker_get_lock",
      "SELECT " TRACKER_ROW_COLUMNS " FROM trackers WHERE id = $1 AND owner = $2 FOR UPDATE", 2 },
    //  An expensive request's slot $2 of user $1 (tracker_expensive)
    { "tracker_slot_take",
      "SELECT pg_try_advisory_lock (hashtextextended ('tracker.expensive:' || $1 || ':' || $2, 0))", 2 },
    { "tracker_slot_give",
      "SELECT pg_advisory_unlock (hashtextextended ('tracker.expensive:' || $1 || ':' || $2, 0))", 2 },
    //  Kept by triggers on logs (002_log_count.sql)
    { "tracker_log_count", "SELECT log_count FROM trackers WHERE id = $1", 1 },
};

static int
s_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

void
tracker_clear (tracker_t *tracker)
{
    for (size_t i = 0; i < tracker->nchoices; i++)
        free (tracker->choices [i]);
    tracker->nchoices = 0;
}

//  Splits a PostgreSQL text[] literal ({a,"b c","d\"e"}) into choices.
static int
s_parse_array (const char *text, tracker_t *tracker)
{
    if (!text)
        return 0;
    size_t size = strlen (text);
    if (size < 2 || text [0] != '{' || text [size - 1] != '}')
        return TL_EINVAL;
    const char *s = text + 1, *end = text + size - 1;
    char item [TRK_CHOICE_MAX_LEN * 2 + 1];
    while (s < end) {
        size_t len = 0;
        if (*s == '"') {
            for (s++; s < end && *s != '"'; s++) {
                if (*s == '\\' && s + 1 < end)
                    s++;
                if (len + 1 >= sizeof item)
                    return TL_EINVAL;
                item [len++] = *s;
            }
            s++;                    //  the closing quote
        }
        else
            for (; s < end && *s != ','; s++) {
                if (len + 1 >= sizeof item)
                    return TL_EINVAL;
                item [len++] = *s;
            }
        item [len] = 0;
        if (tracker->nchoices == TRK_MAX_CHOICES)
            return TL_EINVAL;
        tracker->choices [tracker->nchoices] = strdup (item);
        if (!tracker->choices [tracker->nchoices])
            return TL_ENOMEM;
        tracker->nchoices++;
        if (s < end && *s == ',')
            s++;
    }
    return 0;
}

int
tracker_from_row (const PGresult *res, int row, int col, tracker_t *tracker)
{
    memset (tracker, 0, sizeof *tracker);
    snprintf (tracker->id, sizeof tracker->id, "%s", tl_db_value (res, row, col));
    snprintf (tracker->owner, sizeof tracker->owner, "%s", tl_db_value (res, row, col + 1));
    snprintf (tracker->name, sizeof tracker->name, "%s", tl_db_value (res, row, col + 2));
    if (trk_type_parse (tl_db_value (res, row, col + 3), &tracker->type) != 0)
        return TL_EINVAL;
    snprintf (tracker->unit, sizeof tracker->unit, "%s", tl_db_value (res, row, col + 4));
    int rc = s_parse_array (tl_db_value (res, row, col + 5), tracker);
    if (rc)
        tracker_clear (tracker);
    return rc;
}

static int
s_load_db (tl_db_t *db, const char *owner, const char *id, bool lock, tracker_t *tracker)
{
    memset (tracker, 0, sizeof *tracker);
    if (!tl_valid_uuid (id) || !owner)
        return TL_ENOTFOUND;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    const char *values [] = { id, owner };
    PGresult *res = tl_db_exec (db, lock ? "tracker_get_lock" : "tracker_get", 2, values, &rc);
    if (!res)
        return rc;
    rc = PQntuples (res) == 1 ? tracker_from_row (res, 0, 0, tracker) : TL_ENOTFOUND;
    PQclear (res);
    return rc;
}

int
tracker_load_db (tl_db_t *db, const char *owner, const char *id, tracker_t *tracker)
{
    return s_load_db (db, owner, id, false, tracker);
}

int
tracker_lock_db (tl_db_t *db, const char *owner, const char *id, tracker_t *tracker)
{
    return s_load_db (db, owner, id, true, tracker);
}

int
tracker_log_count (tl_db_t *db, const char *id, long *count)
{
    *count = 0;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    PGresult *res = tl_db_exec (db, "tracker_log_count", 1, &id, &rc);
    if (!res)
        return rc;
    *count = tl_db_value (res, 0, 0) ? atol (tl_db_value (res, 0, 0)) : 0;
    PQclear (res);
    return 0;
}

bool
tracker_load (tl_call_t *call, const char *id, bool lock, tracker_t *tracker)
{
    memset (tracker, 0, sizeof *tracker);
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return false;
    }
    tl_db_t *db = tl_call_db (call);
    int rc = s_prepare (db);
    PGresult *res = NULL;
    if (rc == 0) {
        const char *values [] = { id, tl_call_user (call) };
        res = tl_db_exec (db, lock ? "tracker_get_lock" : "tracker_get", 2, values, &rc);
    }
    if (!res) {
        tl_call_db_error (call, rc);
        return false;
    }
    if (PQntuples (res) != 1) {
        PQclear (res);
        tl_call_error (call, 404, "not_found", "no such tracker");
        return false;
    }
    rc = tracker_from_row (res, 0, 0, tracker);
    PQclear (res);
    if (rc) {
        tl_call_error (call, 503, "corrupt", "the tracker could not be read");
        return false;
    }
    return true;
}

void
tracker_value_params (const trk_value_t *value, char num_text [40],
                      const char **num, const char **flag, const char **choice)
{
    *num = *flag = *choice = NULL;
    switch (value->type) {
        case TRK_BOOLEAN:
            *flag = value->boolean ? "t" : "f";
            break;
        case TRK_MULTIPLE_CHOICE:
            *choice = value->choice;
            break;
        case TRK_MOOD:
            snprintf (num_text, 40, "%d", value->mood);
            *num = num_text;
            break;
        default:
            snprintf (num_text, 40, "%.17g", value->number);
            *num = num_text;
    }
}

int
tracker_value_from_row (const PGresult *res, int row, int col, trk_type_t type,
                        trk_value_t *value)
{
    memset (value, 0, sizeof *value);
    value->type = type;
    const char *num = tl_db_value (res, row, col);
    const char *flag = tl_db_value (res, row, col + 1);
    const char *choice = tl_db_value (res, row, col + 2);
    switch (type) {
        case TRK_BOOLEAN:
            if (!flag)
                return TL_EINVAL;
            value->boolean = flag [0] == 't';
            return 0;
        case TRK_MULTIPLE_CHOICE:
            if (!choice || strlen (choice) > TRK_CHOICE_MAX_LEN)
                return TL_EINVAL;
            strcpy (value->choice, choice);
            return 0;
        case TRK_MOOD: {
            double mood = num ? tl_db_parse_double (num) : 0;
            if (!(mood >= 1 && mood <= 5) || mood != floor (mood))
                return TL_EINVAL;
            value->mood = (int) mood;
            return 0;
        }
        default:
            if (!num)
                return TL_EINVAL;
            value->number = tl_db_parse_double (num);
            double min = type == TRK_DURATION ? 0 : -TRK_VALUE_MAX_ABS;
            double max = type == TRK_DURATION ? TRK_DURATION_MAX_SEC : TRK_VALUE_MAX_ABS;
            return value->number >= min && value->number <= max ? 0 : TL_EINVAL;
    }
}

bool
tracker_user_from_mp (const msgpack_object *obj, tracker_user_t *user)
{
    memset (user, 0, sizeof *user);
    if (!tl_mp_copy (tl_mp_get (obj, "id"), user->id, sizeof user->id)
    ||  !tl_mp_copy (tl_mp_get (obj, "username"), user->username, sizeof user->username)
    ||  !tl_mp_copy (tl_mp_get (obj, "email"), user->email, sizeof user->email))
        return false;
    const msgpack_object *verified = tl_mp_get (obj, "verified");
    user->verified = verified && verified->type == MSGPACK_OBJECT_BOOLEAN
                  && verified->via.boolean;
    const msgpack_object *settings = tl_mp_get (obj, "settings");
    if (!tl_mp_copy (tl_mp_get (settings, "timezone"), user->zone, sizeof user->zone)
    ||  !tl_valid_timezone (user->zone))
        strcpy (user->zone, "UTC");
    if (!tl_mp_copy (tl_mp_get (settings, "reminder_channel"), user->channel,
                     sizeof user->channel))
        strcpy (user->channel, "email");
    if (!tl_mp_copy (tl_mp_get (settings, "webhook_url"), user->webhook_url,
                     sizeof user->webhook_url))
        user->webhook_url [0] = 0;
    if (!tl_mp_copy (tl_mp_get (settings, "reminder_time"), user->reminder_time,
                     sizeof user->reminder_time)
    ||  !tl_valid_local_time (user->reminder_time))
        strcpy (user->reminder_time, "20:00");
    if (!tl_mp_copy (tl_mp_get (settings, "report_format"), user->report_format,
                     sizeof user->report_format)
    ||  (strcmp (user->report_format, "pdf") != 0 && strcmp (user->report_format, "html") != 0))
        strcpy (user->report_format, "html");
    return true;
}

bool
tracker_user_get (tl_call_t *call, tracker_user_t *user)
{
    memset (user, 0, sizeof *user);
    strcpy (user->zone, "UTC");
    strcpy (user->channel, "email");
    strcpy (user->reminder_time, "20:00");
    strcpy (user->report_format, "html");
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "id", tl_call_user (call) }, 1);
    tl_msg_t *reply = NULL;
    int rc = tl_call_call (call, "auth", "user.get", body.data, body.size, &reply);
    msgpack_sbuffer_destroy (&body);
    int status = rc == 0 && reply ? tl_msg_status (reply) : 0;
    if (status == 200) {
        tracker_user_t found;
        if (tracker_user_from_mp (tl_msg_body (reply), &found))
            *user = found;
    }
    tl_msg_destroy (&reply);
    if (status != 200 && status != 404) {
        tl_call_error (call, rc == TL_ETIMEDOUT ? 504 : 503, "unavailable",
                       "the accounts service did not answer");
        return false;
    }
    return true;
}

const char *
tracker_caller_zone (tl_call_t *call)
{
    const char *zone = tl_call_user_zone (call);
    return strcmp (zone, "UTC") == 0 || tl_valid_timezone (zone) ? zone : "UTC";
}

//  Runs slot statement `name` for slot `slot` of `user`. Returns 1 when it
//  answered true (taken, given back), 0 when false, or a database code.
static int
s_slot (tl_db_t *db, const char *name, const char *user, int slot)
{
    char text [16];
    snprintf (text, sizeof text, "%d", slot);
    const char *values [] = { user, text };
    int rc = s_prepare (db);
    PGresult *res = rc ? NULL : tl_db_exec (db, name, 2, values, &rc);
    if (res) {
        const char *answer = tl_db_value (res, 0, 0);
        rc = answer && answer [0] == 't' ? 1 : 0;
    }
    PQclear (res);
    return rc;
}

void
tracker_expensive (tl_call_t *call, tl_handler_fn *fn)
{
    const char *user = tl_call_user (call);
    if (!user) {
        fn (call);
        return;
    }
    tl_db_t *db = tl_call_db (call);
    int slot = 1, rc = 0;
    for (; slot <= TRK_MAX_EXPENSIVE_PER_USER; slot++) {
        rc = s_slot (db, "tracker_slot_take", user, slot);
        if (rc != 0)
            break;
    }
    if (rc < 0) {
        tl_call_db_error (call, rc);
        return;
    }
    if (rc == 0) {
        tl_call_error_retry (call, 429, TRK_EXPENSIVE_RETRY_AFTER_SEC, "too_many_requests",
                             "at most %d stats, charts, reports or CSV files at once: "
                             "retry shortly", TRK_MAX_EXPENSIVE_PER_USER);
        return;
    }
    fn (call);
    //  A lost connection took the lock with it; anything else leaks it
    if (s_slot (db, "tracker_slot_give", user, slot) != 1)
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "slot %d of %s not given back: %s",
                slot, user, tl_db_errmsg (db));
}
