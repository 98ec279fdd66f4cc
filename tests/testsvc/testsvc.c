//  testsvc.c — tally-testsvc: a service that exists to exercise the
//  platform in tests and benchmarks: echo (params, body, caller), sleep (for
//  deadlines, queues and drains), relay (a service calling a service through
//  the mesh), items (PostgreSQL writes, ownership, idempotency keys), raw
//  uploads and binary replies.
//
//  With TALLY_TEST_ROLE=auth it plays the auth service's session.check
//  instead, accepting tokens "test-token-<user>" (users named admin* get
//  the admin role) — a stand-in for tests until the accounts service exists.
#include "tl_client.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"
#include "tl_service.h"

#include <czmq.h>
#include <libpq-fe.h>
#include <sodium.h>

extern const tl_embed_t testsvc_migrations [];

static const char *s_instance = "";

static void
s_pack_instance (msgpack_packer *pk)
{
    tl_mp_pack_kv (pk, "instance", s_instance);
}

static void
s_echo_get (tl_call_t *call)
{
    tl_msg_t *request = tl_call_request (call);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 3);
    s_pack_instance (pk);
    tl_mp_pack_kv (pk, "user", tl_call_user (call));
    tl_mp_pack_str (pk, "params");
    size_t count = tl_msg_param_count (request);
    msgpack_pack_map (pk, count);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        tl_msg_param_at (request, i, &name, &value);
        tl_mp_pack_kv (pk, name, value);
    }
}

static void
s_echo_post (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "body");
    if (body)
        msgpack_pack_object (pk, *body);
    else
        msgpack_pack_nil (pk);
}

//  Sleeps `ms` (query parameter, at most 20 s) then answers.
static void
s_sleep (tl_call_t *call)
{
    const char *ms = tl_call_param (call, "ms");
    long wait = ms ? atol (ms) : 0;
    if (wait < 0 || wait > 20000) {
        tl_call_field_error (call, 400, "invalid", "ms", "must be 0..20000");
        return;
    }
    zclock_sleep ((int) wait);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "slept");
    msgpack_pack_long (pk, wait);
}

//  Calls this service's whoami through the mesh, as any service calls
//  another: the nested call runs as this call's caller.
static void
s_relay (tl_call_t *call)
{
    tl_msg_t *reply = NULL;
    int rc = tl_call_call (call, "testsvc", "whoami", NULL, 0, &reply);
    if (rc) {
        tl_call_error (call, 504, "deadline", "the relayed call failed: %s", tl_strerror (rc));
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 3);
    s_pack_instance (pk);
    tl_mp_pack_str (pk, "status");
    msgpack_pack_int (pk, tl_msg_status (reply));
    tl_mp_pack_str (pk, "relayed");
    const msgpack_object *body = tl_msg_body (reply);
    if (body)
        msgpack_pack_object (pk, *body);
    else
        msgpack_pack_nil (pk);
    tl_msg_destroy (&reply);
}

static void
s_whoami (tl_call_t *call)
{
    const char **roles = NULL;
    size_t count = tl_msg_roles (tl_call_request (call), &roles);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "user_id", tl_call_user (call));
    tl_mp_pack_str (pk, "roles");
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++)
        tl_mp_pack_str (pk, roles [i]);
}

//  --- Items: PostgreSQL through the runtime --------------------------------

static int
s_prepare (tl_db_t *db, void *arg)
{
    int rc = 0;
    rc |= tl_db_prepare (db, "items_insert",
        "INSERT INTO items (owner, name) VALUES ($1, $2) "
        "RETURNING id, name, to_char (created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", 2);
    rc |= tl_db_prepare (db, "items_get",
        "SELECT id, name, to_char (created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM items WHERE id = $1 AND owner = $2", 2);
    rc |= tl_db_prepare (db, "items_list",
        "SELECT id, name, to_char (created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM items WHERE owner = $1 "
        "ORDER BY created_at DESC, id LIMIT $2", 2);
    rc |= tl_db_prepare (db, "items_delete",
        "DELETE FROM items WHERE id = $1 AND owner = $2", 2);
    return rc ? TL_EDB : 0;
}

static void
s_pack_item (msgpack_packer *pk, PGresult *res, int row)
{
    msgpack_pack_map (pk, 3);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, 0));
    tl_mp_pack_kv (pk, "name", tl_db_value (res, row, 1));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, 2));
}

static bool
s_is_uuid (const char *text)
{
    if (!text || strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text [i] != '-' : !isxdigit ((unsigned char) text [i]))
            return false;
    }
    return true;
}

static void
s_items_create (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    char *name = tl_mp_strdup (tl_mp_get (body, "name"), 400);
    if (!name || !*name) {
        free (name);
        tl_call_field_error (call, 400, "invalid", "name", "is required");
        return;
    }
    int64_t delay = 0;
    if (tl_mp_int (tl_mp_get (body, "delay_ms"), &delay) == 0 && delay > 0 && delay <= 10000)
        zclock_sleep ((int) delay);
    const char *values [] = { tl_call_user (call), name };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_insert", 2, values, &err);
    free (name);
    if (!res) {
        tl_call_error (call, 503, "database", "could not store the item");
        return;
    }
    char location [128];
    snprintf (location, sizeof location, "/api/v1/test/items/%s", tl_db_value (res, 0, 0));
    tl_call_header (call, "Location", location);
    s_pack_item (tl_call_reply (call, 201), res, 0);
    PQclear (res);
}

