//  auth_throttle.h — counts failed password checks per key (an account
//  and address, an address, an account, a user) in PostgreSQL, so that
//  every auth instance sees the same counts; and, for requests that cost a
//  hash or send a mail (registration, password reset), every request per
//  key. A key's window opens at its first failure and lasts `window`
//  seconds. Two rules: a key with `limit` failures in its window is
//  refused until the window ends (auth_throttle_check), or past `after`
//  failures each try waits longer after the last one (auth_throttle_backoff).
//  A success clears a key. Uses the auth schema's `throttle` table
//  (migrations/001_init.sql, 002_throttle_backoff.sql).
#ifndef AUTH_THROTTLE_H_INCLUDED
#define AUTH_THROTTLE_H_INCLUDED

#include <stdbool.h>
#include "tl_db.h"

#define AUTH_THROTTLE_MAX_KEY 300

//  Writes "<prefix><text>" into `key`, ASCII letters lower-cased (names
//  and addresses count ignoring case), cut at AUTH_THROTTLE_MAX_KEY bytes.
void auth_throttle_key (char key [AUTH_THROTTLE_MAX_KEY + 1], const char *prefix,
                        const char *text);

//  Returns 0 when `key` may try now, the seconds until it may (> 0) when it
//  has `limit` failures in a window of `window` seconds, or a negative code.
int auth_throttle_check (tl_db_t *db, const char *key, int limit, int window);

//  The back-off rule, for keys that must slow tries down rather than lock
//  them (an account tried from many addresses: anyone could lock it out):
//  returns 0 when `key` may try now, or the seconds until it may (> 0)
//  when it has at least `after` failures in its window and its last
//  failure was less than 2^(failures - after) seconds ago (at most
//  `max_wait`), or a negative code.
int auth_throttle_backoff (tl_db_t *db, const char *key, int after, int max_wait, int window);

//  Records one failure of `key` (a new window if the last one ended).
//  Returns the failures in the window, or a negative code.
int auth_throttle_fail (tl_db_t *db, const char *key, int window);

//  Counts one request of `key` (not a failure: every request), in a new
//  window if the last one ended. Returns 0 when it is within `limit`
//  requests of the window, the seconds until the window ends (> 0) when
//  it is past it, or a negative code.
int auth_throttle_hit (tl_db_t *db, const char *key, int limit, int window);

//  Forgets `key`'s failures. Returns 0 or a negative code.
int auth_throttle_clear (tl_db_t *db, const char *key);

//  Deletes keys whose window ended more than `window` seconds ago.
//  Returns how many, or a negative code.
int auth_throttle_purge (tl_db_t *db, int window);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void auth_throttle_test (bool verbose);

#endif
