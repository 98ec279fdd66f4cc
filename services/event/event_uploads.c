//  event_background.c — POST/DELETE /events/{id}/background: the event's
//  background image, {upload_id} (one of the caller's uploads) or
//  {data_url} (uploaded on the spot), for roles with update on `event`.
//  The upload service keeps the reference (upload.ref / upload.unref,
//  kind event_background), so that the upload cannot be deleted while the
//  event shows it; this service stores the URL of its `background` variant.
//  A deleted event's reference goes by a durable job (event.unref_background,
//  enqueued just before the deletion, only for an event with a background),
//  so that the upload is no longer held once nothing shows it.
#include "event_service.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "background_set", "UPDATE events SET background_url = $2, updated_at = now () "
                        "WHERE id = $1", 2 },
    { "background_of", "SELECT background_url FROM events WHERE id = $1", 1 },
};

int
event_background_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Packs {kind, ref_id} of the event's background reference, and `extra`
//  more pairs the caller packs after.
static void
s_ref_head (msgpack_packer *pk, const char *event_id, int extra)
{
    msgpack_pack_map (pk, 2 + (uint32_t) extra);
    tl_mp_pack_kv (pk, "kind", "event_background");
    tl_mp_pack_kv (pk, "ref_id", event_id);
}

//  Stores `url` (NULL: none) as the event's background and answers the
//  event as events.get does.
static void
s_store (tl_call_t *call, const char *event_id, const char *url)
{
    const char *values [] = { event_id, url };
    long count = tl_db_exec_count (tl_call_db (call), "background_set", 2, values);
    if (count < 0) {
        tl_call_db_error (call, (int) count);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "id", event_id);
    tl_mp_pack_kv (pk, "background_url", url);
}

//  POST /events/{id}/background {upload_id} | {data_url}
static void
s_set (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (!event_can (call, id, EV_SVC_EVENT, EV_OP_UPDATE, false, &event))
        return;
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
    s_ref_head (&pk, event.id, 2);
    tl_mp_pack_kv (&pk, upload_id ? "upload_id" : "data_url", upload_id ? upload_id : data_url);
    tl_mp_pack_kv (&pk, "variant", "background");
    tl_msg_t *reply = tl_call_ask (call, "upload", "upload.ref", body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    if (reply) {
        char url [TL_MAX_URL_LEN + 1] = "";
        if (tl_mp_copy (tl_mp_get (tl_msg_body (reply), "url"), url, sizeof url))
            s_store (call, event.id, url);
        else
            tl_call_error (call, 503, "unavailable", "the upload service sent no URL");
        tl_msg_destroy (&reply);
    }
done:
    free (upload_id);
    free (data_url);
}

//  DELETE /events/{id}/background
static void
s_clear (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (!event_can (call, id, EV_SVC_EVENT, EV_OP_UPDATE, false, &event))
        return;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    s_ref_head (&pk, event.id, 0);
    tl_msg_t *reply = tl_call_ask (call, "upload", "upload.unref", body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    if (reply)
        s_store (call, event.id, NULL);
    tl_msg_destroy (&reply);
}

//  ---------------------------------------------------------------------
//  A deleted event's reference

int
event_background_forget (tl_db_t *db, const char *event_id)
{
    int err = 0;
    PGresult *res = tl_db_exec (db, "background_of", 1, &event_id, &err);
    if (!res)
        return err;
    bool shown = PQntuples (res) == 1 && tl_db_value (res, 0, 0);
    PQclear (res);
    if (!shown)
        return 0;                       //  nothing held: no job
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_kv (&pk, "event_id", event_id);
    char key [TL_MAX_ID_LEN + 32];
    snprintf (key, sizeof key, "event.unref_background:%s", event_id);
    int rc = tl_jobs_enqueue (db, "event.unref_background", body.data, body.size, key,
                              (int64_t) tl_msg_now_ms () + EV_UNREF_DELAY_MS, 0);
    msgpack_sbuffer_destroy (&body);
    return rc < 0 ? rc : 0;
}

//  event.unref_background {event_id}: once the event is gone, the upload
//  service forgets its background reference (a 4xx is final; no answer is
//  retried on the job's back-off). An event still there (its deletion
//  failed) keeps it.
static int
s_unref_job (tl_job_ctx_t *job)
{
    char event_id [TL_MAX_ID_LEN + 1];
    if (!tl_mp_copy (tl_mp_get (tl_job_ctx_payload (job), "event_id"), event_id,
                     sizeof event_id)) {
        tl_job_ctx_error (job, "no event_id in the payload");
        return TL_EINVAL;
    }
    const char *id = event_id;
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "background_of", 1, &id, &err);
    if (!res)
        return err;
    bool there = PQntuples (res) == 1;
    PQclear (res);
    if (there)
        return 0;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    s_ref_head (&pk, event_id, 0);
    int rc = tl_service_job_send (job, "upload", "upload.unref", body.data, body.size,
                                  EV_UPLOAD_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

int
event_background_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "events.background_set", s_set);
    rc = rc ? rc : tl_service_on (svc, "events.background_clear", s_clear);
    return rc ? rc : tl_service_job (svc, "event.unref_background", s_unref_job);
}
