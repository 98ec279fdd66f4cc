//  auth_password.h — password hashes with argon2id (libsodium's
//  crypto_pwhash_str), under a bound on how many run at once: each hash
//  holds its memory limit (64 MiB at the INTERACTIVE limits) for its whole
//  run, so a flood is refused rather than run the process out of memory.
//  A hash that finds every slot busy gives up at once: it never holds a
//  handler thread waiting. A process has one configuration,
//  set before its threads start.
#ifndef AUTH_PASSWORD_H_INCLUDED
#define AUTH_PASSWORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sodium.h>

#define AUTH_PASSWORD_HASH_LEN crypto_pwhash_STRBYTES     //  with its NUL

//  Sets the cost of new hashes (`opslimit`, `memlimit` in bytes; 0 means
//  libsodium's INTERACTIVE limits, the least accepted) and how many hashes
//  may run at once (1..AUTH_HASHES_MAX), then makes the dummy hash that
//  unknown users are checked against. Needs sodium_init (). Call once,
//  before any thread hashes. Returns 0, TL_EINVAL (limits below
//  INTERACTIVE, bad count) or TL_ENOMEM.
int auth_password_init (unsigned long long opslimit, size_t memlimit, int max_parallel);

//  Frees what auth_password_init made. Safe to call twice.
void auth_password_shutdown (void);

//  Hashes `password` into `hash` when a slot is free now. Returns 0,
//  TL_EBUSY (every slot busy: answer 503 with Retry-After), or TL_ENOMEM.
int auth_password_hash (const char *password, char hash [AUTH_PASSWORD_HASH_LEN]);

//  Checks `password` against `stored` (a crypto_pwhash_str string). With
//  `stored` NULL (no such user) it checks against the dummy hash, at the
//  same cost, and never matches. Returns 1 on a match, 0 otherwise, or
//  TL_EBUSY as auth_password_hash.
int auth_password_verify (const char *stored, const char *password);

//  True when `stored` was made with other limits than the current ones (or
//  another algorithm): rehash it at the next successful login.
bool auth_password_needs_rehash (const char *stored);

//  How many hashes are running now (for metrics and tests).
int auth_password_running (void);

//  Self-test.
void auth_password_test (bool verbose);

#endif
