//  tl_body.c — the reader of a request's body, whole or streamed
//  (tl_body.h).
#include "tl_body.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_msg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _tl_body_t {
    tl_call_t *call;
    const char *data;               //  the chunk being read
    size_t size, offset;
    bool eof;                       //  no chunk after this one
    bool later;                     //  a chunk after the first was read
    const char *first;              //  the request's own chunk
    size_t first_size;
    bool first_eof;
    tl_msg_t *reply;                //  holds the current later chunk
    uint64_t consumed;
    int error;
};

//  The bytes of a bin or string object, or false.
static bool
s_bytes (const msgpack_object *obj, const char **data, size_t *size)
{
    if (!obj || obj->type == MSGPACK_OBJECT_NIL) {
        *data = "";
        *size = 0;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_BIN) {
        *data = obj->via.bin.ptr ? obj->via.bin.ptr : "";
        *size = obj->via.bin.size;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_STR) {
        *data = obj->via.str.ptr ? obj->via.str.ptr : "";
        *size = obj->via.str.size;
        return true;
    }
    return false;
}

tl_body_t *
tl_body_new (tl_call_t *call)
{
    assert (call);
    const char *data;
    size_t size;
    if (!s_bytes (tl_call_body (call), &data, &size))
        return NULL;
    tl_body_t *self = (tl_body_t *) calloc (1, sizeof *self);
    if (self) {
        const char *stream = tl_call_param (call, "body_stream");
        self->call = call;
        self->first = self->data = data;
        self->first_size = self->size = size;
        self->first_eof = self->eof = !(stream && strcmp (stream, "more") == 0);
    }
    return self;
}

