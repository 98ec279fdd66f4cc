//  upload_files.c — uploads: POST /uploads (multipart/form-data, a raw
//  image/* body, or JSON {data_url}), the bytes and derived sizes served
//  with their content type and an ETag that never changes, the caller's
//  list, and deletion (409 while something shows the upload). Also the
//  service's settings and per-thread store.
#include "upload_service.h"
#include "up_data_url.h"
#include "up_image.h"
#include "up_multipart.h"
#include "up_sniff.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_json.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Settings, read once before the threads start.
static long s_quota_bytes = UP_QUOTA_BYTES_DEFAULT;
static long s_per_hour = UP_PER_HOUR_DEFAULT;
static char s_public_url [TL_MAX_URL_LEN + 1];

//  Each thread's store, closed by the key's destructor when it ends.
static pthread_key_t s_store_key;
static pthread_once_t s_store_once = PTHREAD_ONCE_INIT;

static void
s_store_free (void *store)
{
    up_store_t *self = (up_store_t *) store;
    up_store_destroy (&self);
}

static void
s_store_key_make (void)
{
    pthread_key_create (&s_store_key, s_store_free);
}

static const tl_db_statement_t s_statements [] = {
    { "blob_lock", UPLOAD_BLOB_LOCK, 1 },
    { "blob_one", "SELECT content_type, width, height, bytes FROM blobs WHERE sha256 = $1", 1 },
    //  $1 sha256, $2 content type, $3 width, $4 height, $5 bytes
    { "blob_insert",
      "INSERT INTO blobs (sha256, content_type, width, height, bytes) "
      "VALUES ($1, $2, $3::int, $4::int, $5::bigint) ON CONFLICT (sha256) DO NOTHING", 5 },
    { "quota_lock",
      "SELECT pg_advisory_xact_lock (hashtextextended ('upload.quota:' || $1, 0))", 1 },
    //  The owner's bytes, and uploads in the hour before now
    { "quota_used",
      "SELECT (SELECT coalesce (sum (bytes), 0) FROM uploads WHERE owner = $1), "
      "       (SELECT count (*) FROM upload_log WHERE owner = $1 "
      "         AND at > now () - interval '1 hour')", 1 },
    { "upload_insert",
      "INSERT INTO uploads (owner, sha256, bytes) VALUES ($1, $2, $3::bigint) RETURNING id", 3 },
    { "upload_log", "INSERT INTO upload_log (owner) VALUES ($1)", 1 },
    { "upload_show",
      "SELECT u.id, b.content_type, b.width, b.height, u.bytes, u.sha256, "
      "       rfc3339 (u.created_at), "
      "       to_char (u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
      "FROM uploads u JOIN blobs b USING (sha256) WHERE u.id = $1", 1 },
    //  $1 owner, $2/$3 the cursor, $4 the LIMIT
    { "uploads_mine",
      "SELECT u.id, b.content_type, b.width, b.height, u.bytes, u.sha256, "
      "       rfc3339 (u.created_at), "
      "       to_char (u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
      "FROM uploads u JOIN blobs b USING (sha256) WHERE u.owner = $1 "
      "AND ($2::timestamptz IS NULL OR (u.created_at, u.id) < ($2::timestamptz, $3::uuid)) "
      "ORDER BY u.created_at DESC, u.id DESC LIMIT $4::int", 4 },
    { "upload_blob",
      "SELECT u.sha256, b.content_type FROM uploads u JOIN blobs b USING (sha256) "
      "WHERE u.id = $1", 1 },
    { "variant_one",
      "SELECT content_type FROM variants WHERE sha256 = $1 AND variant = $2", 2 },
    { "variant_insert",
      "INSERT INTO variants (sha256, variant, content_type, bytes) "
      "VALUES ($1, $2, $3, $4::bigint) ON CONFLICT DO NOTHING", 4 },
    //  Deletion: the owner's row, locked, and whether anything shows it
    { "upload_own",
      "SELECT sha256, EXISTS (SELECT 1 FROM refs r WHERE r.upload_id = u.id) "
      "FROM uploads u WHERE id = $1 AND owner = $2 FOR UPDATE", 2 },
    { "upload_delete", "DELETE FROM uploads WHERE id = $1", 1 },
    { "blob_unused",
      "DELETE FROM blobs b WHERE sha256 = $1 "
      "AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.sha256 = b.sha256) "
      "RETURNING (SELECT array_to_string (array_agg (variant), ',') FROM variants v "
      "           WHERE v.sha256 = b.sha256)", 1 },
};

