//  gw_broker.c — the broker embedded in every gateway.
//
//  State: peers (by routing id), services (by name; each with its instances
//  in least-recently-used order and its queue), and requests (by the
//  broker's id). A request is queued (worker == NULL) or in flight on one
//  instance; "answered" marks one whose origin already got its 504 and
//  which only waits for the instance to give its slot back.
#include "gw_broker.h"
#include "tl_curve.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <czmq.h>

typedef struct _s_service_t s_service_t;

typedef struct {
    char key [2 * 256 + 1];         //  routing id in hex
    unsigned char rid [256];
    size_t rid_size;
    char *instance;
    s_service_t *service;           //  NULL for peers that only call
    int capacity;
    int in_flight;
    bool draining;
    int db_ok;                      //  -1 unknown
    uint64_t last_seen;             //  monotonic ms
    void *lru_handle;               //  position in service->instances
} s_peer_t;

//  Who a peer is: with CURVE, the "peer" property of its key's
//  certificate in the allow list (service:<name>, operator, gateway); on
//  an insecure mesh, what it claims.
#define S_IDENTITY_MAX (TL_MAX_NAME_LEN + 16)

struct _s_service_t {
    char *name;
    bool declared;
    zlistx_t *instances;            //  s_peer_t *, least recently used first
    zlistx_t *queue;                //  s_request_t *, oldest first
};

typedef struct {
    uint64_t handle;
    char id [24];
    tl_msg_t *msg;
    s_service_t *service;
    s_peer_t *worker;
    uint64_t deadline;              //  wall-clock ms (the envelope's)
    bool idempotent;
    bool answered;
    bool too_large;                 //  can never be sent: answered 413 at the next tick
    void *queue_handle;
    //  Origin: a callback, or a peer on the mesh
    gw_reply_fn *fn;
    void *arg;
    unsigned char origin_rid [256];
    size_t origin_rid_size;
    char *origin_id;
} s_request_t;

struct _gw_broker_t {
    char *name;
    zsock_t *backend;
    zactor_t *auth;
    zhashx_t *peers;                //  hex routing id → s_peer_t
    zhashx_t *services;             //  name → s_service_t
    zhashx_t *requests;             //  id → s_request_t
    uint64_t next_handle;
    uint64_t next_heartbeat;
    uint64_t next_deadline_scan;
    bool draining;
    uint64_t refused;               //  peers refused an announcement
    gw_broadcast_fn *broadcast_fn;
    void *broadcast_arg;
    uint64_t broadcasts;            //  broadcasts acknowledged
};

static uint64_t
s_mono_ms (void)
{
    return (uint64_t) zclock_mono ();
}

static void
s_hex (const unsigned char *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * size] = 0;
}

//  ---------------------------------------------------------------------
//  Construction

static void
s_peer_free (void **item)
{
    s_peer_t *peer = (s_peer_t *) *item;
    if (peer) {
        free (peer->instance);
        free (peer);
        *item = NULL;
    }
}

static void
s_service_free (void **item)
{
    s_service_t *service = (s_service_t *) *item;
    if (service) {
        zlistx_destroy (&service->instances);
        zlistx_destroy (&service->queue);
        free (service->name);
        free (service);
        *item = NULL;
    }
}

static void
s_request_free (void **item)
{
    s_request_t *request = (s_request_t *) *item;
    if (request) {
        tl_msg_destroy (&request->msg);
        free (request->origin_id);
        free (request);
        *item = NULL;
    }
}

gw_broker_t *
gw_broker_new (const char *endpoint, const char *name)
{
    gw_broker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup (name);
    self->peers = zhashx_new ();
    self->services = zhashx_new ();
    self->requests = zhashx_new ();
    self->backend = zsock_new (ZMQ_ROUTER);
    if (!self->name || !self->peers || !self->services || !self->requests
    ||  !self->backend) {
        gw_broker_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->peers, s_peer_free);
    zhashx_set_destructor (self->services, s_service_free);
    zhashx_set_destructor (self->requests, s_request_free);
    zsock_set_router_mandatory (self->backend, 1);
    zsock_set_sndhwm (self->backend, TL_MESH_HWM);
    zsock_set_rcvhwm (self->backend, TL_MESH_HWM);
    zsock_set_linger (self->backend, 0);
    zsock_set_maxmsgsize (self->backend, TL_MAX_FRAME_BYTES);
    if (tl_curve_server (self->backend, endpoint, &self->auth) != 0
    ||  zsock_bind (self->backend, "%s", endpoint) < 0) {
        tl_log (TL_LOG_ERROR, NULL, "cannot bind mesh backend %s: %s",
                endpoint, zmq_strerror (zmq_errno ()));
        gw_broker_destroy (&self);
        return NULL;
    }
    self->next_heartbeat = s_mono_ms () + TL_HEARTBEAT_MSEC;
    return self;
}

static void s_send_kind (gw_broker_t *self, const unsigned char *rid, size_t rid_size,
                         tl_msg_kind_t kind);

void
gw_broker_destroy (gw_broker_t **self_p)
{
    assert (self_p);
    gw_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->peers && self->backend) {
        for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
             peer = (s_peer_t *) zhashx_next (self->peers))
            s_send_kind (self, peer->rid, peer->rid_size, TL_MSG_DISCONNECT);
    }
    zhashx_destroy (&self->requests);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->services);
    zsock_destroy (&self->backend);
    zactor_destroy (&self->auth);
    free (self->name);
    free (self);
    *self_p = NULL;
}

void *
gw_broker_socket (gw_broker_t *self)
{
    return zsock_resolve (self->backend);
}

