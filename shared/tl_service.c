//  tl_service.c — the service runtime.
//
//  Threads: N handler threads each own a database connection and one
//  DEALER socket to every gateway, a *slot* (PROTOCOL.md §3): a gateway
//  gives a slot one request at a time, the thread that owns it runs the
//  request and sends the reply on the same socket, and a nested call
//  (tl_call_call) goes out and comes back on it too. A request thus meets
//  no thread of this process but libzmq's I/O thread and its handler, and
//  is never copied or encoded twice on its way.
//  The main thread keeps the instance's *link* to each gateway (one more
//  DEALER: ready, heartbeats both ways, the drain) in a zloop. When a
//  gateway acknowledges the link's ready (its first heartbeat after it),
//  the main thread bumps the link's epoch, and each handler thread then
//  announces its slot to that gateway: after the link, so that a slot
//  never names an instance the gateway does not know yet.
//  With several gateways, each counts the instance's threads as its own
//  capacity (as before slots): a request that a second gateway gives to a
//  thread busy with the first's waits for that thread, where it used to
//  wait for any free one.
//  A health thread pings the database once a second so that heartbeats can
//  say db_ok; a jobs thread (when the service has job kinds or schedules)
//  runs its durable jobs (tl_jobs.h) with a connection of its own.
#include "tl_service.h"
#include "tl_curve.h"
#include "tl_decl.h"
#include "tl_env.h"
#include "tl_private.h"
#include "tl_error.h"
#include "tl_idem.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_migrate.h"
#include "tl_mp.h"
#include "tl_time.h"

#include <czmq.h>
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <unistd.h>

#define S_MAX_METHODS 256

//  How long a handler thread waits for work before it looks at its links'
//  epochs and at the stop flag again.
#define S_SLOT_WAIT_MSEC 100

typedef struct {
    char name [TL_MAX_NAME_LEN + 1];
    tl_handler_fn *fn;
} s_method_t;

//  One gateway this instance serves: its link (main thread).
typedef struct {
    char *endpoint;
    zsock_t *sock;
    uint64_t last_heard;        //  monotonic ms
    uint64_t last_sent;
    uint64_t last_ready;        //  when ready was last sent
    bool ready_due;             //  ready to send (again) as soon as it may
    bool announced;             //  ready sent, not yet acknowledged
    bool drained;               //  the gateway acknowledged our disconnect
    atomic_uint epoch;          //  + 1 at each acknowledged ready: slots announce
    atomic_bool joined;         //  acknowledged, not draining: slots may announce
} s_link_t;

//  One handler thread: its slots (one DEALER per gateway, used by this
//  thread only) and its database connection.
typedef struct {
    tl_service_t *service;
    int index;
    pthread_t thread;
    bool started;
    zsock_t *slots [TL_MAX_GATEWAYS];
    unsigned announced [TL_MAX_GATEWAYS];   //  the link epoch each slot announced at
    bool forgotten [TL_MAX_GATEWAYS];       //  the gateway said disconnect to the slot
    uint64_t last_announce [TL_MAX_GATEWAYS];
    int rcvtimeo [TL_MAX_GATEWAYS];         //  the receive timeout each slot has now
    int next;                   //  the slot to look at first (fairness)
    tl_db_t *db;
    uint64_t nested_seq;
} s_worker_t;

#define S_MAX_SUBSCRIPTIONS 32

typedef struct {
    char event [TL_MAX_NAME_LEN + 1];
    tl_event_fn *fn;
} s_subscription_t;

struct _tl_service_t {
    char name [TL_MAX_NAME_LEN + 1];
    const tl_embed_t *migrations;
    s_method_t methods [S_MAX_METHODS];
    int nmethods;
    tl_thread_init_fn *thread_init;
    void *thread_init_arg;
    //  Configuration
    char *db_url;
    char instance [TL_MAX_ID_LEN + 1];
    int nthreads;
    //  Run state (main thread)
    zloop_t *loop;
    s_link_t links [TL_MAX_GATEWAYS];
    int nlinks;
    s_worker_t *workers;
    bool draining;
    uint64_t drain_started;
    bool stopped;               //  drained: leave the loop
    //  Handler threads
    atomic_int busy;            //  requests being handled
    //  Health thread
    pthread_t health;
    bool health_started;
    atomic_bool db_ok;
    atomic_bool stopping;
    //  Durable jobs: kinds and schedules, and the thread that runs them
    tl_jobs_t *jobs;
    pthread_t jobs_thread;
    bool jobs_started;
    bool jobs_thread_off;               //  TALLY_RUN_JOBS=0: only jobs.run_due runs them
    //  The service's declaration: its methods and who may call each
    const tl_decl_t *decl;              //  borrowed: the process's (tl_decl_find)
    //  Durable events it subscribes to (tl_event.h)
    s_subscription_t subscriptions [S_MAX_SUBSCRIPTIONS];
    int nsubscriptions;
};

//  The running service's gateways, for tl_service_call; each thread that
//  calls keeps its own client.
static char *s_mesh_endpoints;
static __thread tl_client_t *s_thread_client;
//  How long a broadcast_post waits for a thread's new client to connect
#define S_POST_CONNECT_MS 200

//  One client per gateway, for broadcasts (each gateway must hear them)
static __thread tl_client_t *s_thread_gateways [TL_MAX_GATEWAYS];

static uint64_t
s_mono_ms (void)
{
    return (uint64_t) zclock_mono ();
}

tl_service_t *
tl_service_new (const char *name, const tl_embed_t *migrations)
{
    if (!name || !*name || strlen (name) > TL_MAX_NAME_LEN)
        return NULL;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return NULL;
    //  The libraries that keep global state start here, once, before any
    //  thread does: one service runs per process.
    tl_log_init (name);
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != 0)
        return NULL;
    tl_service_t *self = calloc (1, sizeof *self);
    if (!self) {
        curl_global_cleanup ();
        return NULL;
    }
    strcpy (self->name, name);
    self->migrations = migrations;
    atomic_init (&self->busy, 0);
    atomic_init (&self->db_ok, false);
    atomic_init (&self->stopping, false);
    for (int i = 0; i < TL_MAX_GATEWAYS; i++) {
        atomic_init (&self->links [i].epoch, 0);
        atomic_init (&self->links [i].joined, false);
    }
    return self;
}

void
tl_service_destroy (tl_service_t **self_p)
{
    assert (self_p);
    tl_service_t *self = *self_p;
    if (!self)
        return;
    tl_jobs_destroy (&self->jobs);
    free (self->db_url);
    curl_global_cleanup ();
    free (self);
    *self_p = NULL;
    free (s_mesh_endpoints);
    s_mesh_endpoints = NULL;
}

int
tl_service_on (tl_service_t *self, const char *method, tl_handler_fn *fn)
{
    if (strlen (method) > TL_MAX_NAME_LEN)
        return TL_ETOOBIG;
    for (int i = 0; i < self->nmethods; i++)
        if (streq (self->methods [i].name, method))
            return TL_EEXIST;
    if (self->nmethods == S_MAX_METHODS)
        return TL_ETOOBIG;
    strcpy (self->methods [self->nmethods].name, method);
    self->methods [self->nmethods].fn = fn;
    self->nmethods++;
    return 0;
}

int
tl_service_subscribe (tl_service_t *self, const char *event, tl_event_fn *fn)
{
    if (!event || !fn)
        return TL_EINVAL;
    if (strlen (event) > TL_MAX_NAME_LEN)
        return TL_ETOOBIG;
    for (int i = 0; i < self->nsubscriptions; i++)
        if (streq (self->subscriptions [i].event, event))
            return TL_EEXIST;
    if (self->nsubscriptions == S_MAX_SUBSCRIPTIONS)
        return TL_ETOOBIG;
    s_subscription_t *sub = &self->subscriptions [self->nsubscriptions++];
    strcpy (sub->event, event);
    sub->fn = fn;
    return 0;
}

