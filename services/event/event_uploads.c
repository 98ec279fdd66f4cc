//  event_uploads.c — what the event shows of the upload service: its
//  background (POST/DELETE /events/{id}/background), its speakers' photos
//  and its sponsors' logos. The upload service counts each reference
//  (upload.ref / upload.unref, kinds event_background, speaker_photo,
//  sponsor_logo, ref_id the event's or the part's id), so that an upload
//  cannot be deleted, nor collected as unused, while the event shows it.
//
//  A reference is made or dropped on the caller's behalf (only their own
//  upload can be shown: 404 otherwise) inside the transaction that writes
//  the row, under the event's row lock, after every other check, just
//  before the write: so that two writers of the same event take turns and
//  a refused write (400, 404, 422) changes nothing in either service. What
//  is deleted (a part, the event) lets go of its references through a
//  durable job enqueued in the deleting transaction (event.unref_uploads),
//  committed with the deletion or not at all, retried until the upload
//  service has it.
#include "event_service.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "background_set", "UPDATE events SET background_url = $2, updated_at = now () "
                        "WHERE id = $1", 2 },
    //  What a deleted event shows, by kind of reference ($1 the event)
    { "uploads_shown",
      "SELECT 'event_background', id::text FROM events WHERE id = $1 "
      "AND background_url IS NOT NULL "
      "UNION ALL SELECT 'speaker_photo', id::text FROM speakers WHERE event_id = $1 "
      "AND photo_upload_id IS NOT NULL "
      "UNION ALL SELECT 'sponsor_logo', id::text FROM sponsors WHERE event_id = $1 "
      "AND logo_upload_id IS NOT NULL ORDER BY 1, 2", 1 },
};

int
event_uploads_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  Holding and letting go

void
event_upload_release (tl_call_t *call, const char *kind, const char *ref_id)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "kind", kind, "ref_id", ref_id }, 2);
    tl_msg_t *reply = NULL;
    int rc = tl_call_call (call, "upload", "upload.unref", body.data, body.size, &reply);
    msgpack_sbuffer_destroy (&body);
    if (rc || !reply || tl_msg_status (reply) != 204)
        tl_log (TL_LOG_WARN, tl_call_trace (call), "upload.unref %s %s: %s (the upload "
                "stays held until it is referred to again)", kind, ref_id,
                rc ? tl_strerror (rc) : "refused");
    tl_msg_destroy (&reply);
}

//  Enqueues event.unref_uploads {kind, ref_ids} for `count` ids (at most
//  EV_UNREF_BATCH), under `key`. Returns 0 or a code.
static int
s_forget (tl_db_t *db, const char *kind, const char *const *ids, int count, const char *key)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    tl_mp_pack_kv (&pk, "kind", kind);
    tl_mp_pack_str (&pk, "ref_ids");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (int i = 0; i < count; i++)
        tl_mp_pack_str (&pk, ids [i]);
    int rc = tl_jobs_enqueue (db, "event.unref_uploads", body.data, body.size, key, 0, 0);
    msgpack_sbuffer_destroy (&body);
    return rc < 0 ? rc : 0;
}

int
event_upload_forget (tl_db_t *db, const char *kind, const char *ref_id)
{
    char key [TL_MAX_ID_LEN + 64];
    snprintf (key, sizeof key, "event.unref_uploads:%s:%s", kind, ref_id);
    return s_forget (db, kind, &ref_id, 1, key);
}

