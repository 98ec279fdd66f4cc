//  gw_streams.h — the Server-Sent Event streams a gateway holds
//  (GET /api/v1/notifications/stream; a route declared "stream": true).
//  Each stream is an HTTP response written by a content reader: it is
//  suspended while there is nothing to send and resumed when there is, so
//  that no thread and no busy loop is spent on an idle client. Streams are
//  kept by user (at most TL_STREAMS_PER_USER each, TL_STREAMS_MAX in all)
//  and get, from the pushes services broadcast (notification.push):
//      event: notification / id: <seq> / data: <the notification's JSON>
//      event: unread_count / data: {"count": n}
//  and a comment every TL_STREAM_HEARTBEAT_MS. A client that does not read
//  is cut once TL_STREAM_BACKLOG_BYTES wait unsent.
//
//  Catch-up without gap or duplicate: a stream is subscribed first (pushes
//  that arrive are held), then asks the route's service for what came
//  after its Last-Event-ID ({items, last_seq, unread_count}); it sends
//  those, then the held pushes after last_seq, and from then on every push
//  after last_seq. A Last-Event-ID that is not 1 to 18 digits is ignored.
//
//  When the auth service says a user changed (auth.user.changed), each of
//  the user's streams asks again whether its session is valid and ends
//  when it is not (a logout, a password reset).
//  Single-threaded: every call happens on the gateway's loop thread.
#ifndef GW_STREAMS_H_INCLUDED
#define GW_STREAMS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <microhttpd.h>
#include <msgpack.h>

#include "gw_broker.h"
#include "tl_msg.h"

typedef struct _gw_streams_t gw_streams_t;

//  Creates an empty set of streams that asks `broker` (borrowed; NULL in
//  self-tests: nothing is asked) for catch-ups and session checks.
//  Returns NULL when out of memory.
gw_streams_t *gw_streams_new (gw_broker_t *broker);

//  Destroys the set and nulls the caller's reference. Safe on NULL. The
//  streams must have ended first (gw_streams_close_all, then stop the
//  HTTP daemon, which frees their responses).
void gw_streams_destroy (gw_streams_t **self_p);

//  Opens a stream on `conn` for the caller of `*request_p` (the route's
//  request, caller set by the session check; taken and submitted as the
//  catch-up with param last_event_id from `last_event_id` when it is
//  valid and the query did not set one). `token` is the session's (kept
//  for re-checks). Returns the response to queue (200, text/event-stream)
//  or NULL with *status: 429 too many streams of this user, 503 too many
//  in all or out of memory.
struct MHD_Response *gw_streams_open (gw_streams_t *self, struct MHD_Connection *conn,
                                      tl_msg_t **request_p, const char *token,
                                      const char *last_event_id, int *status);

//  A broadcast (gw_broker_on_broadcast): notification.push {user_id,
//  seq?, notification?, unread_count?, version?} is written to the user's
//  streams (a count whose version is older than the one a stream sent is
//  dropped: pushes may arrive out of order);
//  auth.user.changed {user_id} re-checks their sessions. Returns true
//  when the topic is one of these and the body made sense.
bool gw_streams_on_broadcast (gw_streams_t *self, const char *topic,
                              const msgpack_object *body);

//  Heartbeats that are due and clients that hung up while suspended, at
//  most once a second. `now_ms` is a monotonic clock. Call every ~100 ms.
void gw_streams_tick (gw_streams_t *self, int64_t now_ms);

//  Ends every stream (a drain, or before the daemon stops).
void gw_streams_close_all (gw_streams_t *self);

//  Open streams, and streams cut for not reading (for /metrics).
size_t gw_streams_size (gw_streams_t *self);
uint64_t gw_streams_cut (gw_streams_t *self);

//  Self-test, run by ctest.
void gw_streams_test (bool verbose);

#endif