void
tl_service_set_thread_init (tl_service_t *self, tl_thread_init_fn *fn, void *arg)
{
    self->thread_init = fn;
    self->thread_init_arg = arg;
}

static tl_handler_fn *
s_lookup (tl_service_t *self, const char *method)
{
    for (int i = 0; i < self->nmethods; i++)
        if (streq (self->methods [i].name, method))
            return self->methods [i].fn;
    return NULL;
}

//  ---------------------------------------------------------------------
//  Handler threads

//  A reply of the runtime's own, in the API's error shape, to the request
//  `id` (for requests that never reach a handler, and replies that cannot
//  be sent). Returns NULL on allocation failure.
static tl_msg_t *
s_error_reply (const char *id, int status, const char *code, const char *message)
{
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    if (!request)
        return NULL;
    tl_msg_set_str (request, TL_MSG_ID, id);
    tl_call_t *call = tl_call_new (&request, NULL);
    if (!call) {
        tl_msg_destroy (&request);
        return NULL;
    }
    tl_call_error (call, status, code, "%s", message);
    tl_msg_t *reply = tl_call_take_reply (call);
    tl_call_destroy (&call);
    return reply;
}

//  The request's fingerprint for idempotency: method, params, body.
static void
s_request_hash (tl_msg_t *request, unsigned char hash [32])
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, 32);
    const char *method = tl_msg_str (request, TL_MSG_METHOD);
    crypto_generichash_update (&state, (const unsigned char *) method, strlen (method) + 1);
    for (size_t i = 0; i < tl_msg_param_count (request); i++) {
        const char *name, *value;
        tl_msg_param_at (request, i, &name, &value);
        crypto_generichash_update (&state, (const unsigned char *) name, strlen (name) + 1);
        crypto_generichash_update (&state, (const unsigned char *) value, strlen (value) + 1);
    }
    size_t size = 0;
    const char *body = tl_msg_body_raw (request, &size);
    if (body)
        crypto_generichash_update (&state, (const unsigned char *) body, size);
    crypto_generichash_final (&state, hash, 32);
}

typedef struct {
    tl_call_t *call;
    tl_handler_fn *fn;
    tl_msg_t *reply;            //  set when the transaction is done
} s_idem_run_t;

static int
s_handler_tx (tl_db_t *db, void *arg)
{
    s_idem_run_t *run = (s_idem_run_t *) arg;
    run->fn (run->call);
    return 0;
}

//  Runs a write that carries an idempotency key, inside one transaction:
//  claim the key, replay a stored answer or run the handler and store its
//  answer. A 5xx answer rolls everything back and is not stored.
static int
s_idem_tx (tl_db_t *db, void *arg)
{
    s_idem_run_t *run = (s_idem_run_t *) arg;
    tl_msg_destroy (&run->reply);       //  a retried transaction starts over
    tl_msg_t *request = tl_call_request (run->call);
    const char *user = tl_msg_str (request, TL_MSG_USER_ID);
    const char *key = tl_msg_str (request, TL_MSG_IDEM);
    const char *method = tl_msg_str (request, TL_MSG_METHOD);
    unsigned char hash [32];
    s_request_hash (request, hash);

    tl_idem_stored_t stored = { 0 };
    int rc = tl_idem_claim (db, user, key, method, hash, &stored);
    if (rc == 1) {
        rc = tl_call_replay (run->call, stored.reply, stored.reply_size);
        tl_idem_stored_reset (&stored);
        run->reply = tl_call_take_reply (run->call);
        return rc;
    }
    if (rc == TL_EEXIST) {
        tl_call_error (run->call, 422, "idempotency_key_reused",
                       "this Idempotency-Key was used for a different request");
        run->reply = tl_call_take_reply (run->call);
        return 0;
    }
    if (rc < 0)
        return rc;
    //  The handler runs in a savepoint: a statement of its that fails (and
    //  that it turned into a 4xx answer) is undone without losing the key.
    rc = tl_db_tx (db, s_handler_tx, run);
    if (rc == TL_ERETRY)
        return rc;              //  the whole transaction runs again
    run->reply = tl_call_take_reply (run->call);
    if (!run->reply)
        return TL_ENOMEM;
    if (tl_msg_status (run->reply) >= 500)
        return TL_EDB;          //  roll back; the reply still goes out
    char *data = NULL;
    size_t size = 0;
    rc = tl_msg_encode (run->reply, &data, &size);
    if (rc == 0)
        rc = tl_idem_store (db, user, key, tl_msg_status (run->reply), data, size);
    free (data);
    return rc;
}

//  The request a handler thread runs, as its nested calls see it.
typedef struct {
    s_worker_t *worker;
    int slot;                   //  the slot it came on
    const char *id;             //  its id, borrowed from the request
} s_running_t;

static int s_nested (void *arg, tl_msg_t **request_p, uint64_t deadline, tl_msg_t **reply_p);

//  Runs one request (taken) on this thread; `running` makes its nested
//  calls. Returns the reply (the caller's), or NULL when out of memory.
static tl_msg_t *
s_handle (tl_service_t *self, tl_db_t *db, s_running_t *running, tl_msg_t **request_p)
{
    tl_msg_t *request = *request_p;
    const char *method = tl_msg_str (request, TL_MSG_METHOD);
    tl_handler_fn *fn = s_lookup (self, method);
    int status = 0;
    const char *code = NULL, *why = NULL;
    if (!fn)
        status = 404, code = "unknown_method", why = "no such method";
    else
    if (!tl_decl_allows (self->decl, method, request))
        status = 403, code = "forbidden", why = "this method is not for this caller";
    else
    if (tl_msg_deadline (request) <= tl_msg_now_ms ())
        status = 504, code = "deadline", why = "deadline passed before work began";
    else
    if (!db)
        status = 503, code = "database_unavailable", why = "the service cannot reach its database";
    if (status) {
        tl_msg_t *reply = s_error_reply (tl_msg_str (request, TL_MSG_ID), status, code, why);
        tl_msg_destroy (request_p);
        return reply;
    }
    bool with_key = tl_msg_str (request, TL_MSG_IDEM)
                 && tl_msg_str (request, TL_MSG_USER_ID)
                 && !tl_msg_idempotent (request);
    running->id = tl_msg_str (request, TL_MSG_ID);
    tl_call_t *call = tl_call_new (request_p, db);
    if (!call) {
        tl_msg_destroy (request_p);
        return NULL;
    }
    tl_call_set_runtime (call, s_nested, running);
    tl_msg_t *reply = NULL;
    if (with_key) {
        s_idem_run_t run = { call, fn, NULL };
        int rc = tl_db_tx (db, s_idem_tx, &run);
        reply = run.reply;
        if (rc && (!reply || tl_msg_status (reply) < 500)) {
            tl_log (TL_LOG_ERROR, tl_call_trace (call), "idempotent write failed: %s: %s",
                    tl_strerror (rc), tl_db_errmsg (db));
            tl_msg_destroy (&reply);
            reply = s_error_reply (tl_msg_str (tl_call_request (call), TL_MSG_ID), 503,
                                   "unavailable", "the write could not be completed; "
                                   "retry with the same Idempotency-Key");
        }
    }
    else {
        fn (call);
        reply = tl_call_take_reply (call);
    }
    tl_call_destroy (&call);
    running->id = NULL;
    return reply;
}

