//  gw_bodies.c — the state of one streamed request body (gw_bodies.h).
#include "gw_bodies.h"
#include "tl_error.h"
#include "tl_mp.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _gw_bodies_t {
    char *chunk;                    //  GW_BODIES_CHUNK bytes
    size_t size;                    //  in the chunk now
    uint64_t total;                 //  taken in all
    bool ended;                     //  the client sent everything
    bool done;                      //  the last chunk was handed out
    bool waiting;
    unsigned char rid [256];
    size_t rid_size;
    char id [64];
};

gw_bodies_t *
gw_bodies_new (void)
{
    gw_bodies_t *self = (gw_bodies_t *) calloc (1, sizeof *self);
    if (self) {
        self->chunk = (char *) malloc (GW_BODIES_CHUNK);
        if (!self->chunk)
            gw_bodies_destroy (&self);
    }
    return self;
}

void
gw_bodies_destroy (gw_bodies_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->chunk);
        free (*self_p);
        *self_p = NULL;
    }
}

int
gw_bodies_feed (gw_bodies_t *self, const char *data, size_t *size)
{
    assert (self && size);
    size_t room = (size_t) GW_BODIES_CHUNK - self->size;
    size_t take = *size < room ? *size : room;
    if (self->total + take > (uint64_t) GW_BODIES_MAX)
        return TL_ETOOBIG;
    memcpy (self->chunk + self->size, data, take);
    self->size += take;
    self->total += take;
    *size -= take;
    return 0;
}

void
gw_bodies_end (gw_bodies_t *self)
{
    assert (self);
    self->ended = true;
}

bool
gw_bodies_ended (gw_bodies_t *self)
{
    assert (self);
    return self->ended;
}

bool
gw_bodies_ready (gw_bodies_t *self)
{
    assert (self);
    return !self->done && (self->ended || self->size == (size_t) GW_BODIES_CHUNK);
}

bool
gw_bodies_done (gw_bodies_t *self)
{
    assert (self);
    return self->done;
}

bool
gw_bodies_take (gw_bodies_t *self, msgpack_packer *pk, bool with_eof)
{
    assert (self && pk);
    bool eof = self->ended;
    if (with_eof) {
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "data");
    }
    msgpack_pack_bin (pk, (uint32_t) self->size);
    msgpack_pack_bin_body (pk, self->chunk, self->size);
    if (with_eof) {
        tl_mp_pack_str (pk, "eof");
        if (eof)
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
    }
    self->size = 0;
    self->done = eof;
    return !eof;
}

int
gw_bodies_wait (gw_bodies_t *self, const unsigned char *rid, size_t rid_size, const char *id)
{
    assert (self);
    if (self->waiting)
        return TL_EBUSY;
    if (rid_size > sizeof self->rid || strlen (id) >= sizeof self->id)
        return TL_EINVAL;
    memcpy (self->rid, rid, rid_size);
    self->rid_size = rid_size;
    snprintf (self->id, sizeof self->id, "%s", id);
    self->waiting = true;
    return 0;
}

bool
gw_bodies_waiting (gw_bodies_t *self, const unsigned char **rid, size_t *rid_size,
                   const char **id)
{
    assert (self);
    if (self->waiting) {
        *rid = self->rid;
        *rid_size = self->rid_size;
        *id = self->id;
    }
    return self->waiting;
}

void
gw_bodies_answered (gw_bodies_t *self)
{
    assert (self);
    self->waiting = false;
}

//  --------------------------------------------------------------------------

void
gw_bodies_test (bool verbose)
{
    printf (" * gw_bodies: ");
    (void) verbose;
    gw_bodies_t *body = gw_bodies_new ();
    assert (body);
    //  A chunk fills, is taken, and the rest of a feed waits for the next
    char *data = (char *) calloc (1, GW_BODIES_CHUNK + 10);
    assert (data);
    size_t size = GW_BODIES_CHUNK + 10;
    assert (gw_bodies_feed (body, data, &size) == 0 && size == 10);
    assert (gw_bodies_ready (body));
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    assert (gw_bodies_take (body, &pk, false));             //  more follows
    assert (sbuf.size == GW_BODIES_CHUNK + 5);              //  bin32 head + bytes
    assert (!gw_bodies_ready (body));
    assert (gw_bodies_feed (body, data, &size) == 0 && size == 0);
    assert (!gw_bodies_ready (body));
    gw_bodies_end (body);
    assert (gw_bodies_ready (body));
    msgpack_sbuffer_clear (&sbuf);
    assert (!gw_bodies_take (body, &pk, true));             //  the last one
    assert (gw_bodies_done (body) && !gw_bodies_ready (body));
    msgpack_zone zone;
    msgpack_zone_init (&zone, 256);
    msgpack_object obj;
    assert (msgpack_unpack (sbuf.data, sbuf.size, NULL, &zone, &obj) == MSGPACK_UNPACK_SUCCESS);
    assert (obj.type == MSGPACK_OBJECT_MAP && obj.via.map.size == 2);
    assert (tl_mp_get (&obj, "data")->via.bin.size == 10);
    assert (tl_mp_get (&obj, "eof")->via.boolean);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);
    //  One read waits at a time
    const unsigned char *rid;
    size_t rid_size;
    const char *id;
    assert (!gw_bodies_waiting (body, &rid, &rid_size, &id));
    assert (gw_bodies_wait (body, (const unsigned char *) "ab", 2, "n1.1") == 0);
    assert (gw_bodies_wait (body, (const unsigned char *) "ab", 2, "n1.2") == TL_EBUSY);
    assert (gw_bodies_waiting (body, &rid, &rid_size, &id) && rid_size == 2
         && strcmp (id, "n1.1") == 0);
    gw_bodies_answered (body);
    assert (!gw_bodies_waiting (body, &rid, &rid_size, &id));
    //  The bound of a body
    gw_bodies_t *big = gw_bodies_new ();
    size_t total = 0;
    int rc = 0;
    while (rc == 0) {
        size = GW_BODIES_CHUNK;
        rc = gw_bodies_feed (big, data, &size);
        if (rc == 0) {
            total += GW_BODIES_CHUNK;
            msgpack_sbuffer_init (&sbuf);
            gw_bodies_take (big, &pk, true);
            msgpack_sbuffer_destroy (&sbuf);
        }
    }
    assert (rc == TL_ETOOBIG && total == (size_t) GW_BODIES_MAX);
    gw_bodies_destroy (&big);
    free (data);
    gw_bodies_destroy (&body);
    gw_bodies_destroy (&body);
    printf ("OK\n");
}
