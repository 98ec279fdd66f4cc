//  gw_bodies.h — one request body streamed through the mesh (routes
//  declared "body": "stream"; proto/PROTOCOL.md §3 "Streamed bodies").
//  The gateway reads at most GW_BODIES_CHUNK bytes of the body, sends the
//  request with them, and reads each next chunk only when the handler asks
//  for it (mesh.body.read, a nested request on the handler's slot): until
//  then the HTTP connection stays suspended, so a slow handler slows the
//  client down (back-pressure) and the gateway holds one chunk per
//  request, never the body. A body is at most GW_BODIES_MAX bytes.
//
//  This object keeps the bytes of the current chunk, whether the client
//  has sent everything, and the handler's read waiting for a chunk (the
//  slot's routing id and the nested request's id, to answer it).
#ifndef GW_BODIES_H_INCLUDED
#define GW_BODIES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>

#define GW_BODIES_CHUNK     (1024L * 1024)          //  bytes a chunk holds
#define GW_BODIES_MAX       (100L * 1024 * 1024)    //  bytes a body holds

typedef struct _gw_bodies_t gw_bodies_t;

//  Creates the state of one streamed body. Returns NULL on allocation
//  failure.
gw_bodies_t *gw_bodies_new (void);

//  Destroys it and nulls the caller's reference. Safe on NULL.
void gw_bodies_destroy (gw_bodies_t **self_p);

//  Takes up to `*size` bytes the client sent, as many as the chunk has
//  room for, and lowers *size by what it took. Returns 0, or TL_ETOOBIG
//  when the body passes GW_BODIES_MAX (nothing taken).
int gw_bodies_feed (gw_bodies_t *self, const char *data, size_t *size);

//  The client has sent the whole body.
void gw_bodies_end (gw_bodies_t *self);

//  True once the client has sent the whole body.
bool gw_bodies_ended (gw_bodies_t *self);

//  True when a chunk can be handed out: it is full, or the body ended.
bool gw_bodies_ready (gw_bodies_t *self);

//  True once the last chunk was handed out.
bool gw_bodies_done (gw_bodies_t *self);

//  Packs the chunk as one bin (`with_eof` false: the first chunk, into the
//  request's body) or as {"data": bin, "eof": bool} (an answer to
//  mesh.body.read), and empties it. Returns whether more chunks follow.
bool gw_bodies_take (gw_bodies_t *self, msgpack_packer *pk, bool with_eof);

//  Remembers the read waiting for a chunk: the routing id of the slot it
//  came on and the nested request's id. Returns 0, TL_EBUSY when one is
//  already waiting, or TL_EINVAL for an id too long.
int gw_bodies_wait (gw_bodies_t *self, const unsigned char *rid, size_t rid_size,
                    const char *id);

//  True when a read is waiting; then *rid, *rid_size and *id tell it
//  (borrowed). gw_bodies_answered forgets it.
bool gw_bodies_waiting (gw_bodies_t *self, const unsigned char **rid, size_t *rid_size,
                        const char **id);
void gw_bodies_answered (gw_bodies_t *self);

//  Self-test.
void gw_bodies_test (bool verbose);

#endif