//  Opens this thread's slots, one DEALER to each gateway (not announced
//  yet: s_slots_announce does that once the link is acknowledged).
static int
s_slots_open (s_worker_t *self)
{
    tl_service_t *service = self->service;
    for (int i = 0; i < service->nlinks; i++) {
        zsock_t *sock = zsock_new (ZMQ_DEALER);
        if (!sock)
            return TL_ENOMEM;
        self->slots [i] = sock;
        self->rcvtimeo [i] = INT_MIN;
        zsock_set_sndhwm (sock, TL_MESH_HWM);
        zsock_set_rcvhwm (sock, TL_MESH_HWM);
        zsock_set_linger (sock, 1000);
        zsock_set_maxmsgsize (sock, TL_MAX_FRAME_BYTES);
        zsock_set_immediate (sock, 1);
        int rc = tl_curve_client (sock);            //  the service's own key
        if (rc)
            return rc;
        if (zsock_connect (sock, "%s", service->links [i].endpoint) != 0)
            return TL_ECONFIG;
    }
    return 0;
}

//  Announces this thread's slot to each gateway that acknowledged the
//  link's ready since the slot last did, or that forgot the slot (said
//  `disconnect` to it; then at most every TL_RECONNECT_MSEC): a ready with
//  `slot` (the thread's index) and capacity 1. One that cannot be sent yet
//  is tried again on the next turn. Nothing while the link is not joined
//  (announced but not acknowledged, or draining).
static void
s_slots_announce (s_worker_t *self)
{
    tl_service_t *service = self->service;
    for (int i = 0; i < service->nlinks; i++) {
        if (!atomic_load (&service->links [i].joined))
            continue;
        unsigned epoch = atomic_load (&service->links [i].epoch);
        bool again = self->forgotten [i]
                  && s_mono_ms () - self->last_announce [i] >= TL_RECONNECT_MSEC;
        if (epoch == self->announced [i] && !again)
            continue;
        tl_msg_t *ready = tl_msg_new (TL_MSG_READY);
        if (!ready)
            return;
        tl_msg_set_str (ready, TL_MSG_SERVICE, service->name);
        tl_msg_set_str (ready, TL_MSG_INSTANCE, service->instance);
        tl_msg_set_capacity (ready, 1);
        tl_msg_set_slot (ready, self->index);
        if (tl_msg_send (ready, zsock_resolve (self->slots [i]), NULL, 0) == 0) {
            self->announced [i] = epoch;
            self->forgotten [i] = false;
            self->last_announce [i] = s_mono_ms ();
        }
        tl_msg_destroy (&ready);
    }
}

//  Reads one message from `slot` with `flags` (0: wait up to the socket's
//  receive timeout; ZMQ_DONTWAIT). Returns 0 and the message in *msg_p
//  (the caller's; NULL when it was no envelope, which is logged), or
//  TL_EBUSY when nothing came.
static int
s_slot_read (s_worker_t *self, int slot, int flags, tl_msg_t **msg_p)
{
    *msg_p = NULL;
    void *sock = zsock_resolve (self->slots [slot]);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, sock, flags) < 0) {
        zmq_msg_close (&frame);
        return TL_EBUSY;
    }
    bool more = zmq_msg_more (&frame);
    int rc = more ? TL_EPROTO
                  : tl_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), msg_p);
    zmq_msg_close (&frame);
    while (more) {              //  the rest of a message of several frames
        zmq_msg_init (&frame);
        more = zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&frame);
        zmq_msg_close (&frame);
    }
    if (rc)
        tl_log (TL_LOG_WARN, NULL, "bad message from gateway %s: %s",
                self->service->links [slot].endpoint, tl_strerror (rc));
    return 0;
}

//  Waits up to `timeout` ms for a message on slot `only`, or on any slot
//  when `only` is -1. Returns the message (the caller's) with its slot in
//  *slot_p, or NULL.
static tl_msg_t *
s_slot_recv (s_worker_t *self, int only, int timeout, int *slot_p)
{
    int nslots = self->service->nlinks;
    tl_msg_t *msg = NULL;
    if (only >= 0 || nslots == 1) {
        //  One socket: a blocking receive, libzmq's cheapest wait (one
        //  poll of the socket's mailbox)
        int slot = only >= 0 ? only : 0;
        if (self->rcvtimeo [slot] != timeout) {
            zsock_set_rcvtimeo (self->slots [slot], timeout);
            self->rcvtimeo [slot] = timeout;
        }
        *slot_p = slot;
        s_slot_read (self, slot, 0, &msg);
        return msg;
    }
    //  Several: what waits already, from the slot after the last served,
    //  else a poll of them all
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nslots; i++) {
            int slot = (self->next + i) % nslots;
            if (s_slot_read (self, slot, ZMQ_DONTWAIT, &msg) == 0) {
                self->next = (slot + 1) % nslots;
                *slot_p = slot;
                return msg;
            }
        }
        if (pass == 1)
            break;
        zmq_pollitem_t items [TL_MAX_GATEWAYS];
        for (int i = 0; i < nslots; i++)
            items [i] = (zmq_pollitem_t) { zsock_resolve (self->slots [i]), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (items, nslots, timeout) <= 0)
            return NULL;
    }
    return NULL;
}

//  Sends a reply (taken) on `slot`. A reply too large for one frame is
//  refused and answered 500 reply_too_large instead (sent as it is, the
//  gateway's ZeroMQ would drop the whole connection); `trace` (the
//  request's, or NULL) goes into the log line.
static void
s_slot_reply (s_worker_t *self, int slot, tl_msg_t **reply_p, const char *trace)
{
    if (!*reply_p)
        return;
    void *sock = zsock_resolve (self->slots [slot]);
    int rc = tl_msg_send (*reply_p, sock, NULL, 0);
    if (rc == TL_ETOOBIG) {
        size_t body = 0;
        tl_msg_body_raw (*reply_p, &body);
        tl_log (TL_LOG_ERROR, trace, "reply to request %s (status %d, body %zu bytes) "
                "exceeds the %ld-byte mesh frame: answered 500 reply_too_large",
                tl_msg_str (*reply_p, TL_MSG_ID), tl_msg_status (*reply_p), body,
                (long) TL_MAX_FRAME_BYTES);
        tl_msg_t *error = s_error_reply (tl_msg_str (*reply_p, TL_MSG_ID), 500,
                                         "reply_too_large",
                                         "the reply is larger than the mesh allows");
        rc = error ? tl_msg_send (error, sock, NULL, 0) : TL_ENOMEM;
        tl_msg_destroy (&error);
    }
    if (rc)
        tl_log (TL_LOG_WARN, trace, "reply to %s not sent: %s",
                self->service->links [slot].endpoint, tl_strerror (rc));
    tl_msg_destroy (reply_p);
}

//  tl_call_call's way out (tl_call_nested_fn): the nested request goes on
//  the slot its parent came on, naming the parent, so that the gateway
//  gives it the parent's caller; its reply comes back on the same slot.
static int
s_nested (void *arg, tl_msg_t **request_p, uint64_t deadline, tl_msg_t **reply_p)
{
    s_running_t *running = (s_running_t *) arg;
    s_worker_t *self = running->worker;
    char id [32];
    snprintf (id, sizeof id, "n%d.%" PRIu64, self->index, ++self->nested_seq);
    tl_msg_set_str (*request_p, TL_MSG_ID, id);
    tl_msg_set_str (*request_p, TL_MSG_PARENT, running->id);
    int rc = tl_msg_send (*request_p, zsock_resolve (self->slots [running->slot]), NULL, 0);
    tl_msg_destroy (request_p);
    if (rc)
        return rc == TL_EBUSY ? TL_EUNAVAIL : rc;
    while (true) {
        uint64_t now = tl_msg_now_ms ();
        if (now >= deadline)
            return TL_ETIMEDOUT;        //  a late reply is dropped on the next read
        uint64_t left = deadline - now;
        int slot = running->slot;
        tl_msg_t *msg = s_slot_recv (self, running->slot, left > INT_MAX ? INT_MAX : (int) left,
                                     &slot);
        if (msg && tl_msg_kind (msg) == TL_MSG_REPLY
        &&  streq (tl_msg_str (msg, TL_MSG_ID), id)) {
            *reply_p = msg;
            return 0;
        }
        if (msg && tl_msg_kind (msg) == TL_MSG_DISCONNECT)
            self->forgotten [running->slot] = true;
        if (msg && tl_msg_kind (msg) == TL_MSG_REQUEST) {
            //  A gateway gives a busy slot nothing: refused, not held
            tl_msg_t *busy = s_error_reply (tl_msg_str (msg, TL_MSG_ID), 503, "busy",
                                            "this slot is running another request");
            s_slot_reply (self, running->slot, &busy, NULL);
        }
        tl_msg_destroy (&msg);
    }
}

