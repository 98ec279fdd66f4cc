//  analytics_dashboards.c — the remote dashboards a user monitors: list,
//  add (checked against the remote export first: its details answer and
//  its monitor rules verify with the token, or nothing is stored), read
//  with its endpoints, rename and enable or disable endpoints, delete.
#include "analytics_monitor.h"
#include "an_jwt.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_COLUMNS \
    "d.id, d.name, d.url, d.state, monitor_rfc3339 (d.last_fetch_at), d.error, d.version, " \
    "monitor_rfc3339 (d.first_request), monitor_rfc3339 (d.created_at), " \
    "to_char (d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
enum { S_COL_CURSOR = 9 };

static const tl_db_statement_t s_statements [] = {
    //  $1 owner, $2/$3 the cursor, $4 the LIMIT (oldest first), $5 staff
    //  (who also see the built-in dashboard)
    { "dash_page",
      "SELECT " S_COLUMNS " FROM dashboards d WHERE (d.owner = $1 OR (d.builtin AND $5)) "
      "AND ($2::timestamptz IS NULL OR (d.created_at, d.id) > ($2::timestamptz, $3::uuid)) "
      "ORDER BY d.created_at, d.id LIMIT $4::int", 5 },
    { "dash_one", "SELECT " S_COLUMNS " FROM dashboards d WHERE d.id = $1", 1 },
    { "dash_endpoints",
      "SELECT name, enabled, calls FROM endpoints WHERE dashboard_id = $1 ORDER BY name", 1 },
    { "dash_owner_lock",
      "SELECT pg_advisory_xact_lock (hashtextextended ('analytics.dashboards:' || $1, 0))", 1 },
    { "dash_count", "SELECT count (*) FROM dashboards WHERE owner = $1", 1 },
    //  $1 owner, $2 name, $3 url, $4 token, $5 version, $6 first request
    //  (unix s or NULL), $7 where the back-fill starts (unix s)
    { "dash_insert",
      "INSERT INTO dashboards (owner, name, url, token, version, first_request, fetched_to) "
      "VALUES ($1, $2, $3, $4, $5, to_timestamp ($6::float8), to_timestamp ($7::float8)) "
      "RETURNING id", 7 },
    { "dash_rename", "UPDATE dashboards SET name = $2 WHERE id = $1", 2 },
    { "dash_endpoint_enable",
      "UPDATE endpoints SET enabled = $3 WHERE dashboard_id = $1 AND name = $2", 3 },
    { "dash_delete_hourly", "DELETE FROM calls_hourly WHERE dashboard_id = $1", 1 },
    { "dash_delete_daily",
      "WITH hist AS (DELETE FROM calls_daily_hist WHERE dashboard_id = $1), "
      "endpoint_ips AS (DELETE FROM calls_daily_endpoint_ip WHERE dashboard_id = $1) "
      "DELETE FROM calls_daily_ip WHERE dashboard_id = $1", 1 },
    { "dash_delete_calls", "DELETE FROM calls WHERE dashboard_id = $1", 1 },
    { "dash_delete", "DELETE FROM dashboards WHERE id = $1", 1 },
    { "dash_delete_owner_calls",
      "DELETE FROM calls WHERE dashboard_id IN (SELECT id FROM dashboards WHERE owner = $1)", 1 },
    { "dash_delete_owner_daily",
      "WITH hist AS (DELETE FROM calls_daily_hist WHERE dashboard_id IN "
      "  (SELECT id FROM dashboards WHERE owner = $1)), "
      "endpoint_ips AS (DELETE FROM calls_daily_endpoint_ip WHERE dashboard_id IN "
      "  (SELECT id FROM dashboards WHERE owner = $1)) "
      "DELETE FROM calls_daily_ip WHERE dashboard_id IN "
      "(SELECT id FROM dashboards WHERE owner = $1)", 1 },
    { "dash_delete_owner_hourly",
      "DELETE FROM calls_hourly WHERE dashboard_id IN "
      "(SELECT id FROM dashboards WHERE owner = $1)", 1 },
    { "dash_delete_owner", "DELETE FROM dashboards WHERE owner = $1", 1 },
};

