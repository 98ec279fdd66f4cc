//  auth_avatar.c — POST/DELETE /me/avatar: the caller's avatar, {upload_id}
//  (one of their uploads) or {data_url} (uploaded on the spot). The upload
//  service keeps the reference (upload.ref / upload.unref, kind avatar),
//  so that the upload cannot be deleted while it is the avatar; this
//  service stores the URL of its `avatar` variant in the user object.
#include "auth_service.h"
#include "tl_error.h"
#include "tl_mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "avatar_set", "UPDATE users SET avatar_url = $2, updated_at = now () WHERE id = $1 "
                    "RETURNING " AUTH_USER_COLUMNS, 2 },
};

int
auth_avatar_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Stores `url` (NULL: none) as the caller's avatar and answers their user
//  object.
static void
s_store (tl_call_t *call, const char *url)
{
    const char *values [] = { tl_call_user (call), url };
    PGresult *res = tl_call_exec_one (call, "avatar_set", 2, values, "user");
    if (res)
        auth_pack_user (tl_call_reply (call, 200), res, 0, AUTH_SHOW_ALL);
    PQclear (res);
}

//  POST /me/avatar {upload_id} | {data_url}
static void
s_set (tl_call_t *call)
{
    char *upload_id = NULL, *data_url = NULL;
    if (!tl_call_text (call, NULL, "upload_id", NULL, 64, &upload_id, NULL)
    ||  !tl_call_text (call, NULL, "data_url", NULL, TL_HTTP_MAX_JSON_BODY, &data_url, NULL))
        goto done;
    if (!upload_id == !data_url) {
        tl_call_field_error (call, 400, "invalid", upload_id ? "data_url" : "upload_id",
                             "send upload_id or data_url, one of them");
        goto done;
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    tl_mp_pack_kv (&pk, "kind", "avatar");
    tl_mp_pack_kv (&pk, "ref_id", tl_call_user (call));
    tl_mp_pack_kv (&pk, upload_id ? "upload_id" : "data_url", upload_id ? upload_id : data_url);
    tl_mp_pack_kv (&pk, "variant", "avatar");
    tl_msg_t *reply = tl_call_ask (call, "upload", "upload.ref", body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    if (reply) {
        char url [TL_MAX_URL_LEN + 1] = "";
        if (tl_mp_copy (tl_mp_get (tl_msg_body (reply), "url"), url, sizeof url))
            s_store (call, url);
        else
            tl_call_error (call, 503, "unavailable", "the upload service sent no URL");
        tl_msg_destroy (&reply);
    }
done:
    free (upload_id);
    free (data_url);
}

//  DELETE /me/avatar
static void
s_clear (tl_call_t *call)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    tl_mp_pack_kv (&pk, "kind", "avatar");
    tl_mp_pack_kv (&pk, "ref_id", tl_call_user (call));
    tl_msg_t *reply = tl_call_ask (call, "upload", "upload.unref", body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    if (reply)
        s_store (call, NULL);
    tl_msg_destroy (&reply);
}

int
auth_avatar_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "me.avatar_set", s_set);
    return rc ? rc : tl_service_on (svc, "me.avatar_clear", s_clear);
}