int
upload_files_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

int
upload_config (void)
{
    if (tl_env_long ("TALLY_UPLOAD_QUOTA_BYTES", UP_QUOTA_BYTES_DEFAULT, 1, UP_QUOTA_BYTES_MAX,
                     &s_quota_bytes)
    ||  tl_env_long ("TALLY_UPLOAD_PER_HOUR", UP_PER_HOUR_DEFAULT, 1, UP_PER_HOUR_MAX,
                     &s_per_hour)) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_UPLOAD_QUOTA_BYTES or TALLY_UPLOAD_PER_HOUR is "
                "out of range");
        return TL_ECONFIG;
    }
    const char *url = tl_env ("TALLY_PUBLIC_URL", "");
    if (strlen (url) > TL_MAX_URL_LEN) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_PUBLIC_URL is too long");
        return TL_ECONFIG;
    }
    snprintf (s_public_url, sizeof s_public_url, "%s", url);
    size_t len = strlen (s_public_url);
    while (len && s_public_url [len - 1] == '/')
        s_public_url [--len] = 0;
    up_store_t *probe = up_store_new_env ();
    if (!probe) {
        tl_log (TL_LOG_ERROR, NULL, "the upload store is not usable: set TALLY_S3_URL with "
                "TALLY_S3_ACCESS_KEY and TALLY_S3_SECRET_KEY, or a writable TALLY_DATA_DIR");
        return TL_ECONFIG;
    }
    tl_log (TL_LOG_INFO, NULL, "uploads stored in %s", up_store_is_s3 (probe)
            ? "an S3-compatible store" : "a local folder");
    up_store_destroy (&probe);
    return 0;
}

int
upload_thread_init (tl_db_t *db, void *arg)
{
    (void) arg;
    pthread_once (&s_store_once, s_store_key_make);
    if (!pthread_getspecific (s_store_key)) {
        up_store_t *store = up_store_new_env ();
        if (!store)
            return TL_ECONFIG;
        pthread_setspecific (s_store_key, store);
    }
    int rc = upload_files_prepare (db);
    return rc ? rc : upload_refs_prepare (db);
}

up_store_t *
upload_store (void)
{
    pthread_once (&s_store_once, s_store_key_make);
    return (up_store_t *) pthread_getspecific (s_store_key);
}

void
upload_url (const char *id, const char *variant, char *url, size_t size)
{
    snprintf (url, size, "%s/api/v1/uploads/%s%s%s", s_public_url, id, variant ? "/" : "",
              variant ? variant : "");
}

//  ---------------------------------------------------------------------
//  Showing an upload

enum { S_COL_ID, S_COL_TYPE, S_COL_WIDTH, S_COL_HEIGHT, S_COL_BYTES, S_COL_SHA,
       S_COL_CREATED, S_COL_CURSOR };

static void
s_pack_upload (msgpack_packer *pk, const PGresult *res, int row)
{
    const char *id = tl_db_value (res, row, S_COL_ID);
    char url [TL_MAX_URL_LEN + 128];
    msgpack_pack_map (pk, 9);
    tl_mp_pack_kv (pk, "id", id);
    upload_url (id, NULL, url, sizeof url);
    tl_mp_pack_kv (pk, "url", url);
    tl_mp_pack_kv (pk, "content_type", tl_db_value (res, row, S_COL_TYPE));
    tl_mp_pack_str (pk, "width");
    msgpack_pack_int64 (pk, tl_db_parse_int64 (tl_db_value (res, row, S_COL_WIDTH)));
    tl_mp_pack_str (pk, "height");
    msgpack_pack_int64 (pk, tl_db_parse_int64 (tl_db_value (res, row, S_COL_HEIGHT)));
    tl_mp_pack_str (pk, "bytes");
    msgpack_pack_int64 (pk, tl_db_parse_int64 (tl_db_value (res, row, S_COL_BYTES)));
    tl_mp_pack_kv (pk, "sha256", tl_db_value (res, row, S_COL_SHA));
    tl_mp_pack_str (pk, "variants");
    int count = 0;
    for (const up_variant_t *v = up_image_variants (); v->name; v++)
        count++;
    msgpack_pack_map (pk, (uint32_t) count);
    for (const up_variant_t *v = up_image_variants (); v->name; v++) {
        upload_url (id, v->name, url, sizeof url);
        tl_mp_pack_kv (pk, v->name, url);
    }
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, S_COL_CREATED));
}

