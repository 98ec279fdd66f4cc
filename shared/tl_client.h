//  tl_client.h — a synchronous caller on the mesh: sends requests to the
//  gateways' backends and waits for each reply until its deadline. Used by
//  services that call other services, by tallyctl and by the benchmarks.
//  One client per thread (it owns a ZeroMQ socket).
#ifndef TL_CLIENT_H_INCLUDED
#define TL_CLIENT_H_INCLUDED

#include <stdbool.h>
#include "tl_msg.h"

typedef struct _tl_client_t tl_client_t;

//  Connects to the comma-separated gateway `endpoints` (the TALLY_MESH
//  format). Requests are spread over the gateways that are connected.
//  Returns NULL on a bad endpoint list.
tl_client_t *tl_client_new (const char *endpoints);

//  Destroys the client and nulls the caller's reference. Safe on NULL.
void tl_client_destroy (tl_client_t **self_p);

//  Sends `request` (kind request, with service, method and deadline set; its
//  id is replaced by the client's own) and waits for its reply until the
//  deadline. Returns 0 and the reply in *reply_p (the caller's), or
//  TL_ETIMEDOUT, TL_EIO. Replies to earlier, abandoned calls are dropped.
int tl_client_call (tl_client_t *self, tl_msg_t *request, tl_msg_t **reply_p);

//  Sends `request` as tl_client_call does, without waiting for its reply
//  (fire and forget): for what nobody must wait on, such as a push to every
//  gateway. Replies that came back meanwhile are dropped first. Returns 0,
//  TL_EBUSY when no gateway is connected (nothing is queued) or TL_EIO.
int tl_client_post (tl_client_t *self, tl_msg_t *request);

//  Convenience: calls service.method with no body and a deadline
//  `timeout_ms` from now.
int tl_client_simple (tl_client_t *self, const char *service, const char *method,
                      int timeout_ms, tl_msg_t **reply_p);

//  Self-test.
void tl_client_test (bool verbose);

#endif