//  Runs one request (taken) that came on `slot`, and replies there.
static void
s_serve (s_worker_t *self, int slot, tl_msg_t **request_p)
{
    tl_service_t *service = self->service;
    atomic_fetch_add (&service->busy, 1);
    if (!self->db) {
        self->db = tl_db_new (service->db_url, service->name);
        if (self->db && service->thread_init
        &&  service->thread_init (self->db, service->thread_init_arg) != 0) {
            tl_log (TL_LOG_ERROR, NULL, "thread init failed: %s", tl_db_errmsg (self->db));
            tl_db_destroy (&self->db);
        }
    }
    char trace [TL_HTTP_MAX_REQUEST_ID + 1] = "";
    const char *given = tl_msg_str (*request_p, TL_MSG_TRACE);
    if (given)
        snprintf (trace, sizeof trace, "%s", given);
    s_running_t running = { self, slot, NULL };
    tl_msg_t *reply = s_handle (service, self->db, &running, request_p);
    s_slot_reply (self, slot, &reply, *trace ? trace : NULL);
    atomic_fetch_sub (&service->busy, 1);
}

static void s_thread_client_close (void);

//  A handler thread: announces its slots, then runs what comes on them,
//  one request at a time, until the service stops.
static void *
s_worker_thread (void *arg)
{
    s_worker_t *self = (s_worker_t *) arg;
    tl_service_t *service = self->service;
    int rc = s_slots_open (self);
    if (rc)
        tl_log (TL_LOG_ERROR, NULL, "handler thread %d has no slots: %s", self->index,
                tl_strerror (rc));
    while (rc == 0 && !atomic_load (&service->stopping)) {
        s_slots_announce (self);
        int slot = 0;
        tl_msg_t *msg = s_slot_recv (self, -1, S_SLOT_WAIT_MSEC, &slot);
        if (msg && tl_msg_kind (msg) == TL_MSG_REQUEST)
            s_serve (self, slot, &msg);
        else
        if (msg && tl_msg_kind (msg) == TL_MSG_DISCONNECT)
            self->forgotten [slot] = true;      //  announce the slot again
        //  Anything else is a late nested reply: dropped
        tl_msg_destroy (&msg);
    }
    tl_db_destroy (&self->db);
    s_thread_client_close ();
    for (int i = 0; i < TL_MAX_GATEWAYS; i++)
        zsock_destroy (&self->slots [i]);
    return NULL;
}

//  Pings the database once a second for the heartbeats' db_ok, and purges
//  expired idempotency keys every few minutes (any instance may: the purge
//  skips rows another holds).
static void *
s_health_thread (void *arg)
{
    tl_service_t *self = (tl_service_t *) arg;
    tl_db_t *db = NULL;
    int64_t next_purge = zclock_mono () + 60 * 1000;
    while (!atomic_load (&self->stopping)) {
        if (!db)
            db = tl_db_new (self->db_url, self->name);
        atomic_store (&self->db_ok, db && tl_db_ping (db));
        if (db && zclock_mono () >= next_purge) {
            int purged = tl_idem_purge (db);
            if (purged > 0)
                tl_log (TL_LOG_INFO, NULL, "purged %d expired idempotency key(s)", purged);
            next_purge = zclock_mono () + 5 * 60 * 1000;
        }
        for (int i = 0; i < 10 && !atomic_load (&self->stopping); i++)
            zclock_sleep (TL_HEARTBEAT_MSEC / 10);
    }
    tl_db_destroy (&db);
    return NULL;
}


//  ---------------------------------------------------------------------
//  Links to gateways (main thread)

static int s_link_readable (zloop_t *loop, zsock_t *sock, void *arg);

//  Sends `kind` (ready, heartbeat or disconnect) on link `index`. Returns
//  0 or a negative code (TL_EBUSY: not connected yet).
static int
s_link_send (tl_service_t *self, int index, tl_msg_kind_t kind)
{
    s_link_t *link = &self->links [index];
    tl_msg_t *msg = tl_msg_new (kind);
    if (!msg)
        return TL_ENOMEM;
    tl_msg_set_str (msg, TL_MSG_INSTANCE, self->instance);
    if (kind == TL_MSG_READY) {
        tl_msg_set_str (msg, TL_MSG_SERVICE, self->name);
        tl_msg_set_capacity (msg, self->nthreads);
        tl_msg_set_slots (msg, true);
    }
    if (kind != TL_MSG_DISCONNECT)
        tl_msg_set_db_ok (msg, atomic_load (&self->db_ok));
    int rc = tl_msg_send (msg, zsock_resolve (link->sock), NULL, 0);
    tl_msg_destroy (&msg);
    uint64_t now = s_mono_ms ();
    link->last_sent = now;
    if (kind == TL_MSG_READY) {
        link->last_ready = now;
        link->ready_due = rc != 0;      //  the tick tries again
        link->announced = rc == 0;
        atomic_store (&link->joined, false);
    }
    return rc;
}

//  Announces the instance on link `index`: now, or once TL_RECONNECT_MSEC
//  have passed since the last time (a gateway that refuses us is not
//  asked again at once).
static void
s_link_ready (tl_service_t *self, int index)
{
    s_link_t *link = &self->links [index];
    link->announced = false;
    atomic_store (&link->joined, false);
    if (s_mono_ms () - link->last_ready >= TL_RECONNECT_MSEC)
        s_link_send (self, index, TL_MSG_READY);
    else
        link->ready_due = true;
}

//  (Re)opens the socket of a link and announces this instance on it.
static int
s_link_open (tl_service_t *self, int index)
{
    s_link_t *link = &self->links [index];
    if (link->sock) {
        zloop_reader_end (self->loop, link->sock);
        zsock_destroy (&link->sock);
    }
    link->sock = zsock_new (ZMQ_DEALER);
    if (!link->sock)
        return TL_ENOMEM;
    zsock_set_sndhwm (link->sock, TL_MESH_HWM);
    zsock_set_rcvhwm (link->sock, TL_MESH_HWM);
    zsock_set_linger (link->sock, 1000);
    zsock_set_maxmsgsize (link->sock, TL_MAX_FRAME_BYTES);
    zsock_set_immediate (link->sock, 1);
    int rc = tl_curve_client (link->sock);
    if (rc)
        return rc;
    if (zsock_connect (link->sock, "%s", link->endpoint) != 0) {
        tl_log (TL_LOG_ERROR, NULL, "cannot connect to %s", link->endpoint);
        return TL_ECONFIG;
    }
    zloop_reader (self->loop, link->sock, s_link_readable, self);
    link->last_heard = s_mono_ms ();
    link->last_ready = 0;
    s_link_ready (self, index);
    return 0;
}