static void
s_items_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!s_is_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such item");
        return;
    }
    const char *values [] = { id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_get", 2, values, &err);
    if (!res)
        tl_call_error (call, 503, "database", "could not read the item");
    else
    if (PQntuples (res) == 0)
        tl_call_error (call, 404, "not_found", "no such item");
    else
        s_pack_item (tl_call_reply (call, 200), res, 0);
    PQclear (res);
}

static void
s_items_list (tl_call_t *call)
{
    const char *limit_text = tl_call_param (call, "limit");
    long limit = limit_text ? atol (limit_text) : TL_LIST_LIMIT_DEFAULT;
    if (limit < 1 || limit > TL_LIST_LIMIT_MAX) {
        tl_call_field_error (call, 400, "invalid", "limit", "must be 1..500");
        return;
    }
    char limit_str [16];
    snprintf (limit_str, sizeof limit_str, "%ld", limit);
    const char *values [] = { tl_call_user (call), limit_str };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_list", 2, values, &err);
    if (!res) {
        tl_call_error (call, 503, "database", "could not list items");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) PQntuples (res));
    for (int i = 0; i < PQntuples (res); i++)
        s_pack_item (pk, res, i);
    tl_mp_pack_kv (pk, "next_cursor", NULL);
    PQclear (res);
}

static void
s_items_delete (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!s_is_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such item");
        return;
    }
    const char *values [] = { id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "items_delete", 2, values, &err);
    if (!res)
        tl_call_error (call, 503, "database", "could not delete the item");
    else
    if (strcmp (PQcmdTuples (res), "0") == 0)
        tl_call_error (call, 404, "not_found", "no such item");
    else
        tl_call_reply_empty (call, 204);
    PQclear (res);
}

//  --- Raw bytes -----------------------------------------------------------

static void
s_upload (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    if (!body || body->type != MSGPACK_OBJECT_BIN) {
        tl_call_error (call, 400, "invalid", "send some bytes");
        return;
    }
    unsigned char hash [32];
    crypto_hash_sha256 (hash, (const unsigned char *) body->via.bin.ptr, body->via.bin.size);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    msgpack_packer *pk = tl_call_reply (call, 201);
    msgpack_pack_map (pk, 3);
    tl_mp_pack_str (pk, "bytes");
    msgpack_pack_uint32 (pk, body->via.bin.size);
    tl_mp_pack_kv (pk, "sha256", hex);
    tl_mp_pack_kv (pk, "content_type", tl_call_param (call, "content_type"));
}

static void
s_binary (tl_call_t *call)
{
    static const unsigned char png [] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    tl_call_header (call, "Content-Type", "image/png");
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, sizeof png);
    msgpack_pack_bin_body (pk, png, sizeof png);
}

//  --- The stand-in auth service --------------------------------------------

static void
s_session_check (tl_call_t *call)
{
    char *token = tl_mp_strdup (tl_mp_get (tl_call_body (call), "token"), 512);
    if (!token || strncmp (token, "test-token-", 11) != 0 || !token [11]) {
        free (token);
        tl_call_error (call, 401, "unauthenticated", "unknown token");
        return;
    }
    const char *user = token + 11;
    bool admin = strncmp (user, "admin", 5) == 0;
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "user_id", user);
    tl_mp_pack_str (pk, "roles");
    msgpack_pack_array (pk, admin ? 1 : 0);
    if (admin)
        tl_mp_pack_str (pk, "admin");
    free (token);
}

int
main (void)
{
    const char *role = getenv ("TALLY_TEST_ROLE");
    bool auth = role && streq (role, "auth");
    s_instance = getenv ("TALLY_INSTANCE") ? getenv ("TALLY_INSTANCE") : "testsvc";
    tl_service_t *svc = tl_service_new (auth ? "auth" : "testsvc",
                                        auth ? NULL : testsvc_migrations);
    if (!svc)
        return 1;
    if (auth)
        tl_service_on (svc, "session.check", s_session_check);
    else {
        tl_service_set_thread_init (svc, s_prepare, NULL);
        tl_service_on (svc, "echo.get", s_echo_get);
        tl_service_on (svc, "echo.post", s_echo_post);
        tl_service_on (svc, "sleep", s_sleep);
        tl_service_on (svc, "sleep.long", s_sleep);
        tl_service_on (svc, "relay", s_relay);
        tl_service_on (svc, "whoami", s_whoami);
        tl_service_on (svc, "items.create", s_items_create);
        tl_service_on (svc, "items.get", s_items_get);
        tl_service_on (svc, "items.list", s_items_list);
        tl_service_on (svc, "items.delete", s_items_delete);
        tl_service_on (svc, "upload", s_upload);
        tl_service_on (svc, "binary", s_binary);
    }
    int rc = tl_service_run (svc);
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