void
upload_reply (tl_call_t *call, const char *id, int status)
{
    PGresult *res = tl_call_exec_one (call, "upload_show", 1, &id, "upload");
    if (!res)
        return;
    s_pack_upload (tl_call_reply (call, status), res, 0);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  Taking bytes in

//  What one ingest writes, for its transaction.
typedef struct {
    const char *owner;
    const char *sha256;
    const char *content_type;
    char width [16], height [16], stored [24], bytes [24];
    bool cleaned;               //  the cleaned bytes are in `clean`
    void *clean;
    size_t clean_size;
    char id [37];
    int refusal;                //  1: bytes quota, 2: hourly quota
} s_ingest_t;

//  The transaction of an ingest: under the owner's quota lock and the
//  blob's lock, inserts the blob (storing its bytes when no row has them),
//  the upload and its log row. Returns TL_ENOTFOUND when the blob needs
//  cleaning first (its row went away since the caller looked).
static int
s_ingest_tx (tl_db_t *db, void *arg)
{
    s_ingest_t *in = (s_ingest_t *) arg;
    in->refusal = 0;
    int err = 0;
    PGresult *res = tl_db_exec (db, "quota_lock", 1, &in->owner, &err);
    PQclear (res);
    res = res ? tl_db_exec (db, "quota_used", 1, &in->owner, &err) : NULL;
    if (!res)
        return err;
    long long used = tl_db_parse_int64 (tl_db_value (res, 0, 0));
    long long hour = tl_db_parse_int64 (tl_db_value (res, 0, 1));
    PQclear (res);
    if (used + atoll (in->bytes) > s_quota_bytes) {
        in->refusal = 1;
        return TL_EBUSY;
    }
    if (hour >= s_per_hour) {
        in->refusal = 2;
        return TL_EBUSY;
    }
    res = tl_db_exec (db, "blob_lock", 1, &in->sha256, &err);
    PQclear (res);
    res = res ? tl_db_exec (db, "blob_one", 1, &in->sha256, &err) : NULL;
    if (!res)
        return err;
    bool present = PQntuples (res) == 1;
    PQclear (res);
    if (!present) {
        if (!in->cleaned)
            return TL_ENOTFOUND;
        //  Stored under the lock: a removal of the same blob takes turns
        int rc = up_store_put (upload_store (), in->sha256, in->clean, in->clean_size,
                               in->content_type);
        if (rc)
            return rc;
        const char *values [] = { in->sha256, in->content_type, in->width, in->height,
                                  in->stored };
        long count = tl_db_exec_count (db, "blob_insert", 5, values);
        if (count < 0)
            return (int) count;
    }
    const char *values [] = { in->owner, in->sha256, in->bytes };
    res = tl_db_exec (db, "upload_insert", 3, values, &err);
    if (!res)
        return err;
    snprintf (in->id, sizeof in->id, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    long count = tl_db_exec_count (db, "upload_log", 1, &in->owner);
    return count < 0 ? (int) count : 0;
}

//  Answers a refused type or size check of `rc` (up_sniff's codes).
static void
s_refuse_sniff (tl_call_t *call, int rc)
{
    if (rc == TL_ETYPE)
        tl_call_error (call, 415, "unsupported_type",
                       "the bytes are not a PNG, JPEG, GIF or WebP image");
    else
        tl_call_error (call, 422, "undecodable", "the image's header is truncated or malformed");
}

//  The checks of the bytes before anything is decoded: the size, the type
//  by the bytes (and against the declared one) and the header's pixel
//  count. Fills *info and returns true, or answers (413, 415, 422) and
//  returns false.
static bool
s_check_bytes (tl_call_t *call, const uint8_t *data, size_t size, const char *declared,
               up_info_t *info)
{
    if (size > UP_MAX_BYTES) {
        tl_call_error (call, 413, "too_large", "an image is at most %ld bytes",
                       (long) UP_MAX_BYTES);
        return false;
    }
    int rc = up_sniff (data, size, info);
    if (rc) {
        s_refuse_sniff (call, rc);
        return false;
    }
    if (declared && *declared && strncasecmp (declared, "application/octet-stream", 24) != 0
    &&  up_sniff_from_mime (declared) != info->type) {
        tl_call_error (call, 415, "type_mismatch", "the bytes are %s, not what was declared",
                       up_sniff_mime (info->type));
        return false;
    }
    if ((long long) info->width * info->height > UP_MAX_PIXELS
    ||  info->width > UP_MAX_SIDE || info->height > UP_MAX_SIDE) {
        tl_call_error (call, 422, "too_many_pixels",
                       "the image is %ux%u; at most %lld pixels", info->width, info->height,
                       (long long) UP_MAX_PIXELS);
        return false;
    }
    return true;
}

//  Cleans the image into in->clean (libvips: decoded whole, upright,
//  without metadata). Returns true, or answers (413, 422, 503) and
//  returns false.
static bool
s_clean (tl_call_t *call, const uint8_t *data, size_t size, up_type_t type, s_ingest_t *in)
{
    int w = 0, h = 0;
    int rc = up_image_clean (data, size, type, UP_MAX_STORED, &in->clean, &in->clean_size,
                             &w, &h);
    if (rc == TL_ETOOBIG)
        tl_call_error (call, 413, "too_large", "the cleaned image is too large");
    else
    if (rc == TL_EINVAL)
        tl_call_error (call, 422, "undecodable", "the image does not decode");
    else
    if (rc)
        tl_call_error (call, 503, "unavailable", "out of memory");
    if (rc)
        return false;
    in->cleaned = true;
    snprintf (in->width, sizeof in->width, "%d", w);
    snprintf (in->height, sizeof in->height, "%d", h);
    snprintf (in->stored, sizeof in->stored, "%zu", in->clean_size);
    return true;
}

//  Answers a failed ingest transaction (`rc`).
static void
s_refuse_ingest (tl_call_t *call, int rc, int refusal)
{
    if (rc == TL_EBUSY && refusal == 1)
        tl_call_error (call, 413, "quota_exceeded", "your uploads would pass %ld bytes",
                       s_quota_bytes);
    else
    if (rc == TL_EBUSY && refusal == 2)
        tl_call_error_retry (call, 429, 3600, "too_many_uploads",
                             "at most %ld uploads an hour", s_per_hour);
    else
    if (rc == TL_EUNAVAIL || rc == TL_EIO)
        tl_call_error (call, 503, "storage", "the image store did not take the bytes");
    else
        tl_call_db_error (call, rc);
}

bool
upload_ingest (tl_call_t *call, const uint8_t *data, size_t size, const char *declared,
               char id [37])
{
    const char *owner = tl_call_user (call);
    if (!owner) {
        tl_call_error (call, 401, "unauthenticated", "an upload needs a user");
        return false;
    }
    up_info_t info;
    if (!s_check_bytes (call, data, size, declared, &info))
        return false;
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, data, size);
    char sha [crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex (sha, sizeof sha, hash, sizeof hash);

    s_ingest_t in = { .owner = owner, .sha256 = sha, .content_type = up_sniff_mime (info.type) };
    snprintf (in.bytes, sizeof in.bytes, "%zu", size);
    tl_db_t *db = tl_call_db (call);
    //  Cleaned (decoded whole: a file that does not decode is refused
    //  here) only when no blob has these bytes yet.
    int err = 0;
    PGresult *res = tl_db_exec (db, "blob_one", 1, (const char *const *) &in.sha256, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return false;
    }
    bool present = PQntuples (res) == 1;
    PQclear (res);
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!present && !in.cleaned && !s_clean (call, data, size, info.type, &in))
            return false;
        rc = tl_db_tx (db, s_ingest_tx, &in);
        if (rc != TL_ENOTFOUND)
            break;
        present = false;                //  the blob went meanwhile: clean, then again
    }
    up_image_free (in.clean);
    if (rc) {
        s_refuse_ingest (call, rc, in.refusal);
        return false;
    }
    memcpy (id, in.id, 37);
    return true;
}