static int
s_link_index (tl_service_t *self, zsock_t *sock)
{
    for (int i = 0; i < self->nlinks; i++)
        if (self->links [i].sock == sock)
            return i;
    return -1;
}

//  Handles one message from gateway `index`. Takes the message.
static void
s_link_message (tl_service_t *self, int index, zmsg_t **zmsg_p)
{
    zmsg_t *zmsg = *zmsg_p;
    *zmsg_p = NULL;
    s_link_t *link = &self->links [index];
    link->last_heard = s_mono_ms ();
    zframe_t *frame = zmsg_first (zmsg);
    tl_msg_t *msg = NULL;
    int rc = zmsg_size (zmsg) == 1
           ? tl_msg_decode (zframe_data (frame), zframe_size (frame), &msg)
           : TL_EPROTO;
    zmsg_destroy (&zmsg);
    if (rc) {
        tl_log (TL_LOG_WARN, NULL, "bad message from gateway %s: %s",
                link->endpoint, tl_strerror (rc));
        return;
    }
    switch (tl_msg_kind (msg)) {
        case TL_MSG_HEARTBEAT:
            //  The first after our ready says the gateway knows us: now
            //  the slots announce themselves.
            if (link->announced && !self->draining) {
                link->announced = false;
                atomic_fetch_add (&link->epoch, 1);
                atomic_store (&link->joined, true);
            }
            break;
        case TL_MSG_DISCONNECT:
            //  Draining: the gateway's answer to ours, once nothing of ours
            //  is in flight there. Otherwise the gateway does not know us
            //  (it restarted, or thought us dead): announce ourselves again.
            if (self->draining)
                link->drained = true;
            else
                s_link_ready (self, index);
            break;
        case TL_MSG_REQUEST: {
            //  Requests go to the slots; a gateway that sends one here does
            //  not know them (an older one): refused, never left waiting.
            tl_log (TL_LOG_WARN, NULL, "gateway %s sent a request on the link, not a slot: "
                    "answered 503", link->endpoint);
            tl_msg_t *reply = s_error_reply (tl_msg_str (msg, TL_MSG_ID), 503, "unavailable",
                                             "this instance takes requests on its slots");
            if (reply)
                tl_msg_send (reply, zsock_resolve (link->sock), NULL, 0);
            tl_msg_destroy (&reply);
            break;
        }
        default:
            break;              //  a reply has no business here
    }
    tl_msg_destroy (&msg);
}

static int
s_link_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    tl_service_t *self = (tl_service_t *) arg;
    int index = s_link_index (self, sock);
    if (index < 0)
        return 0;
    //  Everything waiting, in one wake-up (bounded, to stay fair).
    for (int i = 0; i < 256; i++) {
        zmsg_t *zmsg = zmsg_recv_nowait (sock);
        if (!zmsg)
            break;
        s_link_message (self, index, &zmsg);
    }
    return 0;
}

//  The drain (SIGTERM): tells each gateway, keeps heart-beating while they
//  finish, and stops once no gateway can still have work for us (each
//  acknowledged, which it does when nothing of ours is in flight there,
//  or has been silent past liveness) and no handler thread is busy.
static void
s_drain_tick (tl_service_t *self, uint64_t now)
{
    if (!self->draining) {
        self->draining = true;
        self->drain_started = now;
        tl_log (TL_LOG_INFO, NULL, "draining: telling %d gateway(s) to send no more work",
                self->nlinks);
        for (int i = 0; i < self->nlinks; i++) {
            atomic_store (&self->links [i].joined, false);
            s_link_send (self, i, TL_MSG_DISCONNECT);
        }
    }
    bool quiet = true;
    for (int i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links [i];
        bool silent = now - link->last_heard > TL_HEARTBEAT_MSEC * TL_HEARTBEAT_LIVENESS;
        quiet = quiet && (link->drained || silent);
        if (!link->drained && !silent && now - link->last_sent >= TL_HEARTBEAT_MSEC)
            s_link_send (self, i, TL_MSG_HEARTBEAT);
    }
    if (quiet && atomic_load (&self->busy) == 0)
        self->stopped = true;
    else
    if (now - self->drain_started > TL_DRAIN_GRACE_MSEC) {
        tl_log (TL_LOG_WARN, NULL, "drain grace period over, leaving work unfinished");
        self->stopped = true;
    }
}