static s_service_t *
s_service_require (gw_broker_t *self, const char *name)
{
    s_service_t *service = (s_service_t *) zhashx_lookup (self->services, name);
    if (service)
        return service;
    service = calloc (1, sizeof *service);
    if (!service)
        return NULL;
    service->name = strdup (name);
    service->instances = zlistx_new ();
    service->queue = zlistx_new ();
    if (!service->name || !service->instances || !service->queue) {
        void *item = service;
        s_service_free (&item);
        return NULL;
    }
    zhashx_insert (self->services, name, service);
    return service;
}

//  Forgets a service that no route declares once nothing uses it (no
//  instance, nothing queued, no peer of it), so that requests for names
//  that never come cannot fill the table.
static void
s_service_forget (gw_broker_t *self, s_service_t *service)
{
    if (service->declared || zlistx_size (service->instances)
    ||  zlistx_size (service->queue))
        return;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->service == service)
            return;
    zhashx_delete (self->services, service->name);
}

void
gw_broker_declare (gw_broker_t *self, const char *service)
{
    s_service_t *s = s_service_require (self, service);
    if (s)
        s->declared = true;
}

//  ---------------------------------------------------------------------
//  Sending

static void
s_send_kind (gw_broker_t *self, const unsigned char *rid, size_t rid_size,
             tl_msg_kind_t kind)
{
    tl_msg_t *msg = tl_msg_new (kind);
    if (msg) {
        tl_msg_set_str (msg, TL_MSG_INSTANCE, self->name);
        tl_msg_send (msg, zsock_resolve (self->backend), rid, rid_size);
        tl_msg_destroy (&msg);
    }
}

//  Makes a reply that the broker itself gives, in the API's error shape.
static tl_msg_t *
s_make_error (int status, const char *code, const char *message)
{
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    if (!reply)
        return NULL;
    tl_msg_set_status (reply, status);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_str (&pk, "error");
    msgpack_pack_map (&pk, 2);
    tl_mp_pack_kv (&pk, "code", code);
    tl_mp_pack_kv (&pk, "message", message);
    tl_msg_set_body (reply, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    if (status == 503) {
        char after [16];
        snprintf (after, sizeof after, "%d", TL_RETRY_AFTER_SEC);
        tl_msg_add_header (reply, "Retry-After", after);
    }
    return reply;
}

//  Gives the reply to the request's origin. Takes the reply.
static void
s_deliver (gw_broker_t *self, s_request_t *request, tl_msg_t **reply_p)
{
    if (!*reply_p)
        return;
    if (request->fn) {
        gw_reply_fn *fn = request->fn;
        request->fn = NULL;
        fn (request->arg, reply_p);
    }
    else
    if (request->origin_id) {
        tl_msg_set_str (*reply_p, TL_MSG_ID, request->origin_id);
        int rc = tl_msg_send (*reply_p, zsock_resolve (self->backend),
                              request->origin_rid, request->origin_rid_size);
        if (rc == TL_ETOOBIG) {
            //  Grown past one frame with the caller's longer id.
            tl_msg_t *error = s_make_error (500, "reply_too_large",
                                            "the reply is larger than one mesh frame");
            if (error) {
                tl_msg_set_str (error, TL_MSG_ID, request->origin_id);
                tl_msg_send (error, zsock_resolve (self->backend),
                             request->origin_rid, request->origin_rid_size);
            }
            tl_msg_destroy (&error);
        }
    }
    tl_msg_destroy (reply_p);
}

static void
s_deliver_error (gw_broker_t *self, s_request_t *request, int status,
                 const char *code, const char *message)
{
    tl_msg_t *reply = s_make_error (status, code, message);
    s_deliver (self, request, &reply);
}

//  ---------------------------------------------------------------------
//  Dispatch

//  The least recently used instance with a free slot, or NULL.
static s_peer_t *
s_pick (s_service_t *service)
{
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (service->instances); peer;
         peer = (s_peer_t *) zlistx_next (service->instances))
        if (peer->in_flight < peer->capacity)
            return peer;
    return NULL;
}

//  Sends a queued request to `peer`. Returns 0, or a negative code when the
//  instance cannot be reached (the request stays queued).
static int
s_send_request (gw_broker_t *self, s_request_t *request, s_peer_t *peer)
{
    int rc = tl_msg_send (request->msg, zsock_resolve (self->backend),
                          peer->rid, peer->rid_size);
    if (rc)
        return rc;
    request->worker = peer;
    peer->in_flight++;
    zlistx_move_end (peer->service->instances, peer->lru_handle);
    return 0;
}

static void s_peer_lost (gw_broker_t *self, s_peer_t *peer, const char *why);

//  Sends queued requests of `service` while instances have free slots.
static void
s_dispatch (gw_broker_t *self, s_service_t *service)
{
    while (zlistx_size (service->queue)) {
        s_peer_t *peer = s_pick (service);
        if (!peer)
            return;
        s_request_t *request = (s_request_t *) zlistx_first (service->queue);
        int rc = s_send_request (self, request, peer);
        if (rc == TL_EUNAVAIL) {
            //  The instance's connection is gone: treat it as dead now.
            s_peer_lost (self, peer, "unroutable");
            continue;
        }
        if (rc == TL_ETOOBIG) {
            //  Grown past one frame on its way (caller, id): it must not
            //  hold up the queue; the tick answers it.
            zlistx_delete (service->queue, request->queue_handle);
            request->queue_handle = NULL;
            request->too_large = true;
            continue;
        }
        if (rc)
            return;             //  HWM: try again on the next event
        zlistx_delete (service->queue, request->queue_handle);
        request->queue_handle = NULL;
    }
}