//  The JSON body {data_url}: decoded into *data_p (the caller frees it).
//  Answers 400 or 413 and returns false when it is not one.
static bool
s_data_url (tl_call_t *call, const uint8_t *body, size_t size, uint8_t **data_p,
            size_t *size_p, char *mime, size_t mime_size)
{
    char why [200] = "";
    int err = 0;
    json_t *json = tl_json_parse ((const char *) body, size, why, sizeof why, &err);
    json_t *value = json ? json_object_get (json, "data_url") : NULL;
    if (!json_is_string (value)) {
        json_decref (json);
        tl_call_field_error (call, 400, "invalid_body", "data_url",
                             "a JSON body must be {\"data_url\": \"data:image/...;base64,...\"}");
        return false;
    }
    int rc = up_data_url_decode (json_string_value (value), json_string_length (value),
                                 UP_MAX_BYTES, mime, mime_size, data_p, size_p);
    json_decref (json);
    if (rc == TL_ETOOBIG)
        tl_call_error (call, 413, "too_large", "an image is at most %ld bytes", (long) UP_MAX_BYTES);
    else
    if (rc == TL_ENOMEM)
        tl_call_error (call, 503, "unavailable", "out of memory");
    else
    if (rc)
        tl_call_field_error (call, 400, "invalid", "data_url",
                             "must be a data: URL with strict base64");
    return rc == 0;
}

