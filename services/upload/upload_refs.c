//  upload_refs.c — who shows an upload: the references other services make
//  through the mesh (upload.ref: this event's background is that upload,
//  or this data URL; upload.unref), what goes when a user is deleted
//  (auth.user.deleted), and the daily job that removes uploads nobody
//  refers to once they are a day old, then the bytes nobody has.
#include "upload_service.h"
#include "up_data_url.h"
#include "up_image.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The kinds of reference, as the refs table's CHECK lists them.
static const char *s_kinds [] = { "event_background", "avatar", "speaker_photo",
                                  "sponsor_logo" };

static const tl_db_statement_t s_statements [] = {
    //  The caller's upload, for a reference ($1 id, $2 owner)
    { "ref_upload", "SELECT id FROM uploads WHERE id = $1 AND owner = $2", 2 },
    //  $1 kind, $2 ref_id, $3 upload id
    { "ref_set",
      "INSERT INTO refs (kind, ref_id, upload_id) VALUES ($1, $2, $3) "
      "ON CONFLICT (kind, ref_id) DO UPDATE SET upload_id = excluded.upload_id, "
      "created_at = now ()", 3 },
    { "ref_drop", "DELETE FROM refs WHERE kind = $1 AND ref_id = $2", 2 },
    //  auth.user.deleted: the avatar goes, unshown uploads go, shown ones
    //  stay without an owner
    { "gone_avatar", "DELETE FROM refs WHERE kind = 'avatar' AND ref_id = $1", 1 },
    { "gone_uploads",
      "DELETE FROM uploads u WHERE owner = $1 "
      "AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.upload_id = u.id) RETURNING sha256", 1 },
    { "gone_owner", "UPDATE uploads SET owner = NULL WHERE owner = $1", 1 },
    //  The daily job: $1 the run's time (ms)
    { "gc_uploads",
      "DELETE FROM uploads u WHERE created_at < to_timestamp ($1::float8 / 1000) - "
      "  interval '" "24" " hours' "
      "AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.upload_id = u.id)", 1 },
    { "gc_blobs",
      "SELECT sha256 FROM blobs b "
      "WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = b.sha256) LIMIT $1::int", 1 },
    { "gc_log",
      "DELETE FROM upload_log WHERE at < to_timestamp ($1::float8 / 1000) - interval '1 hour'",
      1 },
};

int
upload_refs_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

