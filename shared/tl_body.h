//  tl_body.h — a handler's reader of its request's body, whole or streamed
//  (routes declared "body": "stream"; proto/PROTOCOL.md §3 "Streamed
//  bodies"). The request carries the body's first chunk (a bin) and the
//  param body_stream ("more" or "end"); each next chunk is asked for with
//  mesh.body.read, a nested request to the gateway the request came from,
//  which reads that much more of the client's body only then: the
//  handler's pace is the client's (back-pressure), and neither side holds
//  more than a chunk. A request of any other route reads as one chunk.
//
//      tl_body_t *body = tl_body_new (call);
//      char buf [65536];
//      long n;
//      while ((n = tl_body_read (body, buf, sizeof buf)) > 0)
//          ...;                            //  n < 0: the body was cut off
//      tl_body_destroy (&body);
#ifndef TL_BODY_H_INCLUDED
#define TL_BODY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tl_call.h"

typedef struct _tl_body_t tl_body_t;

//  A reader of `call`'s body (borrowed: the call outlives the reader).
//  Returns NULL on allocation failure, or when the body is not bytes (a
//  bin, a string, or none).
tl_body_t *tl_body_new (tl_call_t *call);

//  Destroys the reader and nulls the caller's reference. Safe on NULL.
void tl_body_destroy (tl_body_t **self_p);

//  Copies up to `cap` (> 0) next bytes of the body into `buf`. Returns how
//  many (at least 1), 0 at the end of the body, or: TL_EIO when the body was
//  cut off (the client went away or sent too much: the request is over),
//  TL_ETIMEDOUT at the request's deadline, TL_EUNAVAIL when the gateway
//  could not be asked. After an error every read returns the same.
long tl_body_read (tl_body_t *self, void *buf, size_t cap);

//  Starts over from the first byte, for a transaction that runs again.
//  Returns 0, or TL_EBUSY once a chunk after the first was read (those
//  bytes are gone).
int tl_body_rewind (tl_body_t *self);

//  Bytes read so far.
uint64_t tl_body_consumed (tl_body_t *self);

//  Self-test.
void tl_body_test (bool verbose);

#endif
