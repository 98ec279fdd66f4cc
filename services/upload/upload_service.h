//  upload_service.h — what the upload service's files share: the
//  per-thread store, the one way bytes become an upload (upload_ingest,
//  for POST /uploads and for a data URL another service passes on), how an
//  upload is shown, and the registration of each file's methods. Private to
//  services/upload.
#ifndef UPLOAD_SERVICE_H_INCLUDED
#define UPLOAD_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "tl_log.h"
#include "tl_service.h"
#include "up_store.h"
#include "upload_limits.h"

extern const tl_embed_t upload_migrations [];

//  Reads the service's settings (quota, public URL) from the environment.
//  Returns 0 or TL_ECONFIG (logged).
int upload_config (void);

//  Each handler and job thread: prepares every file's statements and opens
//  the thread's store (closed when the thread ends).
int upload_thread_init (tl_db_t *db, void *arg);

//  The calling thread's store (opened by upload_thread_init). Borrowed.
up_store_t *upload_store (void);

//  Makes an upload of `size` bytes at `data` for the call's user: checks
//  the type by the bytes against `declared` (a declared MIME type, or NULL
//  / "" for none), the pixel bound and the quota, cleans and stores the
//  bytes (once per content) and inserts the upload. On success writes its
//  id into `id` and returns true; otherwise answers the call (400, 413,
//  415, 422, 429, 503) and returns false, with nothing stored.
bool upload_ingest (tl_call_t *call, const uint8_t *data, size_t size, const char *declared,
                    char id [37]);

//  Packs the upload `id` as the API shows it ({id, url, content_type,
//  width, height, bytes, sha256, variants, created_at}) as the call's reply
//  with `status`. Answers 404 when there is none (or a database error).
void upload_reply (tl_call_t *call, const char *id, int status);

//  The URL of upload `id` (`variant` NULL for the original) into `url`.
void upload_url (const char *id, const char *variant, char *url, size_t size);

//  Removes the blob `sha256` and every object of it from the store when no
//  upload points at it any more, inside the caller's transaction on `db`
//  (which takes the blob's lock first). Returns 1 when removed, 0 when it
//  is still used, or a negative code.
int upload_blob_release (tl_db_t *db, const char *sha256);

//  The SQL of the blob's lock: every change of one blob's rows and objects
//  (a create, a variant, a removal) takes turns on it.
#define UPLOAD_BLOB_LOCK "SELECT pg_advisory_xact_lock (hashtextextended ('upload.blob:' || $1, 0))"

//  Registration of each file's methods and jobs, and its statements.
int upload_files_register (tl_service_t *svc);     //  uploads.*
int upload_files_prepare (tl_db_t *db);
int upload_refs_register (tl_service_t *svc);      //  upload.ref/unref, user.deleted, gc
int upload_refs_prepare (tl_db_t *db);

#endif