//  Queues a request (at the front when it already waited) and dispatches.
//  A service with no live instance holds it too, as a Majordomo broker
//  does: an instance that (re)starts before the deadline takes it. Returns
//  0, or TL_EBUSY when the queue is full.
static int
s_enqueue (gw_broker_t *self, s_request_t *request, bool front)
{
    s_service_t *service = request->service;
    if (zlistx_size (service->queue) >= TL_SERVICE_QUEUE_MAX)
        return TL_EBUSY;
    request->worker = NULL;
    request->queue_handle = front ? zlistx_add_start (service->queue, request)
                                  : zlistx_add_end (service->queue, request);
    s_dispatch (self, service);
    return 0;
}

static int
s_accept (gw_broker_t *self, tl_msg_t **request_p, s_request_t **request_out)
{
    tl_msg_t *msg = *request_p;
    if (zhashx_size (self->requests) >= TL_BROKER_MAX_PENDING)
        return TL_EBUSY;
    //  A service never seen yet may be starting: it gets a queue too, up
    //  to TL_MESH_MAX_SERVICES services in all.
    const char *name = tl_msg_str (msg, TL_MSG_SERVICE);
    s_service_t *service = (s_service_t *) zhashx_lookup (self->services, name);
    if (!service && zhashx_size (self->services) < TL_MESH_MAX_SERVICES)
        service = s_service_require (self, name);
    if (!service)
        return TL_EUNAVAIL;
    if (zlistx_size (service->queue) >= TL_SERVICE_QUEUE_MAX)
        return TL_EBUSY;
    s_request_t *request = calloc (1, sizeof *request);
    if (!request)
        return TL_ENOMEM;
    request->handle = ++self->next_handle;
    snprintf (request->id, sizeof request->id, "%" PRIu64, request->handle);
    tl_msg_set_str (msg, TL_MSG_ID, request->id);
    request->service = service;
    request->deadline = tl_msg_deadline (msg);
    request->idempotent = tl_msg_idempotent (msg)
                       || (tl_msg_str (msg, TL_MSG_IDEM) && tl_msg_str (msg, TL_MSG_USER_ID));
    request->msg = msg;
    *request_p = NULL;
    zhashx_insert (self->requests, request->id, request);
    *request_out = request;
    return 0;
}

int
gw_broker_submit (gw_broker_t *self, tl_msg_t **request_p,
                  gw_reply_fn *fn, void *arg, uint64_t *handle)
{
    s_request_t *request = NULL;
    int rc = s_accept (self, request_p, &request);
    if (rc)
        return rc;
    request->fn = fn;
    request->arg = arg;
    *handle = request->handle;
    rc = s_enqueue (self, request, false);
    if (rc) {
        request->fn = NULL;
        zhashx_delete (self->requests, request->id);
    }
    return rc;
}

void
gw_broker_cancel (gw_broker_t *self, uint64_t handle)
{
    char id [24];
    snprintf (id, sizeof id, "%" PRIu64, handle);
    s_request_t *request = (s_request_t *) zhashx_lookup (self->requests, id);
    if (!request)
        return;
    request->fn = NULL;
    if (!request->worker) {
        s_service_t *service = request->service;
        if (request->queue_handle)
            zlistx_delete (service->queue, request->queue_handle);
        zhashx_delete (self->requests, id);
        s_service_forget (self, service);
    }
    else
        request->answered = true;       //  keep until the slot is given back
}

//  ---------------------------------------------------------------------
//  Peers

static s_peer_t *
s_peer_lookup (gw_broker_t *self, const unsigned char *rid, size_t size)
{
    char key [2 * 256 + 1];
    s_hex (rid, size, key);
    return (s_peer_t *) zhashx_lookup (self->peers, key);
}

//  Removes a peer; its in-flight requests are re-dispatched when idempotent
//  and answered 503 otherwise.
static void
s_peer_lost (gw_broker_t *self, s_peer_t *peer, const char *why)
{
    tl_log (TL_LOG_WARN, NULL, "instance %s of %s lost (%s), %d request(s) in flight",
            peer->instance ? peer->instance : "?",
            peer->service ? peer->service->name : "-", why, peer->in_flight);
    if (peer->service && peer->lru_handle)
        zlistx_delete (peer->service->instances, peer->lru_handle);
    peer->lru_handle = NULL;

    zlistx_t *orphans = zlistx_new ();
    for (s_request_t *r = (s_request_t *) zhashx_first (self->requests); r;
         r = (s_request_t *) zhashx_next (self->requests))
        if (r->worker == peer)
            zlistx_add_end (orphans, r);
    for (s_request_t *r = (s_request_t *) zlistx_first (orphans); r;
         r = (s_request_t *) zlistx_next (orphans)) {
        r->worker = NULL;
        if (!r->answered && r->idempotent
        &&  s_enqueue (self, r, true) == 0)
            continue;           //  runs again elsewhere
        if (!r->answered)
            s_deliver_error (self, r, 503, "worker_lost",
                             "the instance running this request stopped; retry with an Idempotency-Key");
        zhashx_delete (self->requests, r->id);
    }
    zlistx_destroy (&orphans);
    s_service_t *service = peer->service;
    zhashx_delete (self->peers, peer->key);
    //  With no instance left, queued requests wait for one (a restart)
    //  until their deadline.
    if (service)
        s_dispatch (self, service);
}

static s_peer_t *
s_peer_new (gw_broker_t *self, const unsigned char *rid, size_t size)
{
    s_peer_t *peer = calloc (1, sizeof *peer);
    if (!peer)
        return NULL;
    memcpy (peer->rid, rid, size);
    peer->rid_size = size;
    s_hex (rid, size, peer->key);
    peer->db_ok = -1;
    zhashx_insert (self->peers, peer->key, peer);
    return peer;
}