//  POST /uploads: the body's bytes, as the gateway passed them, with the
//  request's Content-Type in the param content_type.
static void
s_create (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    if (!body || body->type != MSGPACK_OBJECT_BIN || body->via.bin.size == 0) {
        tl_call_error (call, 400, "empty", "send an image");
        return;
    }
    const uint8_t *bytes = (const uint8_t *) body->via.bin.ptr;
    size_t size = body->via.bin.size;
    const char *type = tl_call_param (call, "content_type");
    char id [37];
    if (up_multipart_is (type)) {
        up_part_t file;
        int rc = up_multipart_file (type, bytes, size, &file);
        if (rc == TL_ENOTFOUND)
            tl_call_field_error (call, 400, "invalid", "file", "the form has no field `file`");
        else
        if (rc == TL_EEXIST)
            tl_call_field_error (call, 400, "invalid", "file", "send one file at a time");
        else
        if (rc)
            tl_call_error (call, 400, "malformed_multipart", "the multipart body is malformed");
        if (rc == 0 && upload_ingest (call, file.data, file.size, file.content_type, id))
            upload_reply (call, id, 201);
        return;
    }
    if (type && strncasecmp (type, "application/json", 16) == 0) {
        uint8_t *data = NULL;
        size_t data_size = 0;
        char mime [UP_MAX_MIME_LEN + 1];
        if (s_data_url (call, bytes, size, &data, &data_size, mime, sizeof mime)
        &&  upload_ingest (call, data, data_size, mime, id))
            upload_reply (call, id, 201);
        free (data);
        return;
    }
    if (type && *type && strncasecmp (type, "image/", 6) != 0
    &&  strncasecmp (type, "application/octet-stream", 24) != 0) {
        tl_call_error (call, 415, "unsupported_media_type", "send multipart/form-data, an "
                       "image/* body or JSON {data_url}");
        return;
    }
    if (upload_ingest (call, bytes, size, type, id))
        upload_reply (call, id, 201);
}

//  ---------------------------------------------------------------------
//  Serving bytes

//  Answers `size` bytes (those of store key `key`) with their type, a
//  strong ETag (the key: the bytes under a key never change) and immutable
//  caching.
static void
s_reply_bytes (tl_call_t *call, const void *data, size_t size, const char *key,
               const char *content_type)
{
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
    char etag [UP_MAX_KEY_LEN + 3];
    snprintf (etag, sizeof etag, "\"%s\"", key);
    tl_call_header (call, "Content-Type", content_type);
    tl_call_header (call, "ETag", etag);
    tl_call_header (call, "Cache-Control", "public, max-age=31536000, immutable");
}

//  Answers the bytes of store key `key` (s_reply_bytes), 404 when the
//  store has lost them, 503 when it does not answer.
static void
s_serve (tl_call_t *call, const char *key, const char *content_type)
{
    void *data = NULL;
    size_t size = 0;
    int rc = up_store_get (upload_store (), key, UP_MAX_STORED, &data, &size);
    if (rc == TL_ENOTFOUND) {
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "object %s is missing from the store", key);
        tl_call_error (call, 404, "not_found", "no such upload");
        return;
    }
    if (rc) {
        tl_call_error (call, 503, "storage", "the image store did not answer");
        return;
    }
    s_reply_bytes (call, data, size, key, content_type);
    free (data);
}