static bool
s_kind_ok (const char *kind)
{
    for (size_t i = 0; kind && i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        if (strcmp (kind, s_kinds [i]) == 0)
            return true;
    return false;
}

//  Reads {kind, ref_id} of the body. Answers 400 and returns false when
//  they are not there or not valid.
static bool
s_ref_of (tl_call_t *call, char **kind, char **ref_id)
{
    if (!tl_call_text (call, NULL, "kind", NULL, 32, kind, NULL)
    ||  !tl_call_text (call, NULL, "ref_id", NULL, 64, ref_id, NULL))
        return false;
    if (!s_kind_ok (*kind)) {
        tl_call_field_error (call, 400, "invalid", "kind", "is not a kind of reference");
        return false;
    }
    if (!*ref_id || !**ref_id) {
        tl_call_field_error (call, 400, "invalid", "ref_id", "is required");
        return false;
    }
    return true;
}

//  The upload a reference is to, into `id`: the owner's `upload_id`, or a
//  new upload of `data_url` (one of them is NULL). Returns true, or
//  answers (400, 404, 413, 415, 422, 429, 503) and returns false.
static bool
s_target (tl_call_t *call, const char *owner, const char *upload_id, const char *data_url,
          char id [37])
{
    if (upload_id) {
        if (!tl_valid_uuid (upload_id)) {
            tl_call_field_error (call, 404, "not_found", "upload_id", "no such upload");
            return false;
        }
        const char *values [] = { upload_id, owner };
        PGresult *res = tl_call_exec_one (call, "ref_upload", 2, values, "upload");
        if (!res)
            return false;
        snprintf (id, 37, "%s", tl_db_value (res, 0, 0));
        PQclear (res);
        return true;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    char mime [UP_MAX_MIME_LEN + 1];
    int rc = up_data_url_decode (data_url, strlen (data_url), UP_MAX_BYTES, mime, sizeof mime,
                                 &data, &size);
    if (rc == TL_ETOOBIG)
        tl_call_error (call, 413, "too_large", "an image is at most %ld bytes",
                       (long) UP_MAX_BYTES);
    else
    if (rc)
        tl_call_field_error (call, 400, "invalid", "data_url",
                             "must be a data: URL with strict base64");
    bool made = rc == 0 && upload_ingest (call, data, size, mime, id);
    free (data);
    return made;
}

//  upload.ref {kind, ref_id, upload_id | data_url, variant?}: on the
//  caller's behalf (the user of the request another service serves), makes
//  (kind, ref_id) show the caller's upload `upload_id` (404 when it is not
//  theirs), or a new upload of `data_url`; answers 200 {upload_id, url},
//  url being the variant's when one is named.
static void
s_ref (tl_call_t *call)
{
    char *kind = NULL, *ref_id = NULL, *upload_id = NULL, *data_url = NULL, *variant = NULL;
    if (!s_ref_of (call, &kind, &ref_id)
    ||  !tl_call_text (call, NULL, "upload_id", NULL, 64, &upload_id, NULL)
    ||  !tl_call_text (call, NULL, "data_url", NULL, (size_t) UP_MAX_BYTES * 2, &data_url, NULL)
    ||  !tl_call_text (call, NULL, "variant", NULL, 32, &variant, NULL))
        goto done;
    if (variant && !up_image_variant_find (variant)) {
        tl_call_field_error (call, 400, "invalid", "variant", "is not a variant");
        goto done;
    }
    if (!upload_id == !data_url) {
        tl_call_field_error (call, 400, "invalid", upload_id ? "data_url" : "upload_id",
                             "send upload_id or data_url, one of them");
        goto done;
    }
    const char *owner = tl_call_user (call);
    if (!owner) {
        tl_call_error (call, 403, "forbidden", "a reference is made for a user");
        goto done;
    }
    char id [37] = "";
    if (!s_target (call, owner, upload_id, data_url, id))
        goto done;
    const char *values [] = { kind, ref_id, id };
    int err = 0;
    long count = tl_db_exec_count (tl_call_db (call), "ref_set", 3, values);
    if (count < 0) {
        err = (int) count;
        tl_call_db_error (call, err);
        goto done;
    }
    char url [TL_MAX_URL_LEN + 128];
    upload_url (id, variant, url, sizeof url);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "upload_id", id);
    tl_mp_pack_kv (pk, "url", url);
done:
    free (kind);
    free (ref_id);
    free (upload_id);
    free (data_url);
    free (variant);
}

//  Drops the references (kind, ids [i]) in one transaction.
typedef struct {
    const char *kind;
    const msgpack_object *ids;
} s_unref_t;

static int
s_unref_tx (tl_db_t *db, void *arg)
{
    s_unref_t *unref = (s_unref_t *) arg;
    for (uint32_t i = 0; i < unref->ids->via.array.size; i++) {
        char ref_id [65];
        tl_mp_copy (&unref->ids->via.array.ptr [i], ref_id, sizeof ref_id);
        const char *values [] = { unref->kind, ref_id };
        long count = tl_db_exec_count (db, "ref_drop", 2, values);
        if (count < 0)
            return (int) count;
    }
    return 0;
}

//  upload.unref {kind, ref_id} or {kind, ref_ids: [...]} (at most
//  UP_MAX_UNREF_IDS: what a deleted event's speakers showed): those
//  references show nothing any more. 204 whether or not they showed
//  something.
static void
s_unref (tl_call_t *call)
{
    char *kind = NULL, *ref_id = NULL;
    const msgpack_object *ids = tl_mp_get (tl_call_body (call), "ref_ids");
    if (ids) {
        bool ok = ids->type == MSGPACK_OBJECT_ARRAY && ids->via.array.size > 0
               && ids->via.array.size <= UP_MAX_UNREF_IDS;
        for (uint32_t i = 0; ok && i < ids->via.array.size; i++) {
            char id [65];
            ok = tl_mp_copy (&ids->via.array.ptr [i], id, sizeof id) && *id;
        }
        if (!ok) {
            tl_call_field_error (call, 400, "invalid", "ref_ids",
                                 "must be 1 to 1000 ids of at most 64 characters");
            return;
        }
        if (!tl_call_text (call, NULL, "kind", NULL, 32, &kind, NULL))
            return;
        if (!s_kind_ok (kind))
            tl_call_field_error (call, 400, "invalid", "kind", "is not a kind of reference");
        else {
            s_unref_t unref = { kind, ids };
            int err = tl_db_tx (tl_call_db (call), s_unref_tx, &unref);
            if (err)
                tl_call_db_error (call, err);
            else
                tl_call_reply_empty (call, 204);
        }
        free (kind);
        return;
    }
    if (s_ref_of (call, &kind, &ref_id)) {
        const char *values [] = { kind, ref_id };
        long count = tl_db_exec_count (tl_call_db (call), "ref_drop", 2, values);
        if (count < 0)
            tl_call_db_error (call, (int) count);
        else
            tl_call_reply_empty (call, 204);
    }
    free (kind);
    free (ref_id);
}

//  The event auth.user.deleted (subject: the user id): their avatar
//  reference and their uploads nothing shows go (with their bytes when no
//  other upload has them); uploads an event still shows stay, without an
//  owner.
static int
s_user_deleted (tl_event_t *event)
{
    tl_db_t *db = tl_event_db (event);
    const char *user = tl_event_subject (event);
    long count = tl_db_exec_count (db, "gone_avatar", 1, &user);
    if (count < 0)
        return (int) count;
    int err = 0;
    PGresult *gone = tl_db_exec (db, "gone_uploads", 1, &user, &err);
    if (!gone)
        return err;
    int rc = 0;
    for (int row = 0; rc >= 0 && row < PQntuples (gone); row++)
        rc = upload_blob_release (db, tl_db_value (gone, row, 0));
    long kept = rc < 0 ? rc : tl_db_exec_count (db, "gone_owner", 1, &user);
    if (kept < 0) {
        PQclear (gone);
        return (int) kept;
    }
    tl_log (TL_LOG_INFO, NULL, "forgot user %s: %d upload(s) removed, %ld kept without them",
            user, PQntuples (gone), kept);
    PQclear (gone);
    return 0;
}

//  upload.gc (daily): uploads older than a day that nothing shows go, then
//  blobs no upload has (rows and objects), then the quota log's old rows.
//  The day is counted from the run's time, not the wall clock.
static int
s_gc (tl_job_ctx_t *job)
{
    tl_db_t *db = tl_job_ctx_db (job);
    char now [32];
    snprintf (now, sizeof now, "%lld", (long long) tl_job_ctx_clock_ms (job));
    const char *at = now;
    long uploads = tl_db_exec_count (db, "gc_uploads", 1, &at);
    if (uploads < 0)
        return (int) uploads;
    char batch [16];
    snprintf (batch, sizeof batch, "%d", UP_GC_BATCH);
    const char *limit = batch;
    int err = 0;
    PGresult *blobs = tl_db_exec (db, "gc_blobs", 1, &limit, &err);
    if (!blobs)
        return err;
    int rc = 0, removed = 0;
    for (int row = 0; rc >= 0 && row < PQntuples (blobs); row++) {
        rc = upload_blob_release (db, tl_db_value (blobs, row, 0));
        removed += rc > 0 ? rc : 0;
    }
    PQclear (blobs);
    if (rc < 0) {
        tl_job_ctx_error (job, "removing a blob: %s", tl_strerror (rc));
        return rc;
    }
    long log = tl_db_exec_count (db, "gc_log", 1, &at);
    if (log < 0)
        return (int) log;
    tl_log (TL_LOG_INFO, NULL, "upload.gc: %ld upload(s) and %d blob(s) removed", uploads,
            removed);
    return 0;
}

int
upload_refs_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "upload.ref", s_ref);
    rc = rc ? rc : tl_service_on (svc, "upload.unref", s_unref);
    rc = rc ? rc : tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    rc = rc ? rc : tl_service_job (svc, "upload.gc", s_gc);
    rc = rc ? rc : tl_service_schedule (svc, "upload.gc", "upload.gc", "daily");
    return rc;
}
