//  auth_common.c — the user object, body fields, password rules, error
//  answers and job payloads that the auth service's handlers share.
#include "auth_service.h"
#include "auth_throttle.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

auth_config_t auth_config;

bool
auth_col_true (const PGresult *res, int row, int col)
{
    const char *value = tl_db_value (res, row, col);
    return value && value [0] == 't';
}

static void
s_pack_bool (msgpack_packer *pk, const char *key, bool value)
{
    tl_mp_pack_str (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

void
auth_pack_user (msgpack_packer *pk, const PGresult *res, int row, int show)
{
    bool email = show & AUTH_SHOW_EMAIL, webhook = show & AUTH_SHOW_WEBHOOK;
    msgpack_pack_map (pk, email ? 9 : 8);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, AUTH_COL_ID));
    tl_mp_pack_kv (pk, "username", tl_db_value (res, row, AUTH_COL_USERNAME));
    if (email)
        tl_mp_pack_kv (pk, "email", tl_db_value (res, row, AUTH_COL_EMAIL));
    s_pack_bool (pk, "verified", auth_col_true (res, row, AUTH_COL_VERIFIED));
    s_pack_bool (pk, "is_admin", auth_col_true (res, row, AUTH_COL_IS_ADMIN));
    s_pack_bool (pk, "is_super_admin", auth_col_true (res, row, AUTH_COL_IS_SUPER_ADMIN));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, AUTH_COL_CREATED_AT));
    tl_mp_pack_kv (pk, "avatar_url", tl_db_value (res, row, AUTH_COL_AVATAR_URL));
    tl_mp_pack_str (pk, "settings");
    msgpack_pack_map (pk, webhook ? 6 : 5);
    tl_mp_pack_kv (pk, "timezone", tl_db_value (res, row, AUTH_COL_TIMEZONE));
    s_pack_bool (pk, "play_sounds", auth_col_true (res, row, AUTH_COL_PLAY_SOUNDS));
    tl_mp_pack_kv (pk, "report_format", tl_db_value (res, row, AUTH_COL_REPORT_FORMAT));
    tl_mp_pack_kv (pk, "reminder_channel", tl_db_value (res, row, AUTH_COL_REMINDER_CHANNEL));
    if (webhook)
        tl_mp_pack_kv (pk, "webhook_url", tl_db_value (res, row, AUTH_COL_WEBHOOK_URL));
    tl_mp_pack_kv (pk, "reminder_time", tl_db_value (res, row, AUTH_COL_REMINDER_TIME));
}

char *
auth_body_text (tl_call_t *call, const char *field, size_t max)
{
    return tl_mp_strdup (tl_mp_get (tl_call_body (call), field), max);
}

bool
auth_password_acceptable (tl_call_t *call, const char *field, const char *password)
{
    long chars = password ? tl_valid_utf8_chars (password, strlen (password)) : -1;
    if (chars >= AUTH_PASSWORD_MIN && chars <= AUTH_PASSWORD_MAX)
        return true;
    tl_call_field_error (call, 400, "weak_password", field,
                         "must be 12 to 128 characters");
    return false;
}

int
auth_enqueue (tl_db_t *db, const char *kind, const char *const *pairs, int count,
              const char *unique_key, int max_attempts)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tl_mp_pack_pairs (&sbuf, pairs, (size_t) count);
    int rc = tl_jobs_enqueue (db, kind, sbuf.data, sbuf.size, unique_key, 0, max_attempts);
    msgpack_sbuffer_destroy (&sbuf);
    return rc;
}

void
auth_client_address (tl_call_t *call, char out [AUTH_ADDRESS_LEN])
{
    const char *ip = tl_call_param (call, "client_ip");
    struct in6_addr v6;
    snprintf (out, AUTH_ADDRESS_LEN, "%s", ip && *ip ? ip : "-");
    if (!ip || inet_pton (AF_INET6, ip, &v6) != 1)
        return;                         //  IPv4 (or nothing) as it is
    char text [INET6_ADDRSTRLEN];
    if (IN6_IS_ADDR_V4MAPPED (&v6)) {
        inet_ntop (AF_INET, &v6.s6_addr [12], text, sizeof text);
        snprintf (out, AUTH_ADDRESS_LEN, "%s", text);
        return;
    }
    memset (&v6.s6_addr [8], 0, 8);     //  the /64
    inet_ntop (AF_INET6, &v6, text, sizeof text);
    snprintf (out, AUTH_ADDRESS_LEN, "%s/64", text);
}

void
auth_refuse (tl_call_t *call, int seconds)
{
    tl_call_error_retry (call, 429, seconds, "too_many_attempts",
                         "too many attempts: try again in %d seconds", seconds);
}

bool
auth_throttle_admit (tl_call_t *call, const char *const *keys, const int *limits, int nkeys)
{
    for (int i = 0; i < nkeys; i++) {
        int wait = auth_throttle_hit (tl_call_db (call), keys [i], limits [i],
                                      AUTH_THROTTLE_WINDOW_SEC);
        if (wait < 0)
            tl_call_db_error (call, wait);
        else
        if (wait > 0)
            auth_refuse (call, wait);
        if (wait != 0)
            return false;
    }
    return true;
}

bool
auth_admit_costly (tl_call_t *call, const char *what, const char *email)
{
    char address [AUTH_ADDRESS_LEN], prefix [32];
    char by_address [AUTH_THROTTLE_MAX_KEY + 1], by_email [AUTH_THROTTLE_MAX_KEY + 1];
    auth_client_address (call, address);
    snprintf (prefix, sizeof prefix, "%s-ip:", what);
    auth_throttle_key (by_address, prefix, address);
    snprintf (prefix, sizeof prefix, "%s-email:", what);
    auth_throttle_key (by_email, prefix, email);
    const char *keys [] = { by_address, by_email };
    const int limits [] = { AUTH_REQUESTS_PER_ADDRESS, AUTH_REQUESTS_PER_EMAIL };
    return auth_throttle_admit (call, keys, limits, 2);
}