int
event_uploads_forget_event (tl_db_t *db, const char *event_id)
{
    int err = 0;
    PGresult *res = tl_db_exec (db, "uploads_shown", 1, &event_id, &err);
    if (!res)
        return err;
    //  One job per kind and batch, in the rows' order (grouped by kind)
    int rows = PQntuples (res), rc = 0;
    const char *ids [EV_UNREF_BATCH];
    for (int row = 0, first = 0; rc == 0 && row < rows; row++) {
        const char *kind = tl_db_value (res, row, 0);
        ids [row - first] = tl_db_value (res, row, 1);
        bool last = row + 1 == rows || strcmp (kind, tl_db_value (res, row + 1, 0)) != 0
                 || row + 1 - first == EV_UNREF_BATCH;
        if (!last)
            continue;
        char key [TL_MAX_ID_LEN + 96];
        snprintf (key, sizeof key, "event.unref_uploads:%s:event:%s:%d", kind, event_id, first);
        rc = s_forget (db, kind, ids, row + 1 - first, key);
        first = row + 1;
    }
    PQclear (res);
    return rc;
}

//  event.unref_uploads {kind, ref_ids}: what was deleted shows nothing any
//  more (ids are never reused: no check needed). A 4xx is final; no answer
//  is retried on the job's back-off.
static int
s_unref_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    const msgpack_object *kind = tl_mp_get (payload, "kind");
    const msgpack_object *ids = tl_mp_get (payload, "ref_ids");
    if (!kind || kind->type != MSGPACK_OBJECT_STR || !ids || ids->type != MSGPACK_OBJECT_ARRAY) {
        tl_job_ctx_error (job, "no kind or ref_ids in the payload");
        return TL_EINVAL;
    }
    //  The payload is upload.unref's body
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *payload);
    int rc = tl_service_job_send (job, "upload", "upload.unref", body.data, body.size,
                                  EV_UPLOAD_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

//  ---------------------------------------------------------------------
//  POST/DELETE /events/{id}/background

typedef struct {
    tl_call_t *call;
    const char *upload_id, *data_url;   //  both NULL: clear
    int decision;
    bool answered;                      //  the upload service's refusal
    char url [TL_MAX_URL_LEN + 1];
    char id [37];
} s_background_t;

static int
s_background_tx (tl_db_t *db, void *arg)
{
    s_background_t *set = (s_background_t *) arg;
    event_ref_t event;
    int rc = event_can_db (db, set->call, tl_call_param (set->call, "id"), EV_SVC_EVENT,
                           EV_OP_UPDATE, true, &event);
    set->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    snprintf (set->id, sizeof set->id, "%s", event.id);
    bool clear = !set->upload_id && !set->data_url;
    set->url [0] = 0;
    if (!tl_upload_hold (set->call, "event_background", event.id, set->upload_id,
                            set->data_url, "background", clear ? NULL : set->url)) {
        set->answered = true;
        return 0;
    }
    const char *values [] = { event.id, clear ? NULL : set->url };
    long count = tl_db_exec_count (db, "background_set", 2, values);
    return count < 0 ? (int) count : 0;
}

//  Runs the change in a transaction and answers the event's {id,
//  background_url}.
static void
s_background (tl_call_t *call, const char *upload_id, const char *data_url)
{
    s_background_t set = { call, upload_id, data_url, 0, false, "", "" };
    int err = tl_db_tx (tl_call_db (call), s_background_tx, &set);
    if (set.answered && !err)
        return;
    if (err)
        tl_call_db_error (call, err);
    else
    if (set.decision)
        event_refuse (call, set.decision);
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 2);
        tl_mp_pack_kv (pk, "id", set.id);
        tl_mp_pack_kv (pk, "background_url", *set.url ? set.url : NULL);
    }
}

//  POST /events/{id}/background {upload_id} | {data_url}
static void
s_set (tl_call_t *call)
{
    char *upload_id, *data_url;
    if (tl_upload_source (call, &upload_id, &data_url))
        s_background (call, upload_id, data_url);
    free (upload_id);
    free (data_url);
}

//  DELETE /events/{id}/background
static void
s_clear (tl_call_t *call)
{
    s_background (call, NULL, NULL);
}

int
event_uploads_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "events.background_set", s_set);
    rc = rc ? rc : tl_service_on (svc, "events.background_clear", s_clear);
    return rc ? rc : tl_service_job (svc, "event.unref_uploads", s_unref_job);
}