//  The upload `id`'s blob and type, or answers 404 and returns NULL.
static PGresult *
s_blob_of (tl_call_t *call, const char *id)
{
    if (!id || !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such upload");
        return NULL;
    }
    return tl_call_exec_one (call, "upload_blob", 1, &id, "upload");
}

//  GET /uploads/{id}
static void
s_get (tl_call_t *call)
{
    PGresult *res = s_blob_of (call, tl_call_param (call, "id"));
    if (res)
        s_serve (call, tl_db_value (res, 0, 0), tl_db_value (res, 0, 1));
    PQclear (res);
}

//  What making a variant needs in its transaction.
typedef struct {
    const char *sha256, *key, *content_type;
    const up_variant_t *variant;
    up_type_t type;
    void *made;                 //  the bytes made (or found), the caller's
    size_t made_size;
    const char *made_type;
    int refusal;                //  an up_image code
} s_variant_t;

//  Under the blob's lock: the variant's row again, and when there is none,
//  makes it from the original, stores it and records it. Only one instance
//  makes a variant; the others wait for the lock and find the row.
static int
s_variant_tx (tl_db_t *db, void *arg)
{
    s_variant_t *v = (s_variant_t *) arg;
    free (v->made);
    v->made = NULL;
    int err = 0;
    PGresult *res = tl_db_exec (db, "blob_lock", 1, &v->sha256, &err);
    PQclear (res);
    const char *values [] = { v->sha256, v->variant->name };
    res = res ? tl_db_exec (db, "variant_one", 2, values, &err) : NULL;
    if (!res)
        return err;
    bool present = PQntuples (res) == 1;
    PQclear (res);
    if (present)
        return 0;
    void *original = NULL;
    size_t size = 0;
    int rc = up_store_get (upload_store (), v->sha256, UP_MAX_STORED, &original, &size);
    if (rc)
        return rc;
    void *made = NULL;
    size_t made_size = 0;
    rc = up_image_variant (original, size, v->type, v->variant, UP_MAX_STORED, &made,
                           &made_size);
    free (original);
    if (rc) {
        v->refusal = rc;
        return TL_EINVAL;
    }
    v->made_type = up_sniff_mime (up_image_variant_type (v->type));
    rc = up_store_put (upload_store (), v->key, made, made_size, v->made_type);
    if (rc == 0) {
        char bytes [24];
        snprintf (bytes, sizeof bytes, "%zu", made_size);
        const char *row [] = { v->sha256, v->variant->name, v->made_type, bytes };
        long count = tl_db_exec_count (db, "variant_insert", 4, row);
        rc = count < 0 ? (int) count : 0;
    }
    if (rc == 0) {
        v->made = malloc (made_size ? made_size : 1);
        if (v->made)
            memcpy (v->made, made, made_size);
        v->made_size = made_size;
    }
    up_image_free (made);
    return rc;
}

//  GET /uploads/{id}/{variant}: made on first need, kept.
static void
s_variant (tl_call_t *call)
{
    const up_variant_t *variant = up_image_variant_find (tl_call_param (call, "variant"));
    if (!variant) {
        tl_call_error (call, 404, "not_found", "no such variant: thumb, avatar, background "
                       "or background_thumb");
        return;
    }
    PGresult *res = s_blob_of (call, tl_call_param (call, "id"));
    if (!res)
        return;
    char key [UP_MAX_KEY_LEN + 1];
    snprintf (key, sizeof key, "%s.%s", tl_db_value (res, 0, 0), variant->name);
    s_variant_t v = { .sha256 = tl_db_value (res, 0, 0), .key = key, .variant = variant,
                      .type = up_sniff_from_mime (tl_db_value (res, 0, 1)) };
    const char *values [] = { v.sha256, variant->name };
    int err = 0;
    PGresult *row = tl_db_exec (tl_call_db (call), "variant_one", 2, values, &err);
    if (row && PQntuples (row) == 1)
        s_serve (call, key, tl_db_value (row, 0, 0));
    else
    if (row) {
        int rc = tl_db_tx (tl_call_db (call), s_variant_tx, &v);
        if (rc == 0 && v.made)
            s_reply_bytes (call, v.made, v.made_size, key, v.made_type);
        else
        if (rc == 0) {
            //  another instance made it while this one waited
            PQclear (row);
            row = tl_db_exec (tl_call_db (call), "variant_one", 2, values, &err);
            if (row && PQntuples (row) == 1)
                s_serve (call, key, tl_db_value (row, 0, 0));
            else
                tl_call_db_error (call, row ? TL_EDB : err);
        }
        else
        if (rc == TL_EINVAL)
            tl_call_error (call, 422, "undecodable", "the variant could not be made");
        else
        if (rc == TL_ENOTFOUND)         //  its blob went while this waited
            tl_call_error (call, 404, "not_found", "no such upload");
        else
        if (rc == TL_EUNAVAIL || rc == TL_EIO)
            tl_call_error (call, 503, "storage", "the image store did not answer");
        else
            tl_call_db_error (call, rc);
        free (v.made);
    }
    else
        tl_call_db_error (call, err);
    PQclear (row);
    PQclear (res);
}