//  Refuses a peer's announcement: logged, counted, answered `disconnect`.
static void
s_refuse (gw_broker_t *self, const unsigned char *rid, size_t size, const char *why,
          const char *identity, const char *service)
{
    self->refused++;
    tl_log (TL_LOG_WARN, NULL, "mesh: peer %s refused as %.64s: %s",
            identity ? identity : "(no identity)", service, why);
    s_send_kind (self, rid, size, TL_MSG_DISCONNECT);
}

//  Whether a peer known as `identity` may announce `service`.
static bool
s_may_announce (gw_broker_t *self, const char *identity, const char *service)
{
    if (!self->auth)
        return true;                //  insecure mesh: announcements are trusted
    return identity && strncmp (identity, "service:", 8) == 0
        && streq (identity + 8, service);
}

static void
s_on_ready (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg,
            const char *identity)
{
    const char *name = tl_msg_str (msg, TL_MSG_SERVICE);
    if (!s_may_announce (self, identity, name)) {
        s_refuse (self, rid, size, "its key is not that service's", identity, name);
        return;
    }
    if (!zhashx_lookup (self->services, name)
    &&  zhashx_size (self->services) >= TL_MESH_MAX_SERVICES) {
        s_refuse (self, rid, size, "too many services", identity, name);
        return;
    }
    s_peer_t *peer = s_peer_lookup (self, rid, size);
    if (peer && peer->service
    &&  strcmp (peer->service->name, tl_msg_str (msg, TL_MSG_SERVICE)) != 0) {
        s_peer_lost (self, peer, "changed service");
        peer = NULL;
    }
    if (!peer && !(peer = s_peer_new (self, rid, size)))
        return;
    s_service_t *service = s_service_require (self, tl_msg_str (msg, TL_MSG_SERVICE));
    if (!service)
        return;
    free (peer->instance);
    peer->instance = strdup (tl_msg_str (msg, TL_MSG_INSTANCE));
    peer->capacity = tl_msg_capacity (msg);
    peer->draining = false;
    if (tl_msg_db_ok (msg) >= 0)
        peer->db_ok = tl_msg_db_ok (msg);
    peer->last_seen = s_mono_ms ();
    peer->service = service;
    if (!peer->lru_handle) {
        peer->lru_handle = zlistx_add_start (service->instances, peer);
        tl_log (TL_LOG_INFO, NULL, "instance %s of %s ready, capacity %d",
                peer->instance, service->name, peer->capacity);
    }
    s_dispatch (self, service);
}

static void
s_on_reply (gw_broker_t *self, s_peer_t *peer, tl_msg_t **msg_p)
{
    const char *id = tl_msg_str (*msg_p, TL_MSG_ID);
    s_request_t *request = (s_request_t *) zhashx_lookup (self->requests, id);
    if (!request || request->worker != peer)
        return;                 //  late, or not this instance's
    peer->in_flight--;
    request->worker = NULL;
    if (!request->answered)
        s_deliver (self, request, msg_p);
    zhashx_delete (self->requests, request->id);
    if (peer->draining && peer->in_flight == 0 && !peer->lru_handle)
        zhashx_delete (self->peers, peer->key);
    else
    if (peer->service)
        s_dispatch (self, peer->service);
}

void
gw_broker_on_broadcast (gw_broker_t *self, gw_broadcast_fn *fn, void *arg)
{
    self->broadcast_fn = fn;
    self->broadcast_arg = arg;
}

static void
s_pack_error (msgpack_packer *pk, const char *code, const char *message)
{
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "error");
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "code", code);
    tl_mp_pack_kv (pk, "message", message);
}

//  mesh.broadcast {topic, body?} from a service (`identity`): a topic named
//  after it, handed to the gateway's handler. Returns the status.
static int
s_mesh_broadcast (gw_broker_t *self, tl_msg_t *msg, const char *identity, msgpack_packer *pk)
{
    const msgpack_object *body = tl_msg_body (msg);
    char *topic = tl_mp_strdup (tl_mp_get (body, "topic"), TL_MAX_NAME_LEN);
    const char *service = identity && strncmp (identity, "service:", 8) == 0 ? identity + 8 : NULL;
    size_t size = service ? strlen (service) : 0;
    int status = 200;
    if (!topic)
        s_pack_error (pk, "invalid", "a broadcast is {topic, body?}"), status = 400;
    else
    if (!service || !*service || strncmp (topic, service, size) != 0 || topic [size] != '.')
        s_pack_error (pk, "forbidden", "a service broadcasts only topics named after it"),
        status = 403;
    else {
        bool handled = self->broadcast_fn
                    && self->broadcast_fn (self->broadcast_arg, topic, tl_mp_get (body, "body"));
        self->broadcasts++;
        msgpack_pack_map (pk, 2);
        tl_mp_pack_kv (pk, "gateway", self->name);
        tl_mp_pack_str (pk, "handled");
        if (handled) msgpack_pack_true (pk); else msgpack_pack_false (pk);
    }
    free (topic);
    return status;
}

