//  gw_broker.h — the broker embedded in every gateway (proto/PROTOCOL.md).
//  It binds the mesh backend (a ROUTER socket), keeps the live instances of
//  each service with their capacity and in-flight requests, dispatches each
//  request to the least recently used instance with a free slot, queues the
//  rest (bounded; also while a service has no instance, so that a restart
//  loses nothing), heartbeats both ways, answers 504 at a request's deadline,
//  and when an instance dies re-dispatches its idempotent requests and
//  answers the others 503. Requests come from the gateway's HTTP side
//  (with a callback) or from peers on the mesh (services, tallyctl).
//  Single-threaded: every call happens on the gateway's loop thread.
#ifndef GW_BROKER_H_INCLUDED
#define GW_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "tl_msg.h"

typedef struct _gw_broker_t gw_broker_t;

//  Receives the reply to a submitted request: from an instance, or made by
//  the broker (503 worker_lost, 504 deadline). Takes the reply.
typedef void (gw_reply_fn) (void *arg, tl_msg_t **reply_p);

//  Binds the backend at `endpoint` (e.g. tcp://127.0.0.1:5555) with CURVE
//  when configured (tl_curve). `name` identifies this gateway in status
//  replies. Returns NULL if the endpoint cannot be bound.
gw_broker_t *gw_broker_new (const char *endpoint, const char *name);

//  Destroys the broker and nulls the caller's reference: tells every peer
//  "disconnect" and drops pending requests without calling back.
void gw_broker_destroy (gw_broker_t **self_p);

//  The backend's raw ZeroMQ socket, to poll for input.
void *gw_broker_socket (gw_broker_t *self);

//  Declares a service that the routes name, so that /readyz and status know
//  to expect it even before an instance appears.
void gw_broker_declare (gw_broker_t *self, const char *service);

//  Submits a request (taken). Its id is replaced by the broker's own. On 0
//  exactly one call of `fn` follows, later, unless gw_broker_cancel is called
//  first; *handle identifies the request. A service with no live instance
//  (restarting, or never seen yet) holds the request in its queue until an
//  instance comes or the deadline passes (then 503 no_instance), unless
//  the request is `nowait` (tl_msg_nowait). Returns TL_EBUSY when the
//  queue is full, TL_EUNAVAIL for a `nowait` request to a service with no
//  live instance, or when the broker already tracks TL_MESH_MAX_SERVICES
//  services and this is another (and `fn` is never called).
int gw_broker_submit (gw_broker_t *self, tl_msg_t **request_p,
                      gw_reply_fn *fn, void *arg, uint64_t *handle);

//  What a gateway does with a broadcast from a service (mesh.broadcast
//  {topic, body?}; PROTOCOL.md §3): `topic` is "<service>.<name>", `body`
//  the unpacked body or NULL, both borrowed for the call. Returns whether
//  the gateway acted on it (a session dropped, a push sent).
typedef bool (gw_broadcast_fn) (void *arg, const char *topic, const msgpack_object *body);

//  Sets the broadcast handler (one per gateway; NULL: broadcasts are
//  acknowledged and counted only).
void gw_broker_on_broadcast (gw_broker_t *self, gw_broadcast_fn *fn, void *arg);

//  A handler asks for the next chunk of a streamed body (mesh.body.read, a
//  nested request whose `parent` is in flight on the connection it came
//  on; gw_bodies.h): `request_arg` is the `arg` its parent was submitted
//  with; the read is answered with gw_broker_answer to (rid, id), at once
//  or later.
typedef void (gw_body_read_fn) (void *arg, void *request_arg, const unsigned char *rid,
                                size_t rid_size, const char *id);
//  Sets the body read handler (one per gateway; NULL: such reads are 404):
//  it gets the reads of requests submitted with callback `owner` only.
void gw_broker_on_body_read (gw_broker_t *self, gw_body_read_fn *fn, void *arg,
                             gw_reply_fn *owner);
//  Sends a reply {id, status, body?} (`body`: one packed MessagePack
//  value, or NULL) to the peer at routing id `rid`. Returns 0 or a code.
int gw_broker_answer (gw_broker_t *self, const unsigned char *rid, size_t rid_size,
                      const char *id, int status, const void *body, size_t size);
//  Forgets the callback of a submitted request (the client went away).
void gw_broker_cancel (gw_broker_t *self, uint64_t handle);

//  Reads and handles every message waiting on the backend. Never blocks.
void gw_broker_recv (gw_broker_t *self);

//  Sends heartbeats, expires silent instances and overdue requests.
//  Call at least every 100 ms.
void gw_broker_tick (gw_broker_t *self);

//  Marks the gateway as draining in mesh.status replies.
void gw_broker_set_draining (gw_broker_t *self);

//  Requests alive in the broker (queued or in flight).
size_t gw_broker_pending (gw_broker_t *self);

//  Fills `missing` (a JSON array) with each declared service that has no
//  live instance whose database answers. Returns how many were added.
int gw_broker_missing (gw_broker_t *self, json_t *missing);

//  Appends Prometheus lines for live instances, queue depths and requests
//  in flight per service to `out` (a string the caller frees).
char *gw_broker_metrics (gw_broker_t *self);

//  Self-test.
void gw_broker_test (bool verbose);

#endif
