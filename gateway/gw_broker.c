//  gw_broker.c — the broker embedded in every gateway.
//
//  State: services (by name; each with its live instances in least
//  recently used order and its queue), instances (each with its link and,
//  when it has them, its slots: PROTOCOL.md §3), the connections the
//  broker knows (peers, by routing id: an instance's link or one of its
//  slots), and requests (by the broker's id). A request is queued
//  (instance == NULL) or in flight on one instance, sent on one of its
//  connections: a slot, or the link of an instance without slots.
//  "answered" marks a request whose origin already got its 504 and which
//  only waits for the instance to give its slot back.
#include "gw_broker.h"
#include "tl_curve.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <czmq.h>

typedef struct _s_service_t s_service_t;
typedef struct _s_instance_t s_instance_t;
typedef struct _s_request_t s_request_t;

//  A connection the broker knows: the link of an instance (ready,
//  heartbeats, drain; its requests too when it has no slots) or one of
//  its slots (one request at a time). Peers that only call are not kept.
typedef struct {
    char key [2 * 256 + 1];         //  routing id in hex
    unsigned char rid [256];
    size_t rid_size;
    s_instance_t *instance;
    int slot;                       //  its index among the instance's slots; -1: the link
    s_request_t *running;           //  slot: the request in flight on it, or NULL
    void *idle_handle;              //  slot: its place in instance->idle while idle
    bool leaving;                   //  slot: said disconnect, goes once idle
} s_peer_t;

//  One instance of a service, as this gateway sees it.
struct _s_instance_t {
    char *name;
    uint64_t seq;                   //  the newest of a name takes its slots
    s_service_t *service;
    s_peer_t *link;
    bool slotted;                   //  its requests go to its slots only
    s_peer_t *slots [TL_MAX_CAPACITY];  //  by index
    int nslots;
    zlistx_t *idle;                 //  s_peer_t *, idle slots, least recently used first
    int capacity;
    int in_flight;
    bool draining;                  //  answered `disconnect` once nothing is in flight
    int db_ok;                      //  -1 unknown
    uint64_t last_seen;             //  monotonic ms
    void *lru_handle;               //  in service->instances, while it may get work
    void *handle;                   //  in broker->instances
};

//  Who a peer is: with CURVE, the "peer" property of its key's
//  certificate in the allow list (service:<name>, operator, gateway); on
//  an insecure mesh, what it claims.
#define S_IDENTITY_MAX (TL_MAX_NAME_LEN + 16)

struct _s_service_t {
    char *name;
    bool declared;
    zlistx_t *instances;            //  s_instance_t *, live, least recently used first
    zlistx_t *queue;                //  s_request_t *, oldest first
};

struct _s_request_t {
    uint64_t handle;
    char id [24];
    tl_msg_t *msg;
    s_service_t *service;
    s_instance_t *instance;         //  in flight there, or NULL (queued)
    s_peer_t *conn;                 //  ... on that connection
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
};

struct _gw_broker_t {
    char *name;
    zsock_t *backend;
    zactor_t *auth;
    zhashx_t *peers;                //  hex routing id → s_peer_t
    zlistx_t *instances;            //  s_instance_t *, every one (draining too)
    uint64_t next_instance;
    zhashx_t *services;             //  name → s_service_t
    zhashx_t *requests;             //  id → s_request_t
    uint64_t next_handle;
    uint64_t next_heartbeat;
    uint64_t next_deadline_scan;
    bool draining;
    uint64_t refused;               //  peers refused an announcement
    gw_broadcast_fn *broadcast_fn;
    void *broadcast_arg;
    gw_body_read_fn *body_read_fn;      //  mesh.body.read (gw_bodies.h)
    void *body_read_arg;
    gw_reply_fn *body_read_owner;       //  ... of the requests it submitted
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
    free (*item);
    *item = NULL;
}