//  The broker's own service, "mesh".
static void
s_mesh_request (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg,
                const char *identity)
{
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    if (!reply)
        return;
    tl_msg_set_str (reply, TL_MSG_ID, tl_msg_str (msg, TL_MSG_ID));
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    const char *method = tl_msg_str (msg, TL_MSG_METHOD);
    uint64_t now = s_mono_ms ();
    if (streq (method, "ping")) {
        msgpack_pack_map (&pk, 1);
        tl_mp_pack_str (&pk, "pong");
        msgpack_pack_true (&pk);
        tl_msg_set_status (reply, 200);
    }
    else
    if (streq (method, "status")) {
        msgpack_pack_map (&pk, 3);
        tl_mp_pack_kv (&pk, "gateway", self->name);
        tl_mp_pack_str (&pk, "draining");
        if (self->draining) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
        tl_mp_pack_str (&pk, "services");
        msgpack_pack_array (&pk, zhashx_size (self->services));
        for (s_service_t *s = (s_service_t *) zhashx_first (self->services); s;
             s = (s_service_t *) zhashx_next (self->services)) {
            msgpack_pack_map (&pk, 4);
            tl_mp_pack_kv (&pk, "name", s->name);
            tl_mp_pack_str (&pk, "declared");
            if (s->declared) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
            tl_mp_pack_str (&pk, "queue");
            msgpack_pack_uint64 (&pk, zlistx_size (s->queue));
            tl_mp_pack_str (&pk, "instances");
            msgpack_pack_array (&pk, zlistx_size (s->instances));
            for (s_peer_t *p = (s_peer_t *) zlistx_first (s->instances); p;
                 p = (s_peer_t *) zlistx_next (s->instances)) {
                msgpack_pack_map (&pk, 5);
                tl_mp_pack_kv (&pk, "instance", p->instance);
                tl_mp_pack_str (&pk, "capacity");
                msgpack_pack_int (&pk, p->capacity);
                tl_mp_pack_str (&pk, "in_flight");
                msgpack_pack_int (&pk, p->in_flight);
                tl_mp_pack_str (&pk, "db_ok");
                if (p->db_ok != 0) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
                tl_mp_pack_str (&pk, "last_seen_ms");
                msgpack_pack_uint64 (&pk, now - p->last_seen);
            }
        }
        tl_msg_set_status (reply, 200);
    }
    else
    if (streq (method, "broadcast"))
        tl_msg_set_status (reply, s_mesh_broadcast (self, msg, identity, &pk));
    else {
        s_pack_error (&pk, "unknown_method", "mesh answers status, ping and broadcast");
        tl_msg_set_status (reply, 404);
    }
    tl_msg_set_body (reply, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    tl_msg_send (reply, zsock_resolve (self->backend), rid, size);
    tl_msg_destroy (&reply);
}

//  The caller of a request from a peer is never taken from the peer: a
//  nested request (its `parent` names a request in flight on this same
//  peer) gets that request's caller and at most its deadline; any other
//  request runs as the peer itself (`identity`: service:<name>, operator,
//  gateway), or as anonymous when the peer is no one.
static void
s_derive_caller (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg,
                 const char *identity)
{
    tl_msg_clear_caller (msg);
    const char *parent_id = tl_msg_str (msg, TL_MSG_PARENT);
    s_peer_t *peer = parent_id ? s_peer_lookup (self, rid, size) : NULL;
    s_request_t *parent = peer ? (s_request_t *) zhashx_lookup (self->requests, parent_id) : NULL;
    if (!parent || parent->worker != peer) {
        tl_msg_set_str (msg, TL_MSG_CALLER,
                        tl_curve_valid_peer (identity) ? identity : "anonymous");
        return;
    }
    tl_msg_copy_caller (msg, parent->msg);
    if (tl_msg_deadline (msg) > parent->deadline)
        tl_msg_set_deadline (msg, parent->deadline);
}

//  A request from a peer: a service calling another, or an operator tool.
static void
s_peer_request (gw_broker_t *self, const unsigned char *rid, size_t size,
                tl_msg_t **msg_p, const char *identity)
{
    tl_msg_t *msg = *msg_p;
    if (streq (tl_msg_str (msg, TL_MSG_SERVICE), "mesh")) {
        s_mesh_request (self, rid, size, msg, identity);
        return;
    }
    s_derive_caller (self, rid, size, msg, identity);
    char *origin_id = strdup (tl_msg_str (msg, TL_MSG_ID));
    s_request_t *request = NULL;
    int rc = origin_id ? s_accept (self, msg_p, &request) : TL_ENOMEM;
    if (rc == 0) {
        request->origin_id = origin_id;
        memcpy (request->origin_rid, rid, size);
        request->origin_rid_size = size;
        rc = s_enqueue (self, request, false);
        if (rc == 0)
            return;
        request->origin_id = NULL;
        zhashx_delete (self->requests, request->id);
    }
    tl_msg_t *reply = rc == TL_EBUSY
        ? s_make_error (503, "queue_full", "the service's queue is full")
        : s_make_error (503, "no_instance", "no live instance of the service");
    if (reply && origin_id) {
        tl_msg_set_str (reply, TL_MSG_ID, origin_id);
        tl_msg_send (reply, zsock_resolve (self->backend), rid, size);
    }
    tl_msg_destroy (&reply);
    free (origin_id);
}

//  Who sent `frame` (see S_IDENTITY_MAX): with CURVE, its key's "peer"
//  property; on an insecure mesh, the `peer` the message claims, else the
//  service the peer announced. Returns whether it is someone.
static bool
s_identity (gw_broker_t *self, zframe_t *frame, const tl_msg_t *msg, const s_peer_t *peer,
            char *out)
{
    const char *identity = NULL;
    if (self->auth)
        identity = zframe_meta (frame, "peer");
    else
    if (tl_msg_str (msg, TL_MSG_PEER))
        identity = tl_msg_str (msg, TL_MSG_PEER);
    else
    if (peer && peer->service) {
        snprintf (out, S_IDENTITY_MAX + 1, "service:%s", peer->service->name);
        return true;
    }
    if (!identity || strlen (identity) > S_IDENTITY_MAX)
        return false;
    strcpy (out, identity);
    return true;
}

static void
s_handle (gw_broker_t *self, zmsg_t *zmsg)
{
    zframe_t *rid = zmsg_first (zmsg);
    zframe_t *body = zmsg_next (zmsg);
    if (!rid || !body || zmsg_size (zmsg) != 2 || zframe_size (rid) > 256) {
        tl_log (TL_LOG_WARN, NULL, "mesh: dropped a message of %zu frame(s)", zmsg_size (zmsg));
        return;
    }
    const unsigned char *id = zframe_data (rid);
    size_t id_size = zframe_size (rid);
    tl_msg_t *msg = NULL;
    int rc = tl_msg_decode (zframe_data (body), zframe_size (body), &msg);
    if (rc) {
        char hex [17];
        s_hex (id, id_size < 8 ? id_size : 8, hex);
        tl_log (TL_LOG_WARN, NULL, "mesh: malformed message from peer %s: %s", hex, tl_strerror (rc));
        if (rc == TL_EPROTO)
            s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
        return;
    }
    s_peer_t *peer = s_peer_lookup (self, id, id_size);
    if (peer)
        peer->last_seen = s_mono_ms ();
    char identity [S_IDENTITY_MAX + 1];
    bool known = s_identity (self, body, msg, peer, identity);
    switch (tl_msg_kind (msg)) {
        case TL_MSG_READY:
            s_on_ready (self, id, id_size, msg, known ? identity : NULL);
            break;
        case TL_MSG_REPLY:
            if (peer)
                s_on_reply (self, peer, &msg);
            else
                s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
            break;
        case TL_MSG_HEARTBEAT:
            if (peer && tl_msg_db_ok (msg) >= 0)
                peer->db_ok = tl_msg_db_ok (msg);
            if (!peer)
                s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
            break;
        case TL_MSG_DISCONNECT:
            //  Acknowledge: everything sent to this peer before is ahead of
            //  this answer on the wire, so once it has the answer and is
            //  idle, a draining worker may exit without losing a request.
            s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
            if (peer && peer->service) {
                //  Drain: no new work, but replies still count.
                tl_log (TL_LOG_INFO, NULL, "instance %s of %s draining",
                        peer->instance, peer->service->name);
                peer->draining = true;
                if (peer->lru_handle)
                    zlistx_delete (peer->service->instances, peer->lru_handle);
                peer->lru_handle = NULL;
                if (peer->in_flight == 0)
                    zhashx_delete (self->peers, peer->key);
            }
            break;
        case TL_MSG_REQUEST:
            s_peer_request (self, id, id_size, &msg, known ? identity : NULL);
            break;
    }
    tl_msg_destroy (&msg);
}

void
gw_broker_recv (gw_broker_t *self)
{
    //  Bounded batch, so that HTTP work is never starved by a busy mesh.
    for (int i = 0; i < 1000; i++) {
        zmsg_t *zmsg = zmsg_recv_nowait (self->backend);
        if (!zmsg)
            break;
        s_handle (self, zmsg);
        zmsg_destroy (&zmsg);
    }
}

void
gw_broker_tick (gw_broker_t *self)
{
    uint64_t mono = s_mono_ms ();
    uint64_t now = tl_msg_now_ms ();
    if (mono < self->next_deadline_scan)
        return;
    self->next_deadline_scan = mono + 10;   //  deadlines are kept to ~10 ms

    //  Deadlines. Collect first: delivering may change the table.
    zlistx_t *overdue = NULL;
    for (s_request_t *r = (s_request_t *) zhashx_first (self->requests); r;
         r = (s_request_t *) zhashx_next (self->requests))
        if (!r->answered && (r->too_large || r->deadline <= now)) {
            if (!overdue)
                overdue = zlistx_new ();
            zlistx_add_end (overdue, r);
        }
    for (s_request_t *r = overdue ? (s_request_t *) zlistx_first (overdue) : NULL; r;
         r = (s_request_t *) zlistx_next (overdue)) {
        s_service_t *service = r->service;
        if (r->too_large)
            s_deliver_error (self, r, 413, "too_large", "the request is larger than one mesh frame");
        else
        if (!r->worker && zlistx_size (service->instances) == 0)
            //  It waited its whole time for an instance that never came.
            s_deliver_error (self, r, 503, "no_instance", "no live instance of the service");
        else
            s_deliver_error (self, r, 504, "deadline", "the service did not answer in time");
        if (r->worker)
            r->answered = true;     //  the instance still holds the slot
        else {
            if (r->queue_handle)
                zlistx_delete (service->queue, r->queue_handle);
            zhashx_delete (self->requests, r->id);
            s_service_forget (self, service);
        }
    }
    zlistx_destroy (&overdue);

    //  Liveness and heartbeats.
    if (mono < self->next_heartbeat)
        return;
    self->next_heartbeat = mono + TL_HEARTBEAT_MSEC;
    zlistx_t *dead = NULL;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers)) {
        if (mono - peer->last_seen > TL_HEARTBEAT_MSEC * TL_HEARTBEAT_LIVENESS) {
            if (!dead)
                dead = zlistx_new ();
            zlistx_add_end (dead, peer);
        }
        else
            s_send_kind (self, peer->rid, peer->rid_size, TL_MSG_HEARTBEAT);
    }
    for (s_peer_t *peer = dead ? (s_peer_t *) zlistx_first (dead) : NULL; peer;
         peer = (s_peer_t *) zlistx_next (dead))
        s_peer_lost (self, peer, "heartbeat expired");
    zlistx_destroy (&dead);
}