static int
s_tick (zloop_t *loop, int timer_id, void *arg)
{
    tl_service_t *self = (tl_service_t *) arg;
    uint64_t now = s_mono_ms ();
    if (zsys_interrupted || self->draining) {
        s_drain_tick (self, now);
        return self->stopped ? -1 : 0;
    }
    for (int i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links [i];
        if (now - link->last_heard > TL_HEARTBEAT_MSEC * TL_HEARTBEAT_LIVENESS) {
            tl_log (TL_LOG_WARN, NULL, "gateway %s silent, reconnecting", link->endpoint);
            s_link_open (self, i);
        }
        else
        if (link->ready_due && now - link->last_ready >= TL_RECONNECT_MSEC)
            s_link_send (self, i, TL_MSG_READY);
        else
        if (now - link->last_sent >= TL_HEARTBEAT_MSEC)
            s_link_send (self, i, TL_MSG_HEARTBEAT);
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Durable jobs (tl_jobs.h): the registry, the jobs thread, and the
//  operators' jobs.* methods

//  The running service's registry, for the jobs.* handlers (which see only
//  their call): one service runs per process.
static tl_jobs_t *s_jobs_registry;


//  tl_service_call, and for a durable job's calls `nowait` (tl_msg_nowait:
//  a service with no live instance is 503 at once, the job retries later).
static int
s_call (const char *service, const char *method, const void *body, size_t size,
        int timeout_ms, bool nowait, tl_msg_t **reply_p)
{
    *reply_p = NULL;
    if (!s_mesh_endpoints)
        return TL_EUNAVAIL;
    if (!s_thread_client)
        s_thread_client = tl_client_new (s_mesh_endpoints);
    tl_msg_t *request = s_thread_client ? tl_msg_new (TL_MSG_REQUEST) : NULL;
    if (!request)
        return TL_EUNAVAIL;
    int rc = tl_msg_set_str (request, TL_MSG_SERVICE, service);
    rc = rc ? rc : tl_msg_set_str (request, TL_MSG_METHOD, method);
    if (rc == 0 && body)
        rc = tl_msg_set_body (request, body, size);
    if (rc == 0) {
        tl_msg_set_deadline (request, tl_msg_now_ms () + (uint64_t) timeout_ms);
        tl_msg_set_nowait (request, nowait);
        rc = tl_client_call (s_thread_client, request, reply_p);
    }
    tl_msg_destroy (&request);
    return rc;
}

int
tl_service_call (const char *service, const char *method, const void *body,
                 size_t size, int timeout_ms, tl_msg_t **reply_p)
{
    return s_call (service, method, body, size, timeout_ms, false, reply_p);
}

//  The request mesh.broadcast {topic, body?}, or NULL.
static tl_msg_t *
s_broadcast_request (const char *topic, const void *body, size_t size, uint64_t deadline)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1 + (body != NULL));
    tl_mp_pack_kv (&pk, "topic", topic);
    if (body) {
        tl_mp_pack_str (&pk, "body");
        msgpack_sbuffer_write (&sbuf, body, size);
    }
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    int rc = request ? tl_msg_set_str (request, TL_MSG_SERVICE, "mesh") : TL_ENOMEM;
    rc = rc ? rc : tl_msg_set_str (request, TL_MSG_METHOD, "broadcast");
    rc = rc ? rc : tl_msg_set_body (request, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    if (rc)
        tl_msg_destroy (&request);
    else
        tl_msg_set_deadline (request, deadline);
    return request;
}

int
tl_service_broadcast (const char *topic, const void *body, size_t size, int timeout_ms)
{
    if (!s_mesh_endpoints)
        return TL_EUNAVAIL;
    if (!topic || strlen (topic) > TL_MAX_NAME_LEN)
        return TL_EINVAL;
    uint64_t deadline = tl_msg_now_ms () + (uint64_t) timeout_ms;
    char *list = strdup (s_mesh_endpoints);
    char *save = NULL;
    int index = 0, acked = 0;
    for (char *ep = list ? strtok_r (list, ",", &save) : NULL; ep && index < TL_MAX_GATEWAYS;
         ep = strtok_r (NULL, ",", &save), index++) {
        if (!s_thread_gateways [index])
            s_thread_gateways [index] = tl_client_new (ep);
        tl_msg_t *request = s_thread_gateways [index]
                          ? s_broadcast_request (topic, body, size, deadline) : NULL;
        tl_msg_t *reply = NULL;
        if (request && tl_client_call (s_thread_gateways [index], request, &reply) == 0
        &&  tl_msg_status (reply) == 200)
            acked++;
        else
            tl_log (TL_LOG_WARN, NULL, "broadcast %s: gateway %s did not acknowledge (%d)",
                    topic, ep, reply ? tl_msg_status (reply) : 0);
        tl_msg_destroy (&reply);
        tl_msg_destroy (&request);
    }
    free (list);
    return acked;
}

int
tl_service_broadcast_post (const char *topic, const void *body, size_t size)
{
    if (!s_mesh_endpoints)
        return TL_EUNAVAIL;
    if (!topic || strlen (topic) > TL_MAX_NAME_LEN)
        return TL_EINVAL;
    uint64_t deadline = tl_msg_now_ms () + TL_BROADCAST_TIMEOUT_MS;
    char *list = strdup (s_mesh_endpoints);
    char *save = NULL;
    int index = 0, sent = 0;
    for (char *ep = list ? strtok_r (list, ",", &save) : NULL; ep && index < TL_MAX_GATEWAYS;
         ep = strtok_r (NULL, ",", &save), index++) {
        //  A client just made is given a moment to connect, once per thread
        //  and gateway; later an unconnected gateway is skipped at once
        bool fresh = !s_thread_gateways [index];
        if (fresh)
            s_thread_gateways [index] = tl_client_new (ep);
        tl_msg_t *request = s_thread_gateways [index]
                          ? s_broadcast_request (topic, body, size, deadline) : NULL;
        int rc = request ? tl_client_post (s_thread_gateways [index], request) : TL_ENOMEM;
        for (int waited = 0; rc == TL_EBUSY && fresh && waited < S_POST_CONNECT_MS;
             waited += 5) {
            zclock_sleep (5);
            rc = tl_client_post (s_thread_gateways [index], request);
        }
        if (rc == 0)
            sent++;
        else
            tl_log (TL_LOG_WARN, NULL, "broadcast %s: gateway %s not connected", topic, ep);
        tl_msg_destroy (&request);
    }
    free (list);
    return sent;
}

int
tl_service_job_call (tl_job_ctx_t *job, const char *service, const char *method,
                     const void *body, size_t size, int timeout_ms, int *status,
                     tl_msg_t **reply_p)
{
    tl_msg_t *reply = NULL;
    *status = 0;
    //  A job never waits for a service that has no live instance: it fails
    //  at once and is retried with back-off, leaving the jobs thread free
    int rc = s_call (service, method, body, size, timeout_ms, true, &reply);
    if (rc) {
        tl_job_ctx_error (job, "%s.%s: %s", service, method, tl_strerror (rc));
        return rc;
    }
    *status = tl_msg_status (reply);
    if (reply_p)
        *reply_p = reply;
    else
        tl_msg_destroy (&reply);
    return 0;
}

int
tl_service_job_send (tl_job_ctx_t *job, const char *service, const char *method,
                     const void *body, size_t size, int timeout_ms, int *status_p)
{
    int status = 0;
    int rc = tl_service_job_call (job, service, method, body, size, timeout_ms, &status, NULL);
    if (status_p)
        *status_p = status;
    if (rc)
        return rc;
    if (status >= 400 && status < 500)
        tl_log (TL_LOG_WARN, NULL, "%s.%s refused job %s: %d", service, method,
                tl_job_ctx_unique_key (job) ? tl_job_ctx_unique_key (job) : tl_job_ctx_kind (job),
                status);
    else
    if (status < 200 || status >= 300) {
        tl_job_ctx_error (job, "%s.%s answered %d", service, method, status);
        return TL_EIO;
    }
    return 0;
}

//  Closes the calling thread's mesh client, if it made one.
static void
s_thread_client_close (void)
{
    tl_client_destroy (&s_thread_client);
    for (int i = 0; i < TL_MAX_GATEWAYS; i++)
        tl_client_destroy (&s_thread_gateways [i]);
}

static tl_jobs_t *
s_jobs (tl_service_t *self)
{
    if (!self->jobs)
        self->jobs = tl_jobs_new (NULL);
    return self->jobs;
}

int
tl_service_job (tl_service_t *self, const char *kind, tl_job_fn *fn)
{
    tl_jobs_t *jobs = s_jobs (self);
    return jobs ? tl_jobs_on (jobs, kind, fn) : TL_ENOMEM;
}

int
tl_service_schedule (tl_service_t *self, const char *name, const char *kind,
                     const char *spec)
{
    tl_jobs_t *jobs = s_jobs (self);
    return jobs ? tl_jobs_schedule (jobs, name, kind, spec) : TL_ENOMEM;
}

static bool
s_jobs_stopping (tl_service_t *self)
{
    return atomic_load (&self->stopping) || zsys_interrupted;
}

//  Opens the jobs thread's connection, with the service's statements.
static tl_db_t *
s_jobs_connect (tl_service_t *self)
{
    tl_db_t *db = tl_db_new (self->db_url, self->name);
    if (db && self->thread_init && self->thread_init (db, self->thread_init_arg) != 0) {
        tl_log (TL_LOG_ERROR, NULL, "jobs thread init failed: %s", tl_db_errmsg (db));
        tl_db_destroy (&db);
    }
    return db;
}

//  Materialises the schedules, runs due jobs one at a time, then sleeps
//  until a NOTIFY or TL_JOBS_POLL_MS. On a drain it takes no new job and
//  leaves once the job in hand is finished.
static void *
s_jobs_thread (void *arg)
{
    tl_service_t *self = (tl_service_t *) arg;
    tl_db_t *db = NULL;
    int listener = 0;
    int64_t next_purge = zclock_mono () + 60 * 1000;
    while (!s_jobs_stopping (self)) {
        if (!db)
            db = s_jobs_connect (self);
        int rc = db ? tl_jobs_materialise (self->jobs, db, 0) : TL_EUNAVAIL;
        if (rc < 0 && db)
            tl_log (TL_LOG_WARN, NULL, "schedules not materialised: %s: %s",
                    tl_strerror (rc), tl_db_errmsg (db));
        //  A few jobs a claim (one commit for all), each then run in its
        //  own transaction; on a drain the ones not started are given back.
        while (db && !s_jobs_stopping (self)) {
            tl_job_ctx_t *jobs [TL_JOBS_CLAIM_BATCH];
            int count = tl_jobs_claim (self->jobs, db, 0, TL_JOBS_CLAIM_BATCH, jobs);
            if (count <= 0)
                break;
            for (int i = 0; i < count; i++) {
                if (s_jobs_stopping (self))
                    tl_jobs_release (db, jobs [i]);
                else
                    tl_jobs_run (self->jobs, db, jobs [i]);
                tl_job_ctx_destroy (&jobs [i]);
            }
            if (count < TL_JOBS_CLAIM_BATCH)
                break;
        }
        if (db && zclock_mono () >= next_purge) {
            int purged = tl_jobs_purge (db);
            if (purged > 0)
                tl_log (TL_LOG_INFO, NULL, "purged %d done job(s)", purged);
            purged = tl_event_purge (db);
            if (purged > 0)
                tl_log (TL_LOG_INFO, NULL, "purged %d delivered or handled event(s)", purged);
            next_purge = zclock_mono () + 5 * 60 * 1000;
        }
        //  Short slices, so that a drain is noticed at once
        int64_t until = zclock_mono () + TL_JOBS_POLL_MS;
        bool woken = false;
        while (!woken && !s_jobs_stopping (self) && zclock_mono () < until) {
            rc = db ? tl_jobs_wait (db, &listener, 100) : TL_EUNAVAIL;
            if (rc < 0)
                zclock_sleep (100);         //  the next round reconnects
            woken = rc == 1;
        }
    }
    tl_db_destroy (&db);
    s_thread_client_close ();
    return NULL;
}

//  Starts the jobs thread when the service has job kinds or schedules
//  (and TALLY_RUN_JOBS is not 0). Called with signals blocked.
static int
s_jobs_start (tl_service_t *self)
{
    if (!self->jobs)
        return 0;
    if (self->jobs_thread_off) {
        tl_log (TL_LOG_INFO, NULL, "TALLY_RUN_JOBS=0: jobs run only through jobs.run_due");
        return 0;
    }
    if (pthread_create (&self->jobs_thread, NULL, s_jobs_thread, self))
        return TL_ENOMEM;
    self->jobs_started = true;
    return 0;
}

static void
s_jobs_stop (tl_service_t *self)
{
    if (self->jobs_started)
        pthread_join (self->jobs_thread, NULL);
    self->jobs_started = false;
}

//  jobs.list: params state (default all), limit.
static void
s_jobs_list (tl_call_t *call)
{
    const char *state = tl_call_param (call, "state");
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    msgpack_packer *pk = tl_call_reply (call, 200);
    int rc = tl_jobs_list (tl_call_db (call), state ? state : "all", (int) page.limit, pk);
    if (rc == TL_EINVAL)
        tl_call_field_error (call, 400, "invalid", "state",
                             "must be due, running, dead, done or all");
    else
    if (rc)
        tl_call_error (call, 503, "database", "could not list jobs");
}

//  jobs.retry: param id.
static void
s_jobs_retry (tl_call_t *call)
{
    const char *text = tl_call_param (call, "id");
    char *end = NULL;
    long long id = text ? strtoll (text, &end, 10) : 0;
    if (!text || !*text || *end || id < 1) {
        tl_call_field_error (call, 400, "invalid", "id", "must be a job id");
        return;
    }
    int rc = tl_jobs_retry (tl_call_db (call), (int64_t) id);
    if (rc == 0) {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "id");
        msgpack_pack_int64 (pk, id);
        tl_mp_pack_kv (pk, "state", "due");
    }
    else
    if (rc == TL_ENOTFOUND)
        tl_call_error (call, 404, "not_found", "no such job");
    else
    if (rc == TL_EBUSY)
        tl_call_error (call, 409, "not_retryable", "the job is done, running, or has not failed");
    else
        tl_call_error (call, 503, "database", "could not retry the job");
}