static void
s_instance_free (void **item)
{
    s_instance_t *instance = (s_instance_t *) *item;
    if (instance) {
        zlistx_destroy (&instance->idle);
        free (instance->name);
        free (instance);
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
    self->instances = zlistx_new ();
    self->services = zhashx_new ();
    self->requests = zhashx_new ();
    self->backend = zsock_new (ZMQ_ROUTER);
    if (!self->name || !self->peers || !self->instances || !self->services
    ||  !self->requests || !self->backend) {
        gw_broker_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->peers, s_peer_free);
    zlistx_set_destructor (self->instances, s_instance_free);
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
    if (self->instances && self->backend) {
        for (s_instance_t *instance = (s_instance_t *) zlistx_first (self->instances);
             instance; instance = (s_instance_t *) zlistx_next (self->instances))
            s_send_kind (self, instance->link->rid, instance->link->rid_size,
                         TL_MSG_DISCONNECT);
    }
    zhashx_destroy (&self->requests);
    zhashx_destroy (&self->peers);
    zlistx_destroy (&self->instances);
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
//  instance, draining or not, nothing queued), so that requests for names
//  that never come cannot fill the table.
static void
s_service_forget (gw_broker_t *self, s_service_t *service)
{
    if (service->declared || zlistx_size (service->instances)
    ||  zlistx_size (service->queue))
        return;
    for (s_instance_t *instance = (s_instance_t *) zlistx_first (self->instances); instance;
         instance = (s_instance_t *) zlistx_next (self->instances))
        if (instance->service == service)
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

//  The least recently used instance with room for one more request: below
//  its capacity and, when it has slots, with an idle one. NULL if none.
static s_instance_t *
s_pick (s_service_t *service)
{
    for (s_instance_t *instance = (s_instance_t *) zlistx_first (service->instances); instance;
         instance = (s_instance_t *) zlistx_next (service->instances))
        if (instance->in_flight < instance->capacity
        &&  (!instance->slotted || zlistx_size (instance->idle)))
            return instance;
    return NULL;
}

//  Sends a queued request to `instance`: on its least recently used idle
//  slot, or on its link when it has no slots. Returns 0, or a negative
//  code with the connection that failed in *conn_p (the request stays
//  queued).
static int
s_send_request (gw_broker_t *self, s_request_t *request, s_instance_t *instance,
                s_peer_t **conn_p)
{
    s_peer_t *conn = instance->slotted ? (s_peer_t *) zlistx_first (instance->idle)
                                       : instance->link;
    *conn_p = conn;
    int rc = tl_msg_send (request->msg, zsock_resolve (self->backend),
                          conn->rid, conn->rid_size);
    if (rc)
        return rc;
    request->instance = instance;
    request->conn = conn;
    instance->in_flight++;
    if (conn->slot >= 0) {
        zlistx_delete (instance->idle, conn->idle_handle);
        conn->idle_handle = NULL;
        conn->running = request;
    }
    zlistx_move_end (instance->service->instances, instance->lru_handle);
    return 0;
}

static void s_instance_lost (gw_broker_t *self, s_instance_t *instance, const char *why);
static void s_slot_remove (gw_broker_t *self, s_peer_t *slot, const char *why);

//  Sends queued requests of `service` while instances have room.
static void
s_dispatch (gw_broker_t *self, s_service_t *service)
{
    while (zlistx_size (service->queue)) {
        s_instance_t *instance = s_pick (service);
        if (!instance)
            return;
        s_request_t *request = (s_request_t *) zlistx_first (service->queue);
        s_peer_t *conn = NULL;
        int rc = s_send_request (self, request, instance, &conn);
        if (rc == TL_EUNAVAIL) {
            //  The connection is gone: a slot just goes; an instance
            //  whose link is gone is treated as dead now.
            if (conn->slot >= 0)
                s_slot_remove (self, conn, "unroutable");
            else
                s_instance_lost (self, instance, "unroutable");
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
//  does: an instance that (re)starts before the deadline takes it; but not
//  a `nowait` request (a durable job's call: it retries later). Returns
//  0, TL_EBUSY when the queue is full, or TL_EUNAVAIL (nowait, no instance).
static int
s_enqueue (gw_broker_t *self, s_request_t *request, bool front)
{
    s_service_t *service = request->service;
    if (zlistx_size (service->queue) >= TL_SERVICE_QUEUE_MAX)
        return TL_EBUSY;
    if (zlistx_size (service->instances) == 0 && request->msg && tl_msg_nowait (request->msg))
        return TL_EUNAVAIL;
    request->instance = NULL;
    request->conn = NULL;
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
    if (!request->instance) {
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
//  Instances and their connections

static s_peer_t *
s_peer_lookup (gw_broker_t *self, const unsigned char *rid, size_t size)
{
    char key [2 * 256 + 1];
    s_hex (rid, size, key);
    return (s_peer_t *) zhashx_lookup (self->peers, key);
}

//  A new connection of `instance`: its link (`slot` -1) or its slot
//  `slot`. Returns NULL on allocation failure.
static s_peer_t *
s_peer_new (gw_broker_t *self, const unsigned char *rid, size_t size,
            s_instance_t *instance, int slot)
{
    s_peer_t *peer = calloc (1, sizeof *peer);
    if (!peer)
        return NULL;
    memcpy (peer->rid, rid, size);
    peer->rid_size = size;
    s_hex (rid, size, peer->key);
    peer->instance = instance;
    peer->slot = slot;
    zhashx_insert (self->peers, peer->key, peer);
    return peer;
}

//  A request in flight on an instance that will not answer it: it runs
//  again (first in its queue) when idempotent, and is answered 503
//  worker_lost otherwise. Either way it is no longer the instance's.
static void
s_request_orphaned (gw_broker_t *self, s_request_t *request)
{
    request->instance = NULL;
    request->conn = NULL;
    if (!request->answered && request->idempotent && s_enqueue (self, request, true) == 0)
        return;                 //  runs again elsewhere
    if (!request->answered)
        s_deliver_error (self, request, 503, "worker_lost",
                         "the instance running this request stopped; retry with an Idempotency-Key");
    zhashx_delete (self->requests, request->id);
}

//  Detaches a slot from its instance and forgets its connection; the
//  request it runs, if any, is orphaned. `why` (NULL: quietly) is logged.
static void
s_slot_remove (gw_broker_t *self, s_peer_t *slot, const char *why)
{
    s_instance_t *instance = slot->instance;
    if (why)
        tl_log (TL_LOG_INFO, NULL, "slot %d of instance %s of %s removed (%s)",
                slot->slot, instance->name, instance->service->name, why);
    if (slot->idle_handle)
        zlistx_delete (instance->idle, slot->idle_handle);
    slot->idle_handle = NULL;
    instance->slots [slot->slot] = NULL;
    instance->nslots--;
    s_request_t *running = slot->running;
    zhashx_delete (self->peers, slot->key);
    if (running) {
        instance->in_flight--;
        s_request_orphaned (self, running);
    }
}

//  Forgets an instance and its connections (nothing of it is in flight
//  any more); its slots still connected are told `disconnect` when
//  `tell_slots`, so that they announce themselves again once the link is
//  back.
static void
s_instance_remove (gw_broker_t *self, s_instance_t *instance, bool tell_slots)
{
    if (instance->lru_handle)
        zlistx_delete (instance->service->instances, instance->lru_handle);
    instance->lru_handle = NULL;
    for (int i = 0; instance->nslots && i < TL_MAX_CAPACITY; i++) {
        s_peer_t *slot = instance->slots [i];
        if (!slot)
            continue;
        if (tell_slots)
            s_send_kind (self, slot->rid, slot->rid_size, TL_MSG_DISCONNECT);
        zhashx_delete (self->peers, slot->key);
        instance->nslots--;
    }
    zhashx_delete (self->peers, instance->link->key);
    zlistx_delete (self->instances, instance->handle);      //  frees it
}

//  An instance that died (silent, unroutable) or changed: its requests in
//  flight run again elsewhere when idempotent and are answered 503
//  otherwise.
static void
s_instance_lost (gw_broker_t *self, s_instance_t *instance, const char *why)
{
    s_service_t *service = instance->service;
    tl_log (TL_LOG_WARN, NULL, "instance %s of %s lost (%s), %d request(s) in flight",
            instance->name, service->name, why, instance->in_flight);
    if (instance->lru_handle)
        zlistx_delete (service->instances, instance->lru_handle);
    instance->lru_handle = NULL;
    //  Collect first: a request sent elsewhere may find another instance gone.
    zlistx_t *orphans = zlistx_new ();
    for (s_request_t *r = (s_request_t *) zhashx_first (self->requests); r;
         r = (s_request_t *) zhashx_next (self->requests))
        if (r->instance == instance)
            zlistx_add_end (orphans, r);
    for (s_request_t *r = (s_request_t *) zlistx_first (orphans); r;
         r = (s_request_t *) zlistx_next (orphans)) {
        if (r->conn && r->conn->slot >= 0)
            r->conn->running = NULL;
        s_request_orphaned (self, r);
    }
    zlistx_destroy (&orphans);
    s_instance_remove (self, instance, true);
    //  With no instance left, queued requests wait for one (a restart)
    //  until their deadline.
    s_dispatch (self, service);
}

//  A draining instance with nothing in flight: its drain is acknowledged
//  on its link (every reply of it is in), and it is forgotten.
static void
s_instance_drained (gw_broker_t *self, s_instance_t *instance)
{
    tl_log (TL_LOG_INFO, NULL, "instance %s of %s drained", instance->name,
            instance->service->name);
    s_send_kind (self, instance->link->rid, instance->link->rid_size, TL_MSG_DISCONNECT);
    s_instance_remove (self, instance, false);
}

//  The instance of request in flight gives its place back (the reply came).
static void
s_release (gw_broker_t *self, s_request_t *request)
{
    s_instance_t *instance = request->instance;
    s_peer_t *conn = request->conn;
    instance->in_flight--;
    request->instance = NULL;
    request->conn = NULL;
    if (conn->slot >= 0) {
        conn->running = NULL;
        if (conn->leaving)
            s_slot_remove (self, conn, NULL);
        else
            conn->idle_handle = zlistx_add_end (instance->idle, conn);
    }
}

//  Whether an instance can take work: its link is ready and, when it has
//  slots, one of them is. Only those count as live in status, metrics and
//  /readyz.
static bool
s_serves (const s_instance_t *instance)
{
    return !instance->slotted || instance->nslots > 0;
}

//  How many live instances of `service` can take work.
static size_t
s_serving (s_service_t *service)
{
    size_t count = 0;
    for (s_instance_t *instance = (s_instance_t *) zlistx_first (service->instances); instance;
         instance = (s_instance_t *) zlistx_next (service->instances))
        count += s_serves (instance);
    return count;
}

//  The newest live (not draining) instance of `service` called `name`.
static s_instance_t *
s_instance_find (s_service_t *service, const char *name)
{
    s_instance_t *found = NULL;
    for (s_instance_t *instance = (s_instance_t *) zlistx_first (service->instances); instance;
         instance = (s_instance_t *) zlistx_next (service->instances))
        if (streq (instance->name, name) && (!found || instance->seq > found->seq))
            found = instance;
    return found;
}

//  A new instance of `service` whose link is `rid`. NULL when out of memory.
static s_instance_t *
s_instance_new (gw_broker_t *self, s_service_t *service, const char *name,
                const unsigned char *rid, size_t size)
{
    s_instance_t *instance = calloc (1, sizeof *instance);
    if (!instance)
        return NULL;
    instance->name = strdup (name);
    instance->idle = zlistx_new ();
    instance->link = instance->name && instance->idle
                   ? s_peer_new (self, rid, size, instance, -1) : NULL;
    if (!instance->link) {
        void *item = instance;
        s_instance_free (&item);
        return NULL;
    }
    instance->service = service;
    instance->seq = ++self->next_instance;
    instance->db_ok = -1;
    instance->handle = zlistx_add_end (self->instances, instance);
    return instance;
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

//  A link announces its instance (`ready`): registered, or updated, and
//  acknowledged with a heartbeat, after which its slots may come.
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
    if (peer && peer->slot >= 0) {
        s_slot_remove (self, peer, "it announced a link");
        peer = NULL;
    }
    else
    if (peer && !streq (peer->instance->service->name, name)) {
        s_instance_lost (self, peer->instance, "changed service");
        peer = NULL;
    }
    s_service_t *service = s_service_require (self, name);
    if (!service)
        return;
    s_instance_t *instance = peer ? peer->instance
                                  : s_instance_new (self, service, tl_msg_str (msg, TL_MSG_INSTANCE),
                                                    rid, size);
    if (!instance)
        return;
    if (!streq (instance->name, tl_msg_str (msg, TL_MSG_INSTANCE))) {
        char *renamed = strdup (tl_msg_str (msg, TL_MSG_INSTANCE));
        if (renamed) {
            free (instance->name);
            instance->name = renamed;
        }
    }
    instance->capacity = tl_msg_capacity (msg);
    instance->slotted = tl_msg_slots (msg);
    instance->draining = false;
    if (tl_msg_db_ok (msg) >= 0)
        instance->db_ok = tl_msg_db_ok (msg);
    instance->last_seen = s_mono_ms ();
    if (!instance->lru_handle) {
        instance->lru_handle = zlistx_add_start (service->instances, instance);
        tl_log (TL_LOG_INFO, NULL, "instance %s of %s ready, capacity %d%s",
                instance->name, service->name, instance->capacity,
                instance->slotted ? " on slots" : "");
    }
    s_send_kind (self, rid, size, TL_MSG_HEARTBEAT);
    s_dispatch (self, service);
}

//  A slot announces itself (a `ready` with `slot`): it joins the newest
//  live instance of its service with its name, when its key may speak for
//  that service, in place of the instance's slot of the same index (an
//  older connection of the same thread). Otherwise it is answered
//  `disconnect`, and announces itself again later.
static void
s_on_slot_ready (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg,
                 const char *identity)
{
    const char *name = tl_msg_str (msg, TL_MSG_SERVICE);
    if (!s_may_announce (self, identity, name)) {
        s_refuse (self, rid, size, "its key is not that service's", identity, name);
        return;
    }
    s_service_t *service = (s_service_t *) zhashx_lookup (self->services, name);
    s_instance_t *instance = service
                           ? s_instance_find (service, tl_msg_str (msg, TL_MSG_INSTANCE)) : NULL;
    int index = tl_msg_slot (msg);
    s_peer_t *peer = s_peer_lookup (self, rid, size);
    if (instance && peer && peer->instance == instance && peer->slot == index) {
        instance->last_seen = s_mono_ms ();
        peer->leaving = false;
        return;                 //  known already
    }
    if (!instance || !instance->slotted || index >= instance->capacity
    ||  (peer && (peer->slot < 0 || peer->running))) {
        //  Not now: no such instance (yet), not one with slots, a link, or
        //  a slot still running a request of another instance
        s_send_kind (self, rid, size, TL_MSG_DISCONNECT);
        return;
    }
    instance->last_seen = s_mono_ms ();
    if (peer)
        s_slot_remove (self, peer, NULL);
    if (instance->slots [index])
        s_slot_remove (self, instance->slots [index], "replaced by a new connection");
    peer = s_peer_new (self, rid, size, instance, index);
    if (!peer)
        return;
    instance->slots [index] = peer;
    instance->nslots++;
    peer->idle_handle = zlistx_add_end (instance->idle, peer);
    s_dispatch (self, service);
}

static void
s_on_reply (gw_broker_t *self, s_peer_t *peer, tl_msg_t **msg_p)
{
    const char *id = tl_msg_str (*msg_p, TL_MSG_ID);
    s_request_t *request = (s_request_t *) zhashx_lookup (self->requests, id);
    if (!request || request->conn != peer)
        return;                 //  late, or not this connection's
    s_instance_t *instance = request->instance;
    s_service_t *service = instance->service;
    s_release (self, request);
    if (instance->draining && instance->in_flight == 0)
        s_instance_drained (self, instance);
    if (!request->answered)
        s_deliver (self, request, msg_p);
    zhashx_delete (self->requests, request->id);
    s_dispatch (self, service);
}

//  `disconnect` from a peer. From a link: the instance drains (no new work;
//  its replies still count), acknowledged once nothing of it is in flight,
//  so that every request it was given is answered before the
//  acknowledgement whatever connection it ran on. From a slot, or a peer
//  the broker does not know: acknowledged at once.
static void
s_on_disconnect (gw_broker_t *self, const unsigned char *rid, size_t size, s_peer_t *peer)
{
    if (!peer || peer->slot >= 0) {
        s_send_kind (self, rid, size, TL_MSG_DISCONNECT);
        if (peer && peer->running)
            peer->leaving = true;
        else
        if (peer)
            s_slot_remove (self, peer, NULL);
        return;
    }
    s_instance_t *instance = peer->instance;
    if (!instance->draining) {
        tl_log (TL_LOG_INFO, NULL, "instance %s of %s draining, %d request(s) in flight",
                instance->name, instance->service->name, instance->in_flight);
        instance->draining = true;
        if (instance->lru_handle)
            zlistx_delete (instance->service->instances, instance->lru_handle);
        instance->lru_handle = NULL;
    }
    if (instance->in_flight == 0)
        s_instance_drained (self, instance);
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

//  mesh.body.read: hands the read to the HTTP side when its parent is a
//  request in flight on this very connection that came from HTTP.
static bool
s_body_read (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg)
{
    const char *parent_id = tl_msg_str (msg, TL_MSG_PARENT);
    s_peer_t *peer = parent_id ? s_peer_lookup (self, rid, size) : NULL;
    s_request_t *parent = peer ? (s_request_t *) zhashx_lookup (self->requests, parent_id) : NULL;
    if (!parent || parent->conn != peer || !parent->fn || !self->body_read_fn
    ||  parent->fn != self->body_read_owner)
        return false;
    self->body_read_fn (self->body_read_arg, parent->arg, rid, size, tl_msg_str (msg, TL_MSG_ID));
    return true;
}

void
gw_broker_on_body_read (gw_broker_t *self, gw_body_read_fn *fn, void *arg, gw_reply_fn *owner)
{
    self->body_read_fn = fn;
    self->body_read_arg = arg;
    self->body_read_owner = owner;
}

int
gw_broker_answer (gw_broker_t *self, const unsigned char *rid, size_t rid_size,
                  const char *id, int status, const void *body, size_t size)
{
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    if (!reply)
        return TL_ENOMEM;
    tl_msg_set_str (reply, TL_MSG_ID, id);
    tl_msg_set_status (reply, status);
    int rc = body ? tl_msg_set_body (reply, body, size) : 0;
    if (rc == 0)
        rc = tl_msg_send (reply, zsock_resolve (self->backend), rid, rid_size);
    tl_msg_destroy (&reply);
    return rc;
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
            msgpack_pack_array (&pk, s_serving (s));
            for (s_instance_t *p = (s_instance_t *) zlistx_first (s->instances); p;
                 p = (s_instance_t *) zlistx_next (s->instances)) {
                if (!s_serves (p))
                    continue;
                msgpack_pack_map (&pk, 6);
                tl_mp_pack_kv (&pk, "instance", p->name);
                tl_mp_pack_str (&pk, "capacity");
                msgpack_pack_int (&pk, p->capacity);
                tl_mp_pack_str (&pk, "in_flight");
                msgpack_pack_int (&pk, p->in_flight);
                tl_mp_pack_str (&pk, "slots");
                msgpack_pack_int (&pk, p->nslots);
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
    else
    if (streq (method, "body.read")) {
        if (s_body_read (self, rid, size, msg)) {
            msgpack_sbuffer_destroy (&sbuf);
            tl_msg_destroy (&reply);
            return;                     //  answered by the HTTP side
        }
        s_pack_error (&pk, "no_body", "no streamed body of a request in flight here");
        tl_msg_set_status (reply, 404);
    }
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
//  nested request (its `parent` names a request in flight on this very
//  connection, the slot or link it was sent on) gets that request's
//  caller and at most its deadline; any other request runs as the peer
//  itself (`identity`: service:<name>, operator, gateway), or as
//  anonymous when the peer is no one.
static void
s_derive_caller (gw_broker_t *self, const unsigned char *rid, size_t size, tl_msg_t *msg,
                 const char *identity)
{
    tl_msg_clear_caller (msg);
    const char *parent_id = tl_msg_str (msg, TL_MSG_PARENT);
    s_peer_t *peer = parent_id ? s_peer_lookup (self, rid, size) : NULL;
    s_request_t *parent = peer ? (s_request_t *) zhashx_lookup (self->requests, parent_id) : NULL;
    if (!parent || !peer || parent->conn != peer) {
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
    if (peer) {
        snprintf (out, S_IDENTITY_MAX + 1, "service:%s", peer->instance->service->name);
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
        peer->instance->last_seen = s_mono_ms ();       //  any message is a sign of life
    char identity [S_IDENTITY_MAX + 1];
    bool known = s_identity (self, body, msg, peer, identity);
    switch (tl_msg_kind (msg)) {
        case TL_MSG_READY:
            if (tl_msg_slot (msg) >= 0)
                s_on_slot_ready (self, id, id_size, msg, known ? identity : NULL);
            else
                s_on_ready (self, id, id_size, msg, known ? identity : NULL);
            break;
        case TL_MSG_REPLY:
            if (peer)
                s_on_reply (self, peer, &msg);
            else
                s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
            break;
        case TL_MSG_HEARTBEAT:
            if (peer && peer->slot < 0 && tl_msg_db_ok (msg) >= 0)
                peer->instance->db_ok = tl_msg_db_ok (msg);
            if (!peer)
                s_send_kind (self, id, id_size, TL_MSG_DISCONNECT);
            break;
        case TL_MSG_DISCONNECT:
            s_on_disconnect (self, id, id_size, peer);
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
        if (!r->instance && s_serving (service) == 0)
            //  It waited its whole time for an instance that never came.
            s_deliver_error (self, r, 503, "no_instance", "no live instance of the service");
        else
            s_deliver_error (self, r, 504, "deadline", "the service did not answer in time");
        if (r->instance)
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
    for (s_instance_t *instance = (s_instance_t *) zlistx_first (self->instances); instance;
         instance = (s_instance_t *) zlistx_next (self->instances)) {
        if (mono - instance->last_seen > TL_HEARTBEAT_MSEC * TL_HEARTBEAT_LIVENESS) {
            if (!dead)
                dead = zlistx_new ();
            zlistx_add_end (dead, instance);
        }
        else
            s_send_kind (self, instance->link->rid, instance->link->rid_size,
                         TL_MSG_HEARTBEAT);
    }
    for (s_instance_t *instance = dead ? (s_instance_t *) zlistx_first (dead) : NULL; instance;
         instance = (s_instance_t *) zlistx_next (dead))
        s_instance_lost (self, instance, "heartbeat expired");
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
        for (s_instance_t *p = (s_instance_t *) zlistx_first (s->instances); p;
             p = (s_instance_t *) zlistx_next (s->instances)) {
            live = live || s_serves (p);
            db = db || (s_serves (p) && p->db_ok != 0);
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
                 s_serving (s));
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
        for (s_instance_t *p = (s_instance_t *) zlistx_first (s->instances); p;
             p = (s_instance_t *) zlistx_next (s->instances))
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

//  A fake peer announcing `instance` of `service`: a worker's link
//  (`slot` -1; with `slots`, one whose requests go to its slots), or its
//  slot `slot`.
static zsock_t *
s_fake_peer (const char *endpoint, const char *service, const char *instance, int capacity,
             bool slots, int slot)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zsock_connect (sock, "%s", endpoint);
    tl_msg_t *ready = tl_msg_new (TL_MSG_READY);
    tl_msg_set_str (ready, TL_MSG_SERVICE, service);
    tl_msg_set_str (ready, TL_MSG_INSTANCE, instance);
    tl_msg_set_capacity (ready, capacity);
    tl_msg_set_db_ok (ready, true);
    tl_msg_set_slots (ready, slots);
    tl_msg_set_slot (ready, slot);
    tl_msg_send (ready, zsock_resolve (sock), NULL, 0);
    tl_msg_destroy (&ready);
    return sock;
}

static zsock_t *
s_fake_worker (const char *endpoint, const char *service, const char *instance, int capacity)
{
    return s_fake_peer (endpoint, service, instance, capacity, false, -1);
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

//  Reads everything waiting on a fake peer; returns how many messages of
//  `kind` were among them (the others are dropped).
static int
s_count (zsock_t *peer, tl_msg_kind_t kind)
{
    int count = 0;
    zmsg_t *zmsg;
    while ((zmsg = zmsg_recv_nowait (peer))) {
        zframe_t *frame = zmsg_first (zmsg);
        tl_msg_t *msg = NULL;
        tl_msg_decode (zframe_data (frame), zframe_size (frame), &msg);
        count += msg && tl_msg_kind (msg) == kind;
        tl_msg_destroy (&msg);
        zmsg_destroy (&zmsg);
    }
    return count;
}

//  A fake peer sends `kind` (heartbeat, disconnect).
static void
s_say (zsock_t *peer, tl_msg_kind_t kind)
{
    tl_msg_t *msg = tl_msg_new (kind);
    tl_msg_set_str (msg, TL_MSG_INSTANCE, "fake");
    tl_msg_send (msg, zsock_resolve (peer), NULL, 0);
    tl_msg_destroy (&msg);
}

//  A fake worker answers `request` with `status`.
static void
s_answer (zsock_t *peer, tl_msg_t *request, int status)
{
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_str (reply, TL_MSG_ID, tl_msg_str (request, TL_MSG_ID));
    tl_msg_set_status (reply, status);
    tl_msg_send (reply, zsock_resolve (peer), NULL, 0);
    tl_msg_destroy (&reply);
}

//  Slots: requests go to an instance's idle slots, never to its link, and
//  no more than its capacity at once; a reply counts only on the slot its
//  request went to; a nested request takes its parent's caller only on
//  the parent's own slot.
static void
s_test_slots_dispatch (void)
{
    gw_broker_t *broker = gw_broker_new ("tcp://127.0.0.1:*", "gw-slots");
    assert (broker);
    char *endpoint = zsock_last_endpoint (broker->backend);
    gw_broker_declare (broker, "echo");
    s_service_t *echo = (s_service_t *) zhashx_lookup (broker->services, "echo");

    //  The link is acknowledged with a heartbeat; without a slot the
    //  instance is not live yet, and a request waits.
    zsock_t *link = s_fake_peer (endpoint, "echo", "i", 2, true, -1);
    s_pump (broker, 100);
    assert (s_count (link, TL_MSG_HEARTBEAT) >= 1);
    assert (zlistx_size (echo->instances) == 1 && s_serving (echo) == 0);
    s_sink_t s1 = { 0, 0 }, s2 = { 0, 0 }, s3 = { 0, 0 };
    uint64_t handle = 0;
    tl_msg_t *req = s_request ("first", true, 30000);
    tl_msg_set_str (req, TL_MSG_CALLER, "user");
    tl_msg_set_str (req, TL_MSG_USER_ID, "u1");
    assert (gw_broker_submit (broker, &req, s_sink, &s1, &handle) == 0);
    s_pump (broker, 50);
    assert (s_take (link) == NULL);

    //  Slot 0 comes and takes it; slot 1 takes the second; the third
    //  waits (capacity 2); the link gets none.
    zsock_t *slot0 = s_fake_peer (endpoint, "echo", "i", 1, false, 0);
    s_pump (broker, 100);
    zsock_t *slot1 = s_fake_peer (endpoint, "echo", "i", 1, false, 1);
    s_pump (broker, 100);
    assert (s_serving (echo) == 1);
    req = s_request ("second", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s2, &handle) == 0);
    req = s_request ("third", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s3, &handle) == 0);
    s_pump (broker, 100);
    tl_msg_t *first = s_take (slot0);
    tl_msg_t *second = s_take (slot1);
    assert (first && streq (tl_msg_str (first, TL_MSG_METHOD), "first"));
    assert (second && streq (tl_msg_str (second, TL_MSG_METHOD), "second"));
    assert (!s_take (slot0) && !s_take (slot1) && !s_take (link));

    //  A nested request on slot 0 naming its parent runs as the parent's
    //  caller; the same on slot 1 runs as no one.
    for (int i = 0; i < 2; i++) {
        tl_msg_t *nested = s_request ("nested", true, 30000);
        tl_msg_set_str (nested, TL_MSG_ID, i == 0 ? "n0" : "n1");
        tl_msg_set_str (nested, TL_MSG_PARENT, tl_msg_str (first, TL_MSG_ID));
        tl_msg_set_str (nested, TL_MSG_SERVICE, "mesh");
        tl_msg_set_str (nested, TL_MSG_METHOD, "ping");
        tl_msg_send (nested, zsock_resolve (i == 0 ? slot0 : slot1), NULL, 0);
        tl_msg_destroy (&nested);
    }
    s_pump (broker, 50);
    assert (s_count (slot0, TL_MSG_REPLY) == 1 && s_count (slot1, TL_MSG_REPLY) == 1);
    tl_msg_t *nested = s_request ("nested", true, 30000);
    tl_msg_set_str (nested, TL_MSG_ID, "n2");
    tl_msg_set_str (nested, TL_MSG_PARENT, tl_msg_str (first, TL_MSG_ID));
    tl_msg_send (nested, zsock_resolve (slot1), NULL, 0);
    tl_msg_destroy (&nested);
    s_pump (broker, 50);
    s_request_t *queued = (s_request_t *) zlistx_last (echo->queue);
    assert (queued && queued->origin_id && streq (queued->origin_id, "n2"));
    assert (!tl_msg_str (queued->msg, TL_MSG_USER_ID));
    nested = s_request ("nested", true, 30000);
    tl_msg_set_str (nested, TL_MSG_ID, "n3");
    tl_msg_set_str (nested, TL_MSG_PARENT, tl_msg_str (first, TL_MSG_ID));
    tl_msg_send (nested, zsock_resolve (slot0), NULL, 0);
    tl_msg_destroy (&nested);
    s_pump (broker, 50);
    queued = (s_request_t *) zlistx_last (echo->queue);
    assert (queued && streq (queued->origin_id, "n3"));
    assert (streq (tl_msg_str (queued->msg, TL_MSG_USER_ID), "u1"));

    //  A reply on the wrong slot is not taken; on the right one it is,
    //  and the slot takes the next request waiting.
    s_answer (slot1, first, 200);
    s_pump (broker, 50);
    assert (s1.calls == 0);
    s_answer (slot0, first, 200);
    s_pump (broker, 100);
    assert (s1.calls == 1 && s1.status == 200);
    tl_msg_t *third = s_take (slot0);
    assert (third && streq (tl_msg_str (third, TL_MSG_METHOD), "third"));
    assert (echo->instances && ((s_instance_t *) zlistx_first (echo->instances))->in_flight == 2);

    tl_msg_destroy (&first);
    tl_msg_destroy (&second);
    tl_msg_destroy (&third);
    zsock_destroy (&slot0);
    zsock_destroy (&slot1);
    zsock_destroy (&link);
    zstr_free (&endpoint);
    gw_broker_destroy (&broker);
}

//  A drain with slots: no new work for any slot of the instance, and the
//  acknowledgement only once its last reply is in.
static void
s_test_slots_drain (void)
{
    gw_broker_t *broker = gw_broker_new ("tcp://127.0.0.1:*", "gw-drain");
    assert (broker);
    char *endpoint = zsock_last_endpoint (broker->backend);
    zsock_t *link = s_fake_peer (endpoint, "echo", "d", 2, true, -1);
    s_pump (broker, 100);
    zsock_t *slot0 = s_fake_peer (endpoint, "echo", "d", 1, false, 0);
    zsock_t *slot1 = s_fake_peer (endpoint, "echo", "d", 1, false, 1);
    s_pump (broker, 100);
    s_sink_t s1 = { 0, 0 }, s2 = { 0, 0 };
    uint64_t handle = 0;
    tl_msg_t *req = s_request ("get", false, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s1, &handle) == 0);
    s_pump (broker, 100);
    tl_msg_t *running = s_take (slot0);
    zsock_t *busy = running ? slot0 : slot1;
    if (!running)
        running = s_take (slot1);
    assert (running);
    s_count (link, TL_MSG_HEARTBEAT);

    //  Draining with one request in flight: no acknowledgement yet, and
    //  the idle slot gets nothing (a new request waits for an instance).
    s_say (link, TL_MSG_DISCONNECT);
    s_pump (broker, 100);
    assert (s_count (link, TL_MSG_DISCONNECT) == 0);
    req = s_request ("get", false, 300);
    assert (gw_broker_submit (broker, &req, s_sink, &s2, &handle) == 0);
    s_pump (broker, 100);
    assert (!s_take (slot0) && !s_take (slot1));

    //  The reply is delivered, then the drain acknowledged on the link.
    s_answer (busy, running, 200);
    s_pump (broker, 100);
    assert (s1.calls == 1 && s1.status == 200);
    assert (s_count (link, TL_MSG_DISCONNECT) == 1);
    assert (zlistx_size (broker->instances) == 0 && zhashx_size (broker->peers) == 0);
    s_pump (broker, 300);
    assert (s2.calls == 1 && s2.status == 503);      //  no instance came

    tl_msg_destroy (&running);
    zsock_destroy (&slot0);
    zsock_destroy (&slot1);
    zsock_destroy (&link);
    zstr_free (&endpoint);
    gw_broker_destroy (&broker);
}

//  Load-aware over instances, whatever their slots; an instance that dies
//  gives its idempotent requests to another; a slot replaced by a new
//  connection of the same index gives up the request it ran.
static void
s_test_slots_lost (void)
{
    gw_broker_t *broker = gw_broker_new ("tcp://127.0.0.1:*", "gw-lost");
    assert (broker);
    char *endpoint = zsock_last_endpoint (broker->backend);
    zsock_t *link_a = s_fake_peer (endpoint, "echo", "a", 1, true, -1);
    zsock_t *link_b = s_fake_peer (endpoint, "echo", "b", 1, true, -1);
    s_pump (broker, 100);
    zsock_t *slot_a = s_fake_peer (endpoint, "echo", "a", 1, false, 0);
    zsock_t *slot_b = s_fake_peer (endpoint, "echo", "b", 1, false, 0);
    s_pump (broker, 100);

    //  One request each: capacity 1, least recently used first
    s_sink_t s1 = { 0, 0 }, s2 = { 0, 0 }, s3 = { 0, 0 };
    uint64_t handle = 0;
    tl_msg_t *req = s_request ("idem", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s1, &handle) == 0);
    req = s_request ("write", false, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s2, &handle) == 0);
    s_pump (broker, 100);
    tl_msg_t *at_a = s_take (slot_a);
    tl_msg_t *at_b = s_take (slot_b);
    assert (at_a && at_b);
    bool idem_on_a = streq (tl_msg_str (at_a, TL_MSG_METHOD), "idem");
    zsock_t *dying_link = idem_on_a ? link_a : link_b;
    zsock_t *dying_slot = idem_on_a ? slot_a : slot_b;
    zsock_t *live_link = idem_on_a ? link_b : link_a;
    zsock_t *live_slot = idem_on_a ? slot_b : slot_a;
    tl_msg_t *write = idem_on_a ? at_b : at_a;

    //  The instance holding the write gets a new connection for its slot
    //  0: the write it ran there is answered 503 worker_lost, and the new
    //  connection takes work.
    zsock_t *fresh = s_fake_peer (endpoint, "echo", idem_on_a ? "b" : "a", 1, false, 0);
    s_pump (broker, 100);
    assert (s2.calls == 1 && s2.status == 503);
    s_answer (live_slot, write, 200);           //  too late, and on a forgotten connection
    s_pump (broker, 50);
    assert (s2.calls == 1);

    //  The instance with the idempotent request goes silent: after
    //  liveness, its request runs on the other instance's new slot.
    zsock_destroy (&dying_slot);
    zsock_destroy (&dying_link);
    for (int i = 0; i < TL_HEARTBEAT_LIVENESS + 2; i++) {
        s_say (live_link, TL_MSG_HEARTBEAT);
        s_pump (broker, TL_HEARTBEAT_MSEC);
    }
    tl_msg_t *again = s_take (fresh);
    assert (again && streq (tl_msg_str (again, TL_MSG_METHOD), "idem"));
    assert (s1.calls == 0);
    s_answer (fresh, again, 200);
    s_pump (broker, 100);
    assert (s1.calls == 1 && s1.status == 200);
    req = s_request ("after", true, 30000);
    assert (gw_broker_submit (broker, &req, s_sink, &s3, &handle) == 0);
    s_pump (broker, 100);
    tl_msg_t *after = s_take (fresh);
    assert (after);

    tl_msg_destroy (&at_a);
    tl_msg_destroy (&at_b);
    tl_msg_destroy (&again);
    tl_msg_destroy (&after);
    zsock_destroy (&fresh);
    zsock_destroy (&live_slot);
    zsock_destroy (&live_link);
    zstr_free (&endpoint);
    gw_broker_destroy (&broker);
}

//  A slot joins only a live instance of the service it announces, with
//  slots, at an index below its capacity; otherwise it is told
//  `disconnect` and gets no work.
static void
s_test_slots_refused (void)
{
    gw_broker_t *broker = gw_broker_new ("tcp://127.0.0.1:*", "gw-refused");
    assert (broker);
    char *endpoint = zsock_last_endpoint (broker->backend);
    zsock_t *link = s_fake_peer (endpoint, "echo", "a", 2, true, -1);
    zsock_t *legacy = s_fake_peer (endpoint, "other", "b", 1, false, -1);
    s_pump (broker, 100);
    zsock_t *wrong [] = {
        s_fake_peer (endpoint, "other", "a", 1, false, 0),     //  another service's instance
        s_fake_peer (endpoint, "echo", "zz", 1, false, 0),     //  no such instance
        s_fake_peer (endpoint, "echo", "a", 1, false, 2),      //  past its capacity
        s_fake_peer (endpoint, "other", "b", 1, false, 0),     //  an instance without slots
    };
    s_pump (broker, 100);
    for (size_t i = 0; i < sizeof wrong / sizeof wrong [0]; i++) {
        assert (s_count (wrong [i], TL_MSG_DISCONNECT) == 1);
        zsock_destroy (&wrong [i]);
    }
    s_instance_t *a = (s_instance_t *) zlistx_first (
        ((s_service_t *) zhashx_lookup (broker->services, "echo"))->instances);
    assert (a && a->nslots == 0);
    s_instance_t *b = (s_instance_t *) zlistx_first (
        ((s_service_t *) zhashx_lookup (broker->services, "other"))->instances);
    assert (b && b->nslots == 0);
    zsock_destroy (&legacy);
    zsock_destroy (&link);
    zstr_free (&endpoint);
    gw_broker_destroy (&broker);
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
    //  ... but a `nowait` request (a durable job's) is refused at once
    req = s_request ("get", true, 30000);
    tl_msg_set_nowait (req, true);
    assert (gw_broker_submit (broker, &req, s_sink, &sink, &handle) == TL_EUNAVAIL);
    assert (gw_broker_pending (broker) == 0 && sink.calls == 1);

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

    s_test_slots_dispatch ();
    s_test_slots_drain ();
    s_test_slots_lost ();
    s_test_slots_refused ();
    if (verbose)
        printf ("(broker ok) ");
}