//  GET /me/uploads: the caller's, newest first, in keyset pages.
static void
s_mine (tl_call_t *call)
{
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *values [] = { tl_call_user (call), page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, "uploads_mine", 4, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++)
        s_pack_upload (pk, res, row);
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                      tl_db_value (res, rows - 1, S_COL_ID));
    PQclear (res);
}

int
upload_blob_release (tl_db_t *db, const char *sha256)
{
    int err = 0;
    PGresult *res = tl_db_exec (db, "blob_lock", 1, &sha256, &err);
    PQclear (res);
    res = res ? tl_db_exec (db, "blob_unused", 1, &sha256, &err) : NULL;
    if (!res)
        return err;
    int removed = PQntuples (res);
    //  The objects go under the lock, before the commit: a create of the
    //  same bytes waits and then stores them again.
    int rc = 0;
    if (removed) {
        char variants [256];
        snprintf (variants, sizeof variants, "%s", tl_db_value (res, 0, 0)
                  ? tl_db_value (res, 0, 0) : "");
        for (char *name = strtok (variants, ","); name && rc == 0; name = strtok (NULL, ",")) {
            char key [UP_MAX_KEY_LEN + 1];
            snprintf (key, sizeof key, "%s.%s", sha256, name);
            rc = up_store_delete (upload_store (), key);
        }
        rc = rc ? rc : up_store_delete (upload_store (), sha256);
    }
    PQclear (res);
    return rc ? rc : removed;
}

//  What a deletion needs in its transaction.
typedef struct {
    const char *id, *owner;
    bool missing, shown;
} s_delete_t;

static int
s_delete_tx (tl_db_t *db, void *arg)
{
    s_delete_t *d = (s_delete_t *) arg;
    d->missing = d->shown = false;
    const char *values [] = { d->id, d->owner };
    int err = 0;
    PGresult *res = tl_db_exec (db, "upload_own", 2, values, &err);
    if (!res)
        return err;
    if (PQntuples (res) != 1 || strcmp (tl_db_value (res, 0, 1), "t") == 0) {
        d->missing = PQntuples (res) != 1;
        d->shown = !d->missing;
        PQclear (res);
        return TL_EEXIST;
    }
    char sha [65];
    snprintf (sha, sizeof sha, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    long count = tl_db_exec_count (db, "upload_delete", 1, &d->id);
    if (count < 0)
        return (int) count;
    int rc = upload_blob_release (db, sha);
    return rc < 0 ? rc : 0;
}

//  DELETE /uploads/{id}: the owner's only (404 to anyone else); 409 while
//  something shows it. The bytes go when no other upload has them.
static void
s_delete (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!id || !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such upload");
        return;
    }
    s_delete_t d = { .id = id, .owner = tl_call_user (call) };
    int rc = tl_db_tx (tl_call_db (call), s_delete_tx, &d);
    if (rc == 0)
        tl_call_reply_empty (call, 204);
    else
    if (d.missing)
        tl_call_error (call, 404, "not_found", "no such upload");
    else
    if (d.shown)
        tl_call_error (call, 409, "in_use", "the upload is shown (an event background, an "
                       "avatar...): remove it there first");
    else
    if (rc == TL_EUNAVAIL || rc == TL_EIO)
        tl_call_error (call, 503, "storage", "the image store did not answer");
    else
        tl_call_db_error (call, rc);
}

int
upload_files_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "uploads.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "uploads.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "uploads.variant", s_variant);
    rc = rc ? rc : tl_service_on (svc, "uploads.mine", s_mine);
    rc = rc ? rc : tl_service_on (svc, "uploads.delete", s_delete);
    return rc;
}