void
gw_broker_set_draining (gw_broker_t *self)
{
    self->draining = true;
}

size_t
gw_broker_pending (gw_broker_t *self)
{
    return zhashx_size (self->requests);
}

int
gw_broker_missing (gw_broker_t *self, json_t *missing)
{
    int count = 0;
    for (s_service_t *s = (s_service_t *) zhashx_first (self->services); s;
         s = (s_service_t *) zhashx_next (self->services)) {
        if (!s->declared)
            continue;
        bool live = false, db = false;
        for (s_peer_t *p = (s_peer_t *) zlistx_first (s->instances); p;
             p = (s_peer_t *) zlistx_next (s->instances)) {
            live = true;
            db = db || p->db_ok != 0;
        }
        if (!live || !db) {
            json_array_append_new (missing, json_pack ("{s:s, s:s}", "service", s->name,
                "reason", live ? "database not answering" : "no live instance"));
            count++;
        }
    }
    return count;
}

char *
gw_broker_metrics (gw_broker_t *self)
{
    size_t size = 0;
    char *text = NULL;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    fprintf (out, "# HELP tally_mesh_instances Live instances per service.\n"
                  "# TYPE tally_mesh_instances gauge\n");
    for (s_service_t *s = (s_service_t *) zhashx_first (self->services); s;
         s = (s_service_t *) zhashx_next (self->services))
        fprintf (out, "tally_mesh_instances{service=\"%s\"} %zu\n", s->name,
                 zlistx_size (s->instances));
    fprintf (out, "# HELP tally_mesh_queue_depth Requests waiting for a free instance.\n"
                  "# TYPE tally_mesh_queue_depth gauge\n");
    for (s_service_t *s = (s_service_t *) zhashx_first (self->services); s;
         s = (s_service_t *) zhashx_next (self->services))
        fprintf (out, "tally_mesh_queue_depth{service=\"%s\"} %zu\n", s->name,
                 zlistx_size (s->queue));
    fprintf (out, "# HELP tally_mesh_in_flight Requests running on instances.\n"
                  "# TYPE tally_mesh_in_flight gauge\n");
    for (s_service_t *s = (s_service_t *) zhashx_first (self->services); s;
         s = (s_service_t *) zhashx_next (self->services)) {
        long in_flight = 0;
        for (s_peer_t *p = (s_peer_t *) zlistx_first (s->instances); p;
             p = (s_peer_t *) zlistx_next (s->instances))
            in_flight += p->in_flight;
        fprintf (out, "tally_mesh_in_flight{service=\"%s\"} %ld\n", s->name, in_flight);
    }
    fprintf (out, "# HELP tally_broadcasts_total Broadcasts from services acknowledged.\n"
                  "# TYPE tally_broadcasts_total counter\ntally_broadcasts_total %" PRIu64 "\n",
             self->broadcasts);
    fprintf (out, "# HELP tally_mesh_refused_total Peers refused an announcement (key not "
                  "that service's, too many services).\n"
                  "# TYPE tally_mesh_refused_total counter\ntally_mesh_refused_total %" PRIu64 "\n",
             self->refused);
    fprintf (out, "# HELP tally_mesh_pending Requests alive in this broker.\n"
                  "# TYPE tally_mesh_pending gauge\ntally_mesh_pending %zu\n",
             zhashx_size (self->requests));
    fclose (out);
    return text;
}