int
analytics_dashboards_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Packs the row's summary fields (`extra` more entries follow).
static void
s_pack_summary (msgpack_packer *pk, const PGresult *res, int row, int extra)
{
    static const char *keys [] = {
        "id", "name", "url", "state", "last_fetch_at", "error", "version",
        "first_request", "created_at"
    };
    msgpack_pack_map (pk, 9 + (uint32_t) extra);
    for (int col = 0; col < 9; col++)
        tl_mp_pack_kv (pk, keys [col], tl_db_value (res, row, col));
}

//  Answers `status` with dashboard `id` and its endpoints.
static void
s_reply_dashboard (tl_call_t *call, const char *id, int status)
{
    PGresult *res = tl_call_exec_one (call, "dash_one", 1, &id, "dashboard");
    if (!res)
        return;
    int err = 0;
    PGresult *endpoints = tl_db_exec (tl_call_db (call), "dash_endpoints", 1, &id, &err);
    if (!endpoints) {
        PQclear (res);
        tl_call_db_error (call, err);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, status);
    s_pack_summary (pk, res, 0, 1);
    tl_mp_pack_str (pk, "endpoints");
    msgpack_pack_array (pk, (uint32_t) PQntuples (endpoints));
    for (int row = 0; row < PQntuples (endpoints); row++) {
        msgpack_pack_map (pk, 3);
        tl_mp_pack_kv (pk, "name", tl_db_value (endpoints, row, 0));
        tl_mp_pack_str (pk, "enabled");
        if (strcmp (tl_db_value (endpoints, row, 1), "t") == 0)
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
        tl_mp_pack_str (pk, "calls");
        msgpack_pack_int64 (pk, strtoll (tl_db_value (endpoints, row, 2), NULL, 10));
    }
    PQclear (endpoints);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  GET /dashboards

static void
s_list (tl_call_t *call)
{
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *values [] = { tl_call_user (call), page.after_time, page.after_id, page.fetch,
                              analytics_staff (call) ? "t" : "f" };
    PGresult *res = tl_call_exec_page (call, "dash_page", 5, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++)
        s_pack_summary (pk, res, row, 0);
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                      tl_db_value (res, rows - 1, 0));
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  POST /dashboards

typedef struct {
    const char *owner;
    char *name, *url, *token;
    an_fmd_details_t details;
    an_fmd_list_t *rules;
    char id [40];
    bool full;                  //  the owner has AN_MAX_DASHBOARDS_PER_USER
} s_add_t;

//  Stores the checked dashboard, its endpoints and its first fetch.
static int
s_add_tx (tl_db_t *db, void *arg)
{
    s_add_t *add = (s_add_t *) arg;
    int err = 0;
    PGresult *res = tl_db_exec (db, "dash_owner_lock", 1, &add->owner, &err);
    PQclear (res);
    res = res ? tl_db_exec (db, "dash_count", 1, &add->owner, &err) : NULL;
    if (!res)
        return err;
    add->full = atol (tl_db_value (res, 0, 0)) >= AN_MAX_DASHBOARDS_PER_USER;
    PQclear (res);
    if (add->full)
        return 0;
    //  The back-fill starts just before the first request (FMD's lower
    //  bound is exclusive), or at now for a dashboard without calls yet
    int64_t first = add->details.first_request;
    char first_text [32] = "", start_text [32];
    int64_t start_s = first >= 0 ? first - 1 : time (NULL);
    if (first >= 0)
        snprintf (first_text, sizeof first_text, "%lld", (long long) first);
    snprintf (start_text, sizeof start_text, "%lld", (long long) start_s);
    const char *values [] = { add->owner, add->name, add->url, add->token,
                              add->details.version, first >= 0 ? first_text : NULL,
                              start_text };
    res = tl_db_exec (db, "dash_insert", 7, values, &err);
    if (!res)
        return err;
    snprintf (add->id, sizeof add->id, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    int rc = analytics_endpoints_store (db, add->id, add->rules);
    if (rc == 0) {
        int queued = analytics_monitor_fetch_start (db, add->id, start_s * 1000);
        rc = queued < 0 ? queued : 0;
    }
    return rc;
}

//  Reads and checks the fields of a new dashboard. Answers 400.
static bool
s_add_read (tl_call_t *call, s_add_t *add)
{
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    if (!tl_call_text (call, NULL, "name", NULL, AN_NAME_MAX * 4, &add->name, NULL)
    ||  !tl_call_text (call, NULL, "url", NULL, AN_URL_MAX, &add->url, NULL)
    ||  !tl_call_text (call, NULL, "token", NULL, AN_TOKEN_MAX, &add->token, NULL))
        return false;
    long chars = add->name ? tl_valid_utf8_chars (add->name, strlen (add->name)) : -1;
    if (chars < 1 || chars > AN_NAME_MAX) {
        tl_call_field_error (call, 400, "invalid", "name", "must be 1 to 200 characters");
        return false;
    }
    if (!add->url || !tl_valid_http_url (add->url) || strchr (add->url, '?')) {
        tl_call_field_error (call, 400, "invalid", "url",
                             "must be the http(s) URL of a dashboard, without a query");
        return false;
    }
    if (!add->token || !*add->token) {
        tl_call_field_error (call, 400, "invalid", "token", "is required");
        return false;
    }
    return true;
}

//  Asks the remote dashboard: its details, then its rules verified with
//  the token. Answers 400 unreachable or bad_token.
static bool
s_add_check (tl_call_t *call, s_add_t *add)
{
    char why [256];
    char *body = NULL, *data = NULL;
    size_t size;
    int rc = analytics_remote_get (add->url, "get_json_details", &body, &size, why, sizeof why);
    if (rc == 0 && an_fmd_details_parse (body, size, &add->details) != 0) {
        tl_error_format (why, sizeof why, "get_json_details did not answer an FMD details object");
        rc = TL_EINVAL;
    }
    free (body);
    if (rc) {
        tl_call_field_error (call, 400, "unreachable", "url", why);
        return false;
    }
    rc = analytics_remote_signed (add->url, "get_json_monitor_rules", add->token, &data,
                                  why, sizeof why);
    int err = 0;
    if (rc == 0) {
        add->rules = an_fmd_rules_new (data, strlen (data), &err, why, sizeof why);
        rc = add->rules ? 0 : err;
    }
    free (data);
    if (rc == TL_EPROTO)
        tl_call_field_error (call, 400, "bad_token", "token",
                             "the dashboard's monitor rules do not verify with this token");
    else
    if (rc)
        tl_call_field_error (call, 400, "unreachable", "url", why);
    return rc == 0;
}

static void
s_create (tl_call_t *call)
{
    s_add_t add = { .owner = tl_call_user (call) };
    if (s_add_read (call, &add) && s_add_check (call, &add)) {
        int rc = tl_db_tx (tl_call_db (call), s_add_tx, &add);
        if (rc)
            tl_call_db_error (call, rc);
        else
        if (add.full)
            tl_call_error (call, 409, "too_many", "a user monitors at most %d dashboards",
                           AN_MAX_DASHBOARDS_PER_USER);
        else
            s_reply_dashboard (call, add.id, 201);
    }
    an_fmd_list_destroy (&add.rules);
    free (add.name);
    free (add.url);
    free (add.token);
}

//  ---------------------------------------------------------------------
//  GET, PATCH, DELETE /dashboards/{id}

static void
s_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (analytics_dashboard_owned (call, id))
        s_reply_dashboard (call, id, 200);
}

typedef struct {
    const char *id;
    char *name;
    const msgpack_object *endpoints;    //  [{name, enabled}]
    char unknown [AN_ENDPOINT_MAX + 1]; //  an endpoint the dashboard has not
} s_update_t;

static int
s_update_tx (tl_db_t *db, void *arg)
{
    s_update_t *update = (s_update_t *) arg;
    if (update->name) {
        const char *values [] = { update->id, update->name };
        long count = tl_db_exec_count (db, "dash_rename", 2, values);
        if (count < 0)
            return (int) count;
    }
    for (uint32_t i = 0; update->endpoints && i < update->endpoints->via.array.size; i++) {
        const msgpack_object *item = &update->endpoints->via.array.ptr [i];
        char name [AN_ENDPOINT_MAX + 1];
        tl_mp_copy (tl_mp_get (item, "name"), name, sizeof name);
        const char *values [] = { update->id, name,
                                  tl_mp_get (item, "enabled")->via.boolean ? "t" : "f" };
        long count = tl_db_exec_count (db, "dash_endpoint_enable", 3, values);
        if (count < 0)
            return (int) count;
        if (count == 0) {
            memcpy (update->unknown, name, sizeof name);
            return TL_ENOTFOUND;
        }
    }
    return 0;
}

//  Checks PATCH's endpoints: an array of at most AN_MAX_ENDPOINTS
//  {name: string, enabled: bool}. Answers 400.
static bool
s_endpoints_ok (tl_call_t *call, const msgpack_object *endpoints)
{
    bool ok = endpoints->type == MSGPACK_OBJECT_ARRAY
           && endpoints->via.array.size <= AN_MAX_ENDPOINTS;
    for (uint32_t i = 0; ok && i < endpoints->via.array.size; i++) {
        const msgpack_object *item = &endpoints->via.array.ptr [i];
        const msgpack_object *enabled = tl_mp_get (item, "enabled");
        char name [AN_ENDPOINT_MAX + 1];
        ok = tl_mp_copy (tl_mp_get (item, "name"), name, sizeof name)
          && enabled && enabled->type == MSGPACK_OBJECT_BOOLEAN;
    }
    if (!ok)
        tl_call_field_error (call, 400, "invalid", "endpoints",
                             "must be a list of {name, enabled (true or false)}");
    return ok;
}

static void
s_update (tl_call_t *call)
{
    s_update_t update = { .id = tl_call_param (call, "id") };
    if (!analytics_dashboard_owned (call, update.id))
        return;
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return;
    if (!tl_call_text (call, NULL, "name", NULL, AN_NAME_MAX * 4, &update.name, NULL))
        return;
    long chars = update.name ? tl_valid_utf8_chars (update.name, strlen (update.name)) : 1;
    update.endpoints = tl_mp_get (map, "endpoints");
    if (update.endpoints && update.endpoints->type == MSGPACK_OBJECT_NIL)
        update.endpoints = NULL;
    if (chars < 1 || chars > AN_NAME_MAX)
        tl_call_field_error (call, 400, "invalid", "name", "must be 1 to 200 characters");
    else
    if (!update.endpoints || s_endpoints_ok (call, update.endpoints)) {
        int rc = tl_db_tx (tl_call_db (call), s_update_tx, &update);
        if (rc == TL_ENOTFOUND)
            tl_call_field_error (call, 400, "invalid", "endpoints",
                                 "names an endpoint this dashboard does not have");
        else
        if (rc)
            tl_call_db_error (call, rc);
        else
            s_reply_dashboard (call, update.id, 200);
    }
    free (update.name);
}

static int
s_delete_tx (tl_db_t *db, void *arg)
{
    const char *id = (const char *) arg;
    const char *names [] = { "dash_delete_hourly", "dash_delete_daily", "dash_delete_calls",
                             "dash_delete" };
    for (size_t i = 0; i < 4; i++) {
        long count = tl_db_exec_count (db, names [i], 1, &id);
        if (count < 0)
            return (int) count;
    }
    return 0;
}

static void
s_delete (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!analytics_dashboard_owned (call, id))
        return;
    if (strcasecmp (id, ANALYTICS_BUILTIN_ID) == 0) {
        tl_call_error (call, 403, "builtin", "Tally's own dashboard cannot be deleted");
        return;
    }
    int rc = tl_db_tx (tl_call_db (call), s_delete_tx, (void *) id);
    if (rc)
        tl_call_db_error (call, rc);
    else
        tl_call_reply_empty (call, 204);
}

//  ---------------------------------------------------------------------
//  The event auth.user.deleted (subject: the user id): their dashboards
//  and calls go, and their stores (analytics_stores_forget_owner), in the
//  transaction that records the event handled.

static int
s_user_deleted (tl_event_t *event)
{
    tl_db_t *db = tl_event_db (event);
    const char *user = tl_event_subject (event);
    const char *names [] = { "dash_delete_owner_hourly", "dash_delete_owner_daily",
                             "dash_delete_owner_calls", "dash_delete_owner" };
    for (size_t i = 0; i < 4; i++) {
        long count = tl_db_exec_count (db, names [i], 1, &user);
        if (count < 0)
            return (int) count;
    }
    return analytics_stores_forget_owner (db, user);
}

int
analytics_dashboards_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "dashboards.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "dashboards.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "dashboards.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "dashboards.update", s_update);
    rc = rc ? rc : tl_service_on (svc, "dashboards.delete", s_delete);
    rc = rc ? rc : tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    return rc;
}