//  jobs.run_due: param at (RFC 3339, default now). Runs here, on this
//  handler thread, every job due at that time.
static void
s_jobs_run_due (tl_call_t *call)
{
    const char *at = tl_call_param (call, "at");
    int64_t now_ms = 0;
    if (at && tl_time_parse (at, &now_ms) != 0) {
        tl_call_field_error (call, 400, "invalid", "at", "must be an RFC 3339 time");
        return;
    }
    if (tl_db_in_tx (tl_call_db (call))) {
        tl_call_error (call, 409, "in_transaction", "jobs run in their own transactions");
        return;
    }
    //  In slices of a few jobs, stopping short of the request's deadline
    //  ("more": true then says that due jobs may remain).
    int ran = 0, failed = 0;
    bool more = false;
    while (s_jobs_registry && ran < TL_JOBS_RUN_DUE_MAX) {
        if (tl_msg_now_ms () + 500 >= tl_call_deadline (call)) {
            more = true;
            break;
        }
        int slice_failed = 0;
        int slice = tl_jobs_run_due (s_jobs_registry, tl_call_db (call), now_ms, 10,
                                     &slice_failed);
        if (slice < 0 && ran == 0) {
            tl_call_error (call, 503, "database", "could not run due jobs: %s",
                           tl_strerror (slice));
            return;
        }
        if (slice <= 0)
            break;
        ran += slice;
        failed += slice_failed;
        if (slice < 10)
            break;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 3);
    tl_mp_pack_str (pk, "ran");
    msgpack_pack_int (pk, ran);
    tl_mp_pack_str (pk, "failed");
    msgpack_pack_int (pk, failed);
    tl_mp_pack_str (pk, "more");
    if (more) msgpack_pack_true (pk); else msgpack_pack_false (pk);
}

//  Registers the jobs.* methods and signs claims with the instance id.
static int
s_jobs_setup (tl_service_t *self)
{
    if (self->jobs)
        tl_jobs_set_worker (self->jobs, self->instance);
    s_jobs_registry = self->jobs;
    int rc = tl_service_on (self, "jobs.list", s_jobs_list);
    if (rc == 0)
        rc = tl_service_on (self, "jobs.retry", s_jobs_retry);
    if (rc == 0)
        rc = tl_service_on (self, "jobs.run_due", s_jobs_run_due);
    return rc;
}

//  ---------------------------------------------------------------------
//  Start and stop

static int
s_configure (tl_service_t *self)
{
    const char *url = tl_env ("DATABASE_URL", NULL);
    if (!url) {
        tl_log (TL_LOG_ERROR, NULL, "DATABASE_URL is not set");
        return TL_ECONFIG;
    }
    self->db_url = strdup (url);
    long threads = 0;
    if (tl_env_long ("TALLY_WORKERS", TL_WORKER_THREADS_DEFAULT, 1, TL_WORKER_THREADS_MAX,
                     &threads))
        return TL_ECONFIG;
    self->nthreads = (int) threads;
    const char *instance = tl_env ("TALLY_INSTANCE", NULL);
    if (instance)
        snprintf (self->instance, sizeof self->instance, "%s", instance);
    else {
        char host [24] = "localhost";
        gethostname (host, sizeof host - 1);
        snprintf (self->instance, sizeof self->instance, "%.24s@%.24s:%d",
                  self->name, host, (int) getpid ());
    }
    char *list = strdup (tl_env ("TALLY_MESH", "tcp://127.0.0.1:5555"));
    free (s_mesh_endpoints);
    s_mesh_endpoints = strdup (list);
    char *save = NULL;
    for (char *ep = strtok_r (list, ",", &save); ep; ep = strtok_r (NULL, ",", &save)) {
        if (self->nlinks == TL_MAX_GATEWAYS) {
            tl_log (TL_LOG_ERROR, NULL, "TALLY_MESH names more than %d gateways", TL_MAX_GATEWAYS);
            free (list);
            return TL_ECONFIG;
        }
        self->links [self->nlinks++].endpoint = strdup (ep);
    }
    free (list);
    self->jobs_thread_off = !tl_env_flag ("TALLY_RUN_JOBS", true);
    return self->nlinks ? 0 : TL_ECONFIG;
}

