//  gw_calls.h — Tally watches itself: a gateway records each call it serves
//  (method and route template as the endpoint, status, duration, client
//  address, time) in a bounded ring and ships them in batches to the
//  analytics service (calls.ingest), fire-and-forget: recording never
//  blocks nor allocates, a full ring drops the call, and a batch the
//  service does not take is dropped too; both are counted for /metrics.
//  Single-threaded: every call happens on the gateway's loop thread.
#ifndef GW_CALLS_H_INCLUDED
#define GW_CALLS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gw_broker.h"
#include "tl_msg.h"

#define GW_CALLS_CAPACITY       16384   //  calls waiting at most
#define GW_CALLS_BATCH          1000    //  calls in one calls.ingest
#define GW_CALLS_FLUSH_MS       1000    //  a partial batch waits at most this
#define GW_CALLS_IN_FLIGHT      4       //  batches sent and not answered
#define GW_CALLS_TIMEOUT_MS     5000    //  a batch's deadline
#define GW_CALLS_ENDPOINT_MAX   200     //  bytes of "METHOD /route/{template}"

//  Sends one request (taken) and calls `fn (arg, &reply)` once with its
//  answer, as gw_broker_submit does. Returns 0 or a code (then `fn` is
//  never called).
typedef int (gw_calls_ship_fn) (void *ship_arg, tl_msg_t **request_p,
                                gw_reply_fn *fn, void *arg);

typedef struct _gw_calls_t gw_calls_t;

//  Creates the ring of `capacity` calls (1..GW_CALLS_CAPACITY) whose
//  batches go out through `ship` (ship_arg is its first argument), each
//  with `version` (the gateway's; at most 100 bytes). Returns NULL on a
//  bad argument or when memory runs out.
gw_calls_t *gw_calls_new (size_t capacity, const char *version, gw_calls_ship_fn *ship,
                          void *ship_arg);

//  Destroys the ring and nulls the caller's reference. Safe on NULL. The
//  shipper must answer no batch after this (a broker destroyed first
//  answers none).
void gw_calls_destroy (gw_calls_t **self_p);

//  Records one call: `method` and `route` (the route's template) make its
//  endpoint, cut at GW_CALLS_ENDPOINT_MAX bytes; `ip` its client address
//  (at most 45 bytes; longer is kept empty), `time_us` when it started
//  (µs since the epoch). Counts a drop when the ring is full.
void gw_calls_record (gw_calls_t *self, const char *method, const char *route, int status,
                      double ms, const char *ip, int64_t time_us);

//  Ships what is due at monotonic time `now_ms`: full batches, and a
//  partial one whose oldest call has waited GW_CALLS_FLUSH_MS, while
//  fewer than GW_CALLS_IN_FLIGHT batches are unanswered. Call it often.
void gw_calls_tick (gw_calls_t *self, int64_t now_ms);

//  Counters: calls recorded, acknowledged by analytics, and dropped (the
//  ring full, a batch refused, timed out or not sent); calls waiting.
uint64_t gw_calls_recorded (gw_calls_t *self);
uint64_t gw_calls_shipped (gw_calls_t *self);
uint64_t gw_calls_dropped (gw_calls_t *self);
size_t gw_calls_waiting (gw_calls_t *self);

//  The counters as Prometheus text (the caller's, free it), or NULL.
char *gw_calls_metrics (gw_calls_t *self);

//  Self-test.
void gw_calls_test (bool verbose);

#endif