//  ---------------------------------------------------------------------
//  Self-test: a broker and fake workers over real TCP sockets.

typedef struct {
    int calls;
    int status;
} s_sink_t;

static void
s_sink (void *arg, tl_msg_t **reply_p)
{
    s_sink_t *sink = (s_sink_t *) arg;
    sink->calls++;
    sink->status = tl_msg_status (*reply_p);
}

static zsock_t *
s_fake_worker (const char *endpoint, const char *service, const char *instance, int capacity)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zsock_connect (sock, "%s", endpoint);
    tl_msg_t *ready = tl_msg_new (TL_MSG_READY);
    tl_msg_set_str (ready, TL_MSG_SERVICE, service);
    tl_msg_set_str (ready, TL_MSG_INSTANCE, instance);
    tl_msg_set_capacity (ready, capacity);
    tl_msg_set_db_ok (ready, true);
    tl_msg_send (ready, zsock_resolve (sock), NULL, 0);
    tl_msg_destroy (&ready);
    return sock;
}

static void
s_pump (gw_broker_t *broker, int msec)
{
    int64_t until = zclock_mono () + msec;
    while (zclock_mono () < until) {
        zmq_pollitem_t item = { gw_broker_socket (broker), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
        gw_broker_recv (broker);
        gw_broker_tick (broker);
    }
}

//  Receives a request on a fake worker, or NULL.
static tl_msg_t *
s_take (zsock_t *worker)
{
    while (true) {
        zmsg_t *zmsg = zmsg_recv_nowait (worker);
        if (!zmsg)
            return NULL;
        zframe_t *frame = zmsg_first (zmsg);
        tl_msg_t *msg = NULL;
        tl_msg_decode (zframe_data (frame), zframe_size (frame), &msg);
        zmsg_destroy (&zmsg);
        if (msg && tl_msg_kind (msg) == TL_MSG_REQUEST)
            return msg;
        tl_msg_destroy (&msg);
    }
}

static tl_msg_t *
s_request (const char *method, bool idempotent, int timeout_ms)
{
    tl_msg_t *req = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (req, TL_MSG_ID, "x");
    tl_msg_set_str (req, TL_MSG_SERVICE, "echo");
    tl_msg_set_str (req, TL_MSG_METHOD, method);
    tl_msg_set_idempotent (req, idempotent);
    tl_msg_set_deadline (req, tl_msg_now_ms () + (uint64_t) timeout_ms);
    return req;
}

void
gw_broker_test (bool verbose)
{
    gw_broker_t *broker = gw_broker_new ("tcp://127.0.0.1:*", "gw-test");
    assert (broker);
    char *endpoint = zsock_last_endpoint (broker->backend);
    gw_broker_declare (broker, "echo");
    json_t *missing = json_array ();
    assert (gw_broker_missing (broker, missing) == 1);
    json_decref (missing);

    //  No instance: held until the deadline, then 503 (no_instance).
    s_sink_t sink = { 0, 0 };
    uint64_t handle = 0;
    tl_msg_t *req = s_request ("get", true, 100);
    assert (gw_broker_submit (broker, &req, s_sink, &sink, &handle) == 0);
    assert (gw_broker_pending (broker) == 1);
    s_pump (broker, 300);
    assert (sink.calls == 1 && sink.status == 503);
    assert (gw_broker_pending (broker) == 0);

    //  Two instances of capacity 1: two requests go one to each (LRU).
    zsock_t *a = s_fake_worker (endpoint, "echo", "a", 1);
    zsock_t *b = s_fake_worker (endpoint, "echo", "b", 1);
    s_pump (broker, 200);
    s_sink_t s1 = { 0, 0 }, s2 = { 0, 0 }, s3 = { 0, 0 };
    req = s_request ("get", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s1, &handle) == 0);
    req = s_request ("create", false, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s2, &handle) == 0);
    //  A third waits in the queue: both slots are taken.
    req = s_request ("get", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s3, &handle) == 0);
    s_pump (broker, 100);
    tl_msg_t *at_a = s_take (a);
    tl_msg_t *at_b = s_take (b);
    assert (at_a && at_b);
    assert (s_take (a) == NULL && s_take (b) == NULL);
    assert (gw_broker_pending (broker) == 3);

    //  Instance a answers: its reply is delivered and the queued request
    //  goes to a.
    tl_msg_t *rep = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_str (rep, TL_MSG_ID, tl_msg_str (at_a, TL_MSG_ID));
    tl_msg_set_status (rep, 200);
    tl_msg_send (rep, zsock_resolve (a), NULL, 0);
    tl_msg_destroy (&rep);
    s_pump (broker, 100);
    s_sink_t *first = streq (tl_msg_str (at_a, TL_MSG_METHOD), "get") ? &s1 : &s2;
    assert (first->calls == 1 && first->status == 200);
    tl_msg_t *third = s_take (a);
    assert (third);

    //  Instance b dies (goes silent): its non-idempotent request is answered
    //  503; a keeps heart-beating.
    s_sink_t *second = first == &s1 ? &s2 : &s1;
    bool b_idempotent = tl_msg_idempotent (at_b);
    zsock_destroy (&b);
    for (int i = 0; i < 5; i++) {
        tl_msg_t *hb = tl_msg_new (TL_MSG_HEARTBEAT);
        tl_msg_send (hb, zsock_resolve (a), NULL, 0);
        tl_msg_destroy (&hb);
        s_pump (broker, TL_HEARTBEAT_MSEC);
    }
    if (b_idempotent) {
        //  Re-dispatched: it waits for a's slot (a still holds `third`).
        assert (second->calls == 0);
    }
    else
        assert (second->calls == 1 && second->status == 503);

    //  Deadline: the request on a gets 504 from the broker once overdue.
    s_sink_t s4 = { 0, 0 };
    req = s_request ("slow", false, 100);
    assert (gw_broker_submit (broker, &req, s_sink, &s4, &handle) == 0);
    s_pump (broker, 300);
    assert (s4.calls == 1 && s4.status == 504);

    tl_msg_destroy (&at_a);
    tl_msg_destroy (&at_b);
    tl_msg_destroy (&third);
    zsock_destroy (&a);

    //  A service never seen: held too, and taken by its first instance.
    s_sink_t s5 = { 0, 0 };
    req = s_request ("get", true, 30000);
    tl_msg_set_str (req, TL_MSG_SERVICE, "later");
    assert (gw_broker_submit (broker, &req, s_sink, &s5, &handle) == 0);
    zsock_t *c = s_fake_worker (endpoint, "later", "c", 1);
    s_pump (broker, 200);
    tl_msg_t *at_c = s_take (c);
    assert (at_c && streq (tl_msg_str (at_c, TL_MSG_SERVICE), "later"));
    tl_msg_destroy (&at_c);
    zsock_destroy (&c);

    //  A request that cannot fit a frame is answered 413, not left at the
    //  head of its queue.
    zsock_t *d = s_fake_worker (endpoint, "big", "d", 1);
    s_pump (broker, 200);
    s_sink_t s6 = { 0, 0 };
    req = s_request ("put", false, 30000);
    tl_msg_set_str (req, TL_MSG_SERVICE, "big");
    assert (tl_msg_set_filler_body (req, TL_MAX_FRAME_BYTES) == 0);
    assert (gw_broker_submit (broker, &req, s_sink, &s6, &handle) == 0);
    assert (s6.calls == 0);                 //  answered later, never from submit
    s_pump (broker, 100);
    assert (s6.calls == 1 && s6.status == 413);
    assert (s_take (d) == NULL);
    zsock_destroy (&d);
    zstr_free (&endpoint);
    gw_broker_destroy (&broker);
    gw_broker_destroy (&broker);
    if (verbose)
        printf ("(broker ok) ");
}