void
tl_body_destroy (tl_body_t **self_p)
{
    if (self_p && *self_p) {
        tl_msg_destroy (&(*self_p)->reply);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Asks the gateway for the next chunk. Returns 0 or a code.
static int
s_next (tl_body_t *self)
{
    tl_msg_destroy (&self->reply);
    int rc = tl_call_call (self->call, "mesh", "body.read", NULL, 0, &self->reply);
    if (rc)
        return rc == TL_ETIMEDOUT ? TL_ETIMEDOUT : TL_EUNAVAIL;
    if (tl_msg_status (self->reply) != 200)
        return TL_EIO;              //  410: the request is over; 409: not streamed
    const msgpack_object *body = tl_msg_body (self->reply);
    const msgpack_object *eof = body ? tl_mp_get (body, "eof") : NULL;
    if (!body || !eof || eof->type != MSGPACK_OBJECT_BOOLEAN
    ||  !s_bytes (tl_mp_get (body, "data"), &self->data, &self->size))
        return TL_EIO;
    self->eof = eof->via.boolean;
    self->offset = 0;
    self->later = true;
    return 0;
}

long
tl_body_read (tl_body_t *self, void *buf, size_t cap)
{
    assert (self && buf && cap > 0);
    if (self->error)
        return self->error;
    while (self->offset == self->size) {
        if (self->eof)
            return 0;
        int rc = s_next (self);
        if (rc) {
            self->error = rc;
            return rc;
        }
    }
    size_t n = self->size - self->offset < cap ? self->size - self->offset : cap;
    memcpy (buf, self->data + self->offset, n);
    self->offset += n;
    self->consumed += n;
    return (long) n;
}

int
tl_body_rewind (tl_body_t *self)
{
    assert (self);
    if (self->later)
        return TL_EBUSY;
    self->data = self->first;
    self->size = self->first_size;
    self->eof = self->first_eof;
    self->offset = 0;
    self->consumed = 0;
    self->error = 0;
    return 0;
}

uint64_t
tl_body_consumed (tl_body_t *self)
{
    assert (self);
    return self->consumed;
}

//  --------------------------------------------------------------------------
//  Self-test: a request whose nested calls a fake gateway answers with
//  chunks "bcd" and "" (eof), then a cut-off one.

#include "tl_private.h"

typedef struct {
    int reads;
    int status;                     //  of the answers
} s_fake_t;

static int
s_fake_gateway (void *arg, tl_msg_t **request_p, uint64_t deadline, tl_msg_t **reply_p)
{
    (void) deadline;
    s_fake_t *fake = (s_fake_t *) arg;
    assert (strcmp (tl_msg_str (*request_p, TL_MSG_SERVICE), "mesh") == 0);
    assert (strcmp (tl_msg_str (*request_p, TL_MSG_METHOD), "body.read") == 0);
    tl_msg_destroy (request_p);
    fake->reads++;
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_status (reply, fake->status);
    if (fake->status == 200) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_str (&pk, "data");
        const char *data = fake->reads == 1 ? "bcd" : "";
        msgpack_pack_bin (&pk, (uint32_t) strlen (data));
        msgpack_pack_bin_body (&pk, data, strlen (data));
        tl_mp_pack_str (&pk, "eof");
        if (fake->reads == 1)
            msgpack_pack_false (&pk);
        else
            msgpack_pack_true (&pk);
        tl_msg_set_body (reply, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
    }
    *reply_p = reply;
    return 0;
}

static tl_call_t *
s_test_call (const char *stream, s_fake_t *fake)
{
    tl_msg_t *req = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (req, TL_MSG_ID, "1");
    tl_msg_set_str (req, TL_MSG_SERVICE, "s");
    tl_msg_set_str (req, TL_MSG_METHOD, "m");
    tl_msg_set_deadline (req, tl_msg_now_ms () + 5000);
    if (stream)
        tl_msg_add_param (req, "body_stream", stream);
    char body [] = { (char) 0xc4, 1, 'a' };            //  bin8 "a"
    tl_msg_set_body (req, body, sizeof body);
    tl_call_t *call = tl_call_new (&req, NULL);
    tl_call_set_runtime (call, s_fake_gateway, fake);
    return call;
}

void
tl_body_test (bool verbose)
{
    printf (" * tl_body: ");
    (void) verbose;
    char buf [8];
    //  A whole body: one chunk, no nested call
    s_fake_t fake = { 0, 200 };
    tl_call_t *call = s_test_call (NULL, &fake);
    tl_body_t *body = tl_body_new (call);
    assert (body);
    assert (tl_body_read (body, buf, sizeof buf) == 1 && buf [0] == 'a');
    assert (tl_body_read (body, buf, sizeof buf) == 0);
    assert (fake.reads == 0 && tl_body_consumed (body) == 1);
    assert (tl_body_rewind (body) == 0);
    assert (tl_body_read (body, buf, sizeof buf) == 1);
    tl_body_destroy (&body);
    tl_body_destroy (&body);
    tl_call_destroy (&call);

    //  A streamed body: "a", then "bcd" read two bytes at a time, then eof
    call = s_test_call ("more", &fake);
    body = tl_body_new (call);
    assert (tl_body_read (body, buf, 2) == 1 && buf [0] == 'a');
    assert (tl_body_read (body, buf, 2) == 2 && memcmp (buf, "bc", 2) == 0);
    assert (tl_body_read (body, buf, 2) == 1 && buf [0] == 'd');
    assert (tl_body_read (body, buf, 2) == 0);
    assert (tl_body_read (body, buf, 2) == 0);
    assert (fake.reads == 2 && tl_body_consumed (body) == 4);
    assert (tl_body_rewind (body) == TL_EBUSY);
    tl_body_destroy (&body);
    tl_call_destroy (&call);

    //  Cut off: the gateway answers 410; the error sticks
    fake = (s_fake_t) { 0, 410 };
    call = s_test_call ("more", &fake);
    body = tl_body_new (call);
    assert (tl_body_read (body, buf, sizeof buf) == 1);
    assert (tl_body_read (body, buf, sizeof buf) == TL_EIO);
    assert (tl_body_read (body, buf, sizeof buf) == TL_EIO && fake.reads == 1);
    tl_body_destroy (&body);
    tl_call_destroy (&call);
    printf ("OK\n");
}
