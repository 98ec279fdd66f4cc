//  auth_avatar.c — POST/DELETE /me/avatar: the caller's avatar, {upload_id}
//  (one of their uploads) or {data_url} (uploaded on the spot). The upload
//  service keeps the reference (upload.ref / upload.unref, kind avatar),
//  so that the upload cannot be deleted while it is the avatar; this
//  service stores the URL of its `avatar` variant in the user object.
#include "auth_service.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_upload.h"

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
    char *upload_id, *data_url;
    char url [TL_MAX_URL_LEN + 1];
    if (tl_upload_source (call, &upload_id, &data_url)
    &&  tl_upload_hold (call, "avatar", tl_call_user (call), upload_id, data_url, "avatar", url))
        s_store (call, url);
    free (upload_id);
    free (data_url);
}

//  DELETE /me/avatar
static void
s_clear (tl_call_t *call)
{
    if (tl_upload_hold (call, "avatar", tl_call_user (call), NULL, NULL, NULL, NULL))
        s_store (call, NULL);
}

int
auth_avatar_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "me.avatar_set", s_set);
    return rc ? rc : tl_service_on (svc, "me.avatar_clear", s_clear);
}
