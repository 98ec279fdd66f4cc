//  analytics_monitor.c — API monitoring's registration, and what its files
//  share: the guarded, verified reads of a remote dashboard's FMD export,
//  the endpoints its rules name, and the owner check (analytics_monitor.h).
#include "analytics_monitor.h"
#include "an_jwt.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_fetch.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  TALLY_WEBHOOK_ALLOW_PRIVATE, read once at registration
static int s_fetch_flags;

static const tl_db_statement_t s_statements [] = {
    { "mon_owner", "SELECT owner, builtin FROM dashboards WHERE id = $1", 1 },
    //  $1 dashboard, $2 names, $3 monitor flags (text arrays)
    { "mon_endpoints_store",
      "INSERT INTO endpoints (dashboard_id, name, monitor) "
      "SELECT $1, r.name, r.monitor FROM unnest ($2::text [], $3::boolean []) AS r (name, monitor) "
      "ON CONFLICT (dashboard_id, name) DO UPDATE SET monitor = excluded.monitor", 3 },
};

int
analytics_monitor_prepare (tl_db_t *db)
{
    int rc = tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
    rc = rc ? rc : analytics_dashboards_prepare (db);
    rc = rc ? rc : analytics_stats_prepare (db);
    rc = rc ? rc : analytics_monitor_fetch_prepare (db);
    rc = rc ? rc : analytics_monitor_self_prepare (db);
    return rc;
}

int
analytics_monitor_register (tl_service_t *svc)
{
    s_fetch_flags = tl_env_flag ("TALLY_WEBHOOK_ALLOW_PRIVATE", false) ? TL_FETCH_ALLOW_PRIVATE : 0;
    int rc = analytics_dashboards_register (svc);
    rc = rc ? rc : analytics_stats_register (svc);
    rc = rc ? rc : analytics_monitor_fetch_register (svc);
    rc = rc ? rc : analytics_monitor_self_register (svc);
    return rc;
}

//  --------------------------------------------------------------------------

int
analytics_remote_get (const char *base, const char *route, char **body_p, size_t *size,
                      char *errbuf, size_t errsize)
{
    *body_p = NULL;
    *size = 0;
    char url [AN_URL_MAX + 128];
    size_t base_len = strlen (base);
    bool slash = base_len && base [base_len - 1] == '/';
    if ((size_t) snprintf (url, sizeof url, "%s%s%s", base, slash ? "" : "/", route)
        >= sizeof url) {
        tl_error_format (errbuf, errsize, "the URL is too long");
        return TL_EINVAL;
    }
    tl_fetch_t *fetch = tl_fetch_new (url);
    if (!fetch) {
        tl_error_format (errbuf, errsize, "the URL is not an http(s) URL");
        return TL_EINVAL;
    }
    tl_fetch_set_flags (fetch, s_fetch_flags);
    tl_fetch_set_timeout_ms (fetch, AN_FETCH_TIMEOUT_MS);
    tl_fetch_set_max_size (fetch, AN_EXPORT_MAX_BYTES);
    int rc = tl_fetch_get (fetch, errbuf, errsize);
    if (rc == 0 && tl_fetch_status (fetch) != 200) {
        tl_error_format (errbuf, errsize, "%s answered HTTP %ld", route, tl_fetch_status (fetch));
        rc = TL_EPROTO;
    }
    if (rc == 0) {
        const char *body = tl_fetch_body (fetch, size);
        *body_p = (char *) malloc (*size + 1);
        if (*body_p) {
            memcpy (*body_p, body, *size);
            (*body_p) [*size] = 0;
        }
        else
            rc = TL_ENOMEM;
    }
    tl_fetch_destroy (&fetch);
    return rc;
}

int
analytics_remote_signed (const char *base, const char *route, const char *token,
                         char **data_p, char *errbuf, size_t errsize)
{
    *data_p = NULL;
    char *body;
    size_t size;
    int rc = analytics_remote_get (base, route, &body, &size, errbuf, errsize);
    if (rc)
        return rc;
    rc = an_jwt_verify_data (body, size, token, strlen (token), data_p);
    free (body);
    if (rc == TL_EPROTO)
        tl_error_format (errbuf, errsize, "%s: bad signature", route);
    else
    if (rc)
        tl_error_format (errbuf, errsize, "%s: not a signed FMD export", route);
    return rc;
}

//  Appends `text` to a PostgreSQL array literal in `buf` as a quoted
//  element. Returns false when memory ran out.

static bool
s_array_add (char **buf, size_t *len, size_t *room, const char *text)
{
    size_t need = *len + strlen (text) * 2 + 4;
    if (need > *room) {
        size_t room_new = *room ? *room * 2 : 1024;
        while (room_new < need)
            room_new *= 2;
        char *grown = (char *) realloc (*buf, room_new);
        if (!grown)
            return false;
        *buf = grown;
        *room = room_new;
    }
    char *out = *buf + *len;
    if (*len > 1)
        *out++ = ',';
    *out++ = '"';
    for (const char *c = text; *c; c++) {
        if (*c == '"' || *c == '\\')
            *out++ = '\\';
        *out++ = *c;
    }
    *out++ = '"';
    *out = 0;
    *len = (size_t) (out - *buf);
    return true;
}

int
analytics_endpoints_store (tl_db_t *db, const char *id, an_fmd_list_t *rules)
{
    size_t count = an_fmd_list_size (rules);
    if (count == 0)
        return 0;
    char *names = strdup ("{"), *flags = (char *) malloc (count * 2 + 3);
    size_t len = 1, room = 2;
    int rc = names && flags ? 0 : TL_ENOMEM;
    size_t flags_len = 1;
    if (flags)
        flags [0] = '{';
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const an_fmd_rule_t *rule = an_fmd_list_rule (rules, i);
        if (!s_array_add (&names, &len, &room, rule->endpoint))
            rc = TL_ENOMEM;
        if (i)
            flags [flags_len++] = ',';
        flags [flags_len++] = rule->monitor ? 't' : 'f';
    }
    if (rc == 0 && len + 2 > room) {
        char *grown = (char *) realloc (names, len + 2);
        rc = grown ? 0 : TL_ENOMEM;
        names = grown ? grown : names;
    }
    if (rc == 0) {
        strcpy (names + len, "}");
        flags [flags_len++] = '}';
        flags [flags_len] = 0;
        const char *values [] = { id, names, flags };
        long changed = tl_db_exec_count (db, "mon_endpoints_store", 3, values);
        rc = changed < 0 ? (int) changed : 0;
    }
    free (names);
    free (flags);
    return rc;
}

bool
analytics_dashboard_owned (tl_call_t *call, const char *id)
{
    if (!id || !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such dashboard");
        return false;
    }
    PGresult *res = tl_call_exec_one (call, "mon_owner", 1, &id, "dashboard");
    if (!res)
        return false;
    const char *user = tl_call_user (call);
    bool builtin = strcmp (tl_db_value (res, 0, 1), "t") == 0;
    bool mine = builtin ? analytics_staff (call)
                        : user && strcmp (tl_db_value (res, 0, 0), user) == 0;
    PQclear (res);
    if (builtin && !mine)
        tl_call_error (call, 404, "not_found", "no such dashboard");
    else
    if (!mine)
        tl_call_error (call, 403, "forbidden", "this dashboard is another user's");
    return mine;
}

bool
analytics_staff (tl_call_t *call)
{
    return tl_call_has_role (call, "admin") || tl_call_has_role (call, "super_admin");
}
