//  tl_client.c — a synchronous caller on the mesh.
#include "tl_client.h"
#include "tl_curve.h"
#include "tl_error.h"
#include "tl_limits.h"

#include <czmq.h>
#include <sodium.h>

struct _tl_client_t {
    zsock_t *sock;
    uint64_t sequence;
    char prefix [24];
};

tl_client_t *
tl_client_new (const char *endpoints)
{
    if (!endpoints || !*endpoints)
        return NULL;
    tl_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        free (self);
        return NULL;
    }
    zsock_set_linger (self->sock, 0);
    zsock_set_immediate (self->sock, 1);
    zsock_set_maxmsgsize (self->sock, TL_MAX_FRAME_BYTES);
    zsock_set_sndhwm (self->sock, TL_MESH_HWM);
    zsock_set_rcvhwm (self->sock, TL_MESH_HWM);
    snprintf (self->prefix, sizeof self->prefix, "c%08x-", randombytes_random ());
    int rc = tl_curve_client (self->sock);
    char *list = strdup (endpoints);
    char *save = NULL;
    for (char *ep = strtok_r (list, ",", &save); rc == 0 && ep; ep = strtok_r (NULL, ",", &save))
        rc = zsock_connect (self->sock, "%s", ep);
    free (list);
    if (rc) {
        zsock_destroy (&self->sock);
        free (self);
        return NULL;
    }
    return self;
}

void
tl_client_destroy (tl_client_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zsock_destroy (&(*self_p)->sock);
        free (*self_p);
        *self_p = NULL;
    }
}

int
tl_client_call (tl_client_t *self, tl_msg_t *request, tl_msg_t **reply_p)
{
    *reply_p = NULL;
    char id [TL_MAX_ID_LEN];
    snprintf (id, sizeof id, "%s%" PRIu64, self->prefix, ++self->sequence);
    tl_msg_set_str (request, TL_MSG_ID, id);
    if (tl_curve_peer () && !tl_msg_str (request, TL_MSG_PEER))
        tl_msg_set_str (request, TL_MSG_PEER, tl_curve_peer ());
    uint64_t deadline = tl_msg_deadline (request);
    void *sock = zsock_resolve (self->sock);

    //  With ZMQ_IMMEDIATE a send waits until some gateway is connected: try
    //  until the deadline rather than fail on a slow first connect.
    while (true) {
        int rc = tl_msg_send (request, sock, NULL, 0);
        if (rc == 0)
            break;
        if (rc != TL_EBUSY || tl_msg_now_ms () >= deadline)
            return rc == TL_EBUSY ? TL_ETIMEDOUT : rc;
        zclock_sleep (5);
    }
    while (true) {
        uint64_t now = tl_msg_now_ms ();
        if (now >= deadline)
            return TL_ETIMEDOUT;
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll (&item, 1, (long) (deadline - now));
        if (n < 0 && errno != EINTR)
            return TL_EIO;
        if (n <= 0)
            continue;
        zmsg_t *zmsg = zmsg_recv_nowait (self->sock);
        if (!zmsg)
            continue;
        zframe_t *frame = zmsg_first (zmsg);
        tl_msg_t *msg = NULL;
        if (zmsg_size (zmsg) == 1)
            tl_msg_decode (zframe_data (frame), zframe_size (frame), &msg);
        zmsg_destroy (&zmsg);
        if (msg && tl_msg_kind (msg) == TL_MSG_REPLY
        &&  streq (tl_msg_str (msg, TL_MSG_ID), id)) {
            *reply_p = msg;
            return 0;
        }
        tl_msg_destroy (&msg);  //  heartbeat, or a reply we gave up on
    }
}