static int
s_migrate (tl_service_t *self)
{
    tl_db_t *db = NULL;
    //  The database may still be starting (make run starts everything at
    //  once): try for a while before giving up.
    for (int attempt = 0; attempt < 50 && !db && !zsys_interrupted; attempt++) {
        db = tl_db_new (self->db_url, NULL);
        if (!db)
            zclock_sleep (200);
    }
    if (!db)
        return TL_EUNAVAIL;
    int rc = tl_migrate (db, self->name, self->migrations);
    tl_db_destroy (&db);
    if (rc < 0)
        return rc;
    tl_log (TL_LOG_INFO, NULL, "schema %s: %d migration(s) applied", self->name, rc);
    return 0;
}

static void
s_stop_threads (tl_service_t *self)
{
    //  Handler threads see the flag within S_SLOT_WAIT_MSEC, or once the
    //  request in hand is done.
    atomic_store (&self->stopping, true);
    for (int i = 0; self->workers && i < self->nthreads; i++)
        if (self->workers [i].started)
            pthread_join (self->workers [i].thread, NULL);
    free (self->workers);
    self->workers = NULL;
    if (self->health_started)
        pthread_join (self->health, NULL);
    s_jobs_stop (self);
}

static int
s_start_threads (tl_service_t *self)
{
    //  Handler threads take no signals: SIGTERM reaches the main thread.
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &old);
    int rc = 0;
    self->workers = calloc ((size_t) self->nthreads, sizeof (s_worker_t));
    if (!self->workers)
        rc = TL_ENOMEM;
    for (int i = 0; rc == 0 && i < self->nthreads; i++) {
        s_worker_t *worker = &self->workers [i];
        worker->service = self;
        worker->index = i;
        if (pthread_create (&worker->thread, NULL, s_worker_thread, worker))
            rc = TL_ENOMEM;
        else
            worker->started = true;
    }
    if (rc == 0 && pthread_create (&self->health, NULL, s_health_thread, self) == 0)
        self->health_started = true;
    if (rc == 0)
        rc = s_jobs_start (self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    return rc;
}

//  ---------------------------------------------------------------------
//  The declaration: who may call what, which events come and go

//  The running service's subscriptions, for events.deliver.
static tl_service_t *s_subscriber;

static tl_event_fn *
s_subscription (const char *event)
{
    for (int i = 0; s_subscriber && i < s_subscriber->nsubscriptions; i++)
        if (streq (s_subscriber->subscriptions [i].event, event))
            return s_subscriber->subscriptions [i].fn;
    return NULL;
}

static void
s_events_deliver (tl_call_t *call)
{
    tl_event_receive (call, s_subscription);
}

//  Loads the service's declaration, and registers what its events need:
//  the delivery job when it publishes, events.deliver when it subscribes.
static int
s_declaration_load (tl_service_t *self)
{
    self->decl = tl_decl_find (self->name);
    if (!self->decl)
        return TL_ECONFIG;
    const char *const *events = NULL;
    int rc = 0;
    if (tl_decl_publishes (self->decl, &events) > 0)
        rc = tl_service_job (self, TL_EVENT_JOB, tl_event_deliver_job);
    if (rc == 0 && tl_decl_subscribes (self->decl, &events) > 0)
        rc = tl_service_on (self, "events.deliver", s_events_deliver);
    s_subscriber = self;
    return rc;
}

//  Whether `event` is in the list.
static bool
s_listed (const char *const *events, size_t count, const char *event)
{
    for (size_t i = 0; i < count; i++)
        if (streq (events [i], event))
            return true;
    return false;
}

//  Checks the declaration against the handlers: every declared method has
//  a handler, every handler a declaration, and so with subscriptions.
static int
s_check_declaration (tl_service_t *self)
{
    int missing = 0;
    for (size_t i = 0; i < tl_decl_size (self->decl); i++) {
        const char *method = tl_decl_method_at (self->decl, i);
        if (!s_lookup (self, method)) {
            tl_log (TL_LOG_ERROR, NULL, "method %s is declared but has no handler", method);
            missing++;
        }
    }
    for (int i = 0; i < self->nmethods; i++)
        if (!tl_decl_has (self->decl, self->methods [i].name)) {
            tl_log (TL_LOG_ERROR, NULL, "method %s has a handler but no declaration in "
                    "proto/services/%s.json", self->methods [i].name, self->name);
            missing++;
        }
    const char *const *events = NULL;
    size_t count = tl_decl_subscribes (self->decl, &events);
    for (size_t i = 0; i < count; i++)
        if (!s_subscription (events [i])) {
            tl_log (TL_LOG_ERROR, NULL, "event %s is subscribed to but has no handler", events [i]);
            missing++;
        }
    for (int i = 0; i < self->nsubscriptions; i++)
        if (!s_listed (events, count, self->subscriptions [i].event)) {
            tl_log (TL_LOG_ERROR, NULL, "event %s has a handler but is not in \"subscribes\" "
                    "of proto/services/%s.json", self->subscriptions [i].event, self->name);
            missing++;
        }
    return missing ? TL_ECONFIG : 0;
}

int
tl_service_run (tl_service_t *self)
{
    char peer [TL_MAX_NAME_LEN + 16];
    snprintf (peer, sizeof peer, "service:%s", self->name);
    tl_curve_set_peer (peer);
    int rc = s_configure (self);
    if (rc == 0)
        rc = s_declaration_load (self);
    if (rc == 0)
        rc = s_migrate (self);
    //  The migration just talked to the database: the first heartbeats say
    //  so, before the health thread's first ping (else /readyz would call a
    //  healthy new instance's database down for up to a second).
    if (rc == 0)
        atomic_store (&self->db_ok, true);
    if (rc == 0)
        rc = s_jobs_setup (self);
    if (rc == 0)
        rc = s_check_declaration (self);
    if (rc) {
        tl_log (TL_LOG_ERROR, NULL, "cannot start: %s", tl_strerror (rc));
        return rc;
    }
    self->loop = zloop_new ();
    zloop_set_nonstop (self->loop, true);       //  s_tick handles signals
    //  The links first: a handler thread announces its slots once a
    //  gateway has acknowledged the link.
    for (int i = 0; rc == 0 && i < self->nlinks; i++)
        rc = s_link_open (self, i);
    if (rc == 0)
        rc = s_start_threads (self);
    if (rc == 0) {
        tl_log (TL_LOG_INFO, NULL, "instance %s serving %d method(s) on %d thread(s) via %d gateway(s)",
                self->instance, self->nmethods, self->nthreads, self->nlinks);
        zloop_timer (self->loop, TL_HEARTBEAT_MSEC / 10, 0, s_tick, self);
        //  zloop_start also returns when a signal interrupts its poll,
        //  nonstop or not: go back in until s_tick says the drain is done.
        while (!self->stopped)
            zloop_start (self->loop);
        tl_log (TL_LOG_INFO, NULL, "instance %s stopped", self->instance);
    }
    s_stop_threads (self);
    zloop_destroy (&self->loop);
    for (int i = 0; i < self->nlinks; i++) {
        zsock_destroy (&self->links [i].sock);
        free (self->links [i].endpoint);
        self->links [i].endpoint = NULL;
    }
    self->nlinks = 0;
    return rc;
}

void
tl_service_test (bool verbose)
{
    //  Construction rules; running is covered by the integration tests,
    //  which start real instances against real gateways.
    assert (tl_service_new ("Bad-Name", NULL) == NULL);
    assert (tl_service_new ("", NULL) == NULL);
    tl_service_t *svc = tl_service_new ("test_svc", NULL);
    assert (svc);
    assert (tl_service_on (svc, "items.get", NULL) == 0);
    assert (tl_service_on (svc, "items.get", NULL) == TL_EEXIST);
    tl_service_destroy (&svc);
    assert (svc == NULL);
    tl_service_destroy (&svc);
    if (verbose)
        printf ("(service ok) ");
}
