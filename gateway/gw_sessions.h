//  gw_sessions.h — the sessions a gateway has checked, so that a known
//  session costs no round trip to the auth service.
//
//  Bounded (TL_SESSION_CACHE_MAX entries, the oldest go first) and
//  short-lived (an entry lives TL_SESSION_CACHE_TTL_MS, or less when the
//  session itself ends sooner). Keyed by a keyed BLAKE2b hash of the token:
//  the tokens themselves are not kept. The auth service broadcasts, before
//  it answers, every change that makes an entry stale (a session ended,
//  the user's roles, time zone or verified flag changed); the gateway then
//  forgets that user's entries. A check that was in flight across such a
//  broadcast may have read the old state: its answer is used for its own
//  request but not stored (the generation says so).
#ifndef GW_SESSIONS_H_INCLUDED
#define GW_SESSIONS_H_INCLUDED

#include "tl_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _gw_sessions_t gw_sessions_t;

//  Creates an empty cache of at most `max` entries, each kept at most
//  `ttl_ms`. Returns NULL on allocation failure.
gw_sessions_t *gw_sessions_new (size_t max, uint64_t ttl_ms);

//  Destroys the cache and nulls the reference. Safe on NULL.
void gw_sessions_destroy (gw_sessions_t **self_p);

//  When the session of `token` is known and fresh at `now_ms` (monotonic),
//  copies its caller (kind user, user id, time zone, verified, roles) into
//  `msg` and returns true. Returns false otherwise (an expired entry is
//  dropped).
bool gw_sessions_lookup (gw_sessions_t *self, const char *token, uint64_t now_ms,
                         tl_msg_t *msg);

//  The current generation: read it when a check is sent, give it back to
//  gw_sessions_store with the answer.
uint64_t gw_sessions_generation (gw_sessions_t *self);

//  Keeps `caller`'s caller (as gw_sessions_lookup gives it back) for
//  `token`, until now + min (ttl, lifetime_ms). Does nothing when a user
//  was forgotten since `generation` was read, or when lifetime_ms is 0.
//  Returns 0, or TL_ENOMEM.
int gw_sessions_store (gw_sessions_t *self, const char *token, uint64_t generation,
                       const tl_msg_t *caller, uint64_t now_ms, uint64_t lifetime_ms);

//  Forgets every entry of `user_id` (every entry when NULL) and starts a
//  new generation. Returns how many entries went.
size_t gw_sessions_forget (gw_sessions_t *self, const char *user_id);

//  Entries kept, and lookups answered from the cache and not.
size_t gw_sessions_size (gw_sessions_t *self);
uint64_t gw_sessions_hits (gw_sessions_t *self);
uint64_t gw_sessions_misses (gw_sessions_t *self);

void gw_sessions_test (bool verbose);

#endif