int
tl_client_post (tl_client_t *self, tl_msg_t *request)
{
    //  What came back for earlier posts (or abandoned calls) is dropped,
    //  so that the receive queue stays short.
    zmsg_t *stale;
    while ((stale = zmsg_recv_nowait (self->sock)))
        zmsg_destroy (&stale);
    char id [TL_MAX_ID_LEN];
    snprintf (id, sizeof id, "%s%" PRIu64, self->prefix, ++self->sequence);
    tl_msg_set_str (request, TL_MSG_ID, id);
    if (tl_curve_peer () && !tl_msg_str (request, TL_MSG_PEER))
        tl_msg_set_str (request, TL_MSG_PEER, tl_curve_peer ());
    int rc = tl_msg_send (request, zsock_resolve (self->sock), NULL, 0);
    return rc == 0 || rc == TL_EBUSY ? rc : TL_EIO;
}

int
tl_client_simple (tl_client_t *self, const char *service, const char *method,
                  int timeout_ms, tl_msg_t **reply_p)
{
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    if (!request)
        return TL_ENOMEM;
    tl_msg_set_str (request, TL_MSG_SERVICE, service);
    tl_msg_set_str (request, TL_MSG_METHOD, method);
    tl_msg_set_deadline (request, tl_msg_now_ms () + (uint64_t) timeout_ms);
    int rc = tl_client_call (self, request, reply_p);
    tl_msg_destroy (&request);
    return rc;
}

void
tl_client_test (bool verbose)
{
    //  Against a ROUTER that plays the gateway: the reply with our id is
    //  taken, a stale one is dropped, and a silent peer times out.
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert (tl_client_new ("") == NULL);
    tl_client_t *client = tl_client_new (endpoint);
    assert (client);

    //  Timeout: nobody answers.
    tl_msg_t *reply = NULL;
    assert (tl_client_simple (client, "mesh", "ping", 200, &reply) == TL_ETIMEDOUT);
    //  Drain what the router received.
    zmsg_t *got = zmsg_recv (router);
    assert (got);
    zframe_t *who = zmsg_pop (got);
    zframe_t *frame = zmsg_pop (got);
    tl_msg_t *first = NULL;
    assert (tl_msg_decode (zframe_data (frame), zframe_size (frame), &first) == 0);
    zframe_destroy (&frame);
    zmsg_destroy (&got);

    //  A second call: the router answers the stale id first, then this one.
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (request, TL_MSG_SERVICE, "mesh");
    tl_msg_set_str (request, TL_MSG_METHOD, "ping");
    tl_msg_set_deadline (request, tl_msg_now_ms () + 3000);
    //  The router runs in this thread, so send the answers before calling:
    //  the client's id is predictable (sequence 2).
    char id [TL_MAX_ID_LEN];
    snprintf (id, sizeof id, "%s2", client->prefix);
    const char *ids [] = { tl_msg_str (first, TL_MSG_ID), id };
    for (int i = 0; i < 2; i++) {
        tl_msg_t *rep = tl_msg_new (TL_MSG_REPLY);
        tl_msg_set_str (rep, TL_MSG_ID, ids [i]);
        tl_msg_set_status (rep, 200 + i);
        assert (tl_msg_send (rep, zsock_resolve (router), zframe_data (who), zframe_size (who)) == 0);
        tl_msg_destroy (&rep);
    }
    assert (tl_client_call (client, request, &reply) == 0);
    assert (tl_msg_status (reply) == 201);
    tl_msg_destroy (&reply);
    tl_msg_destroy (&request);
    tl_msg_destroy (&first);

    //  A post leaves at once and reaches the router without a reply.
    tl_msg_t *post = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (post, TL_MSG_SERVICE, "mesh");
    tl_msg_set_str (post, TL_MSG_METHOD, "broadcast");
    tl_msg_set_deadline (post, tl_msg_now_ms () + 3000);
    assert (tl_client_post (client, post) == 0);
    zmsg_t *posted = zmsg_recv (router);
    assert (posted && zmsg_size (posted) == 2);
    zmsg_destroy (&posted);
    tl_msg_destroy (&post);
    zframe_destroy (&who);
    tl_client_destroy (&client);
    tl_client_destroy (&client);
    zsock_destroy (&router);
    if (verbose)
        printf ("(client ok) ");
}
