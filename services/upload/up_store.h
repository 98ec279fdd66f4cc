//  up_store.h — where the bytes of uploads live: one interface, two
//  backends. A local folder (one machine), or an S3-compatible object store
//  reached path-style over HTTP with AWS Signature V4 (libcurl's), so that
//  instances on several machines share one store. Keys are the service's
//  own: "<sha256 hex>" for an original, "<sha256 hex>.<variant>" for a
//  derived size ([0-9a-z_.] only). A put of a key that exists replaces it
//  with the same bytes (content-addressed), so puts need no lock.
//  A store is used by one thread at a time; each handler thread has its own.
#ifndef UP_STORE_H_INCLUDED
#define UP_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _up_store_t up_store_t;

//  A local store in folder `dir` (made when missing). Returns NULL when it
//  cannot be made.
up_store_t *up_store_new_local (const char *dir);

//  An S3 store at `url` ("http(s)://host[:port]/bucket", path-style) with
//  the credentials `access_key`, `secret_key` and `region` (SigV4). The
//  bucket is made when the store answers that it does not exist. Returns
//  NULL on a malformed URL or missing credentials.
up_store_t *up_store_new_s3 (const char *url, const char *access_key, const char *secret_key,
                             const char *region);

//  The store the environment names: TALLY_S3_URL (with TALLY_S3_ACCESS_KEY,
//  TALLY_S3_SECRET_KEY, TALLY_S3_REGION, default us-east-1) when set, else
//  the folder $TALLY_DATA_DIR/uploads (TALLY_DATA_DIR default var, as the
//  mailer's).
up_store_t *up_store_new_env (void);

//  Destroys the store and nulls the caller's reference. Safe on NULL.
void up_store_destroy (up_store_t **self_p);

//  True for an S3 store.
bool up_store_is_s3 (const up_store_t *self);

//  Stores `size` bytes under `key`. Returns 0, TL_EINVAL (bad key), TL_EIO
//  or TL_EUNAVAIL (the object store did not answer, or answered an error).
int up_store_put (up_store_t *self, const char *key, const void *data, size_t size,
                  const char *content_type);

//  Reads `key` into a new buffer *data_p (the caller frees it) of *size_p
//  bytes, at most `max`. Returns 0, TL_ENOTFOUND, TL_ETOOBIG, TL_EINVAL,
//  TL_EIO or TL_EUNAVAIL.
int up_store_get (up_store_t *self, const char *key, size_t max, void **data_p,
                  size_t *size_p);

//  Removes `key`; one already gone is no error. Returns 0, TL_EINVAL,
//  TL_EIO or TL_EUNAVAIL.
int up_store_delete (up_store_t *self, const char *key);

//  Self-test, run by ctest (the local backend; the S3 one is tested against
//  s3rver by the integration tests).
void up_store_test (bool verbose);

#endif
