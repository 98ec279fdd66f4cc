//  auth_throttle.h — counts failed password checks per key (an account
//  name, a client address, a user) in PostgreSQL, so that every auth
//  instance sees the same counts. A key's window opens at its first
//  failure and lasts `window` seconds; a key with `limit` failures in its
//  window is refused until the window ends. A success clears a key.
//  Uses the auth schema's `throttle` table (migrations/001_init.sql).
#ifndef AUTH_THROTTLE_H_INCLUDED
#define AUTH_THROTTLE_H_INCLUDED

#include <stdbool.h>
#include "tl_db.h"

#define AUTH_THROTTLE_MAX_KEY 300

//  Returns 0 when `key` may try now, the seconds until it may (> 0) when it
//  has `limit` failures in a window of `window` seconds, or a negative code.
int auth_throttle_check (tl_db_t *db, const char *key, int limit, int window);

//  Records one failure of `key` (a new window if the last one ended).
//  Returns the failures in the window, or a negative code.
int auth_throttle_fail (tl_db_t *db, const char *key, int window);

//  Forgets `key`'s failures. Returns 0 or a negative code.
int auth_throttle_clear (tl_db_t *db, const char *key);

//  Deletes keys whose window ended more than `window` seconds ago.
//  Returns how many, or a negative code.
int auth_throttle_purge (tl_db_t *db, int window);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void auth_throttle_test (bool verbose);

#endif
