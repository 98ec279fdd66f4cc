//  tl_idem.h — idempotency keys: the same key from the same caller replays
//  the first answer instead of running a write twice.
//
//  The keys live in the service schema's idempotency_keys table (created by
//  tl_migrate) and are reached through the connection's search_path. A key
//  is claimed, the handler runs and its reply is stored, all in one
//  transaction: a second claim of the same key waits until that transaction
//  ends, then sees the stored reply (or, if it rolled back, claims the key
//  itself). Keys expire after TL_IDEM_TTL_HOURS.
#ifndef TL_IDEM_H_INCLUDED
#define TL_IDEM_H_INCLUDED

#include <stddef.h>
#include "tl_db.h"

//  A stored reply, filled by tl_idem_claim.
typedef struct {
    int status;                 //  the status that was stored
    unsigned char *reply;       //  the reply bytes (malloc'd), NULL if none
    size_t reply_size;
} tl_idem_stored_t;

//  Claims `key` (at most TL_MAX_IDEM_KEY_LEN bytes) for `caller` (at most
//  TL_MAX_ID_LEN) and `method` (at most TL_MAX_NAME_LEN), whose request
//  hashes to `hash`. Must be called inside tl_db_tx. Blocks while another
//  transaction holds an uncommitted claim of the same key. Returns:
//    0           the key is new: run the handler, then tl_idem_store, in
//                this same transaction
//    1           a reply is stored for this same request: `stored` is
//                filled; free it with tl_idem_stored_reset
//    TL_EEXIST   the key was used for another method or request (422)
//    TL_EBUSY    the key was claimed and committed without a reply
//    TL_EINVAL / TL_ETOOBIG for bad or oversized arguments, or a database
//    code (TL_ERETRY lets tl_db_tx run the transaction again).
int tl_idem_claim (tl_db_t *db, const char *caller, const char *key, const char *method,
                   const unsigned char hash [32], tl_idem_stored_t *stored);

//  Records the reply (`reply_size` bytes, at most TL_MAX_FRAME_BYTES) to
//  the key claimed in this transaction. Returns 0, TL_ENOTFOUND if the key
//  is not claimed, TL_ETOOBIG, or a database code.
int tl_idem_store (tl_db_t *db, const char *caller, const char *key, int status,
                   const void *reply, size_t reply_size);

//  Deletes up to TL_IDEM_PURGE_BATCH expired keys, skipping rows that are
//  locked. Returns how many were deleted, or a negative code. Call it again
//  while it returns TL_IDEM_PURGE_BATCH.
int tl_idem_purge (tl_db_t *db);

//  Frees the reply of `stored` and zeroes it. Safe on a zeroed struct.
void tl_idem_stored_reset (tl_idem_stored_t *stored);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void tl_idem_test (bool verbose);

#endif
