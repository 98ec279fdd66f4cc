//  gw_calls.c — the gateway's record of the calls it serves (gw_calls.h):
//  a ring of fixed-size records, and up to GW_CALLS_IN_FLIGHT batches out.
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_calls.h"
#include "tl_error.h"
#include "tl_mp.h"

typedef struct {
    char endpoint [GW_CALLS_ENDPOINT_MAX + 1];
    char ip [46];
    int status;
    double ms;
    int64_t time_us;
    int64_t queued_ms;              //  monotonic, 0 until the first tick sees it
} s_call_t;

//  A batch sent and not answered yet
typedef struct {
    gw_calls_t *owner;
    bool busy;
    size_t count;
} s_flight_t;

struct _gw_calls_t {
    s_call_t *ring;
    size_t capacity, head, count;   //  the oldest at head
    char version [101];
    gw_calls_ship_fn *ship;
    void *ship_arg;
    s_flight_t flights [GW_CALLS_IN_FLIGHT];
    uint64_t recorded, shipped, dropped;
};

gw_calls_t *
gw_calls_new (size_t capacity, const char *version, gw_calls_ship_fn *ship, void *ship_arg)
{
    if (capacity < 1 || capacity > GW_CALLS_CAPACITY || !ship || !version
    ||  strlen (version) > 100)
        return NULL;
    gw_calls_t *self = (gw_calls_t *) calloc (1, sizeof (gw_calls_t));
    if (self)
        self->ring = (s_call_t *) calloc (capacity, sizeof (s_call_t));
    if (!self || !self->ring) {
        free (self);
        return NULL;
    }
    self->capacity = capacity;
    strcpy (self->version, version);
    self->ship = ship;
    self->ship_arg = ship_arg;
    for (int i = 0; i < GW_CALLS_IN_FLIGHT; i++)
        self->flights [i].owner = self;
    return self;
}

void
gw_calls_destroy (gw_calls_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->ring);
        free (*self_p);
        *self_p = NULL;
    }
}

void
gw_calls_record (gw_calls_t *self, const char *method, const char *route, int status,
                 double ms, const char *ip, int64_t time_us)
{
    self->recorded++;
    if (self->count == self->capacity) {
        self->dropped++;
        return;
    }
    s_call_t *call = &self->ring [(self->head + self->count) % self->capacity];
    snprintf (call->endpoint, sizeof call->endpoint, "%s %s", method, route);
    size_t ip_len = ip ? strlen (ip) : 0;
    if (ip_len < sizeof call->ip)
        memcpy (call->ip, ip ? ip : "", ip_len + 1);
    else
        call->ip [0] = 0;
    call->status = status;
    call->ms = ms;
    call->time_us = time_us;
    call->queued_ms = 0;
    self->count++;
}

//  The answer to a batch: acknowledged, or its calls dropped.
static void
s_answered (void *arg, tl_msg_t **reply_p)
{
    s_flight_t *flight = (s_flight_t *) arg;
    int status = reply_p && *reply_p ? tl_msg_status (*reply_p) : 0;
    if (status == 200)
        flight->owner->shipped += flight->count;
    else
        flight->owner->dropped += flight->count;
    flight->busy = false;
    if (reply_p)
        tl_msg_destroy (reply_p);
}

//  Packs the oldest `count` calls as a calls.ingest request and sends it
//  on `flight`; they leave the ring either way.
static void
s_ship (gw_calls_t *self, s_flight_t *flight, size_t count)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    tl_mp_pack_kv (&pk, "version", self->version);
    tl_mp_pack_str (&pk, "calls");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t i = 0; i < count; i++) {
        const s_call_t *call = &self->ring [(self->head + i) % self->capacity];
        msgpack_pack_array (&pk, 5);
        tl_mp_pack_str (&pk, call->endpoint);
        msgpack_pack_int (&pk, call->status);
        msgpack_pack_double (&pk, call->ms);
        tl_mp_pack_str (&pk, call->ip);
        msgpack_pack_int64 (&pk, call->time_us);
    }
    self->head = (self->head + count) % self->capacity;
    self->count -= count;
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    int rc = request && body.data ? 0 : TL_ENOMEM;
    if (rc == 0) {
        tl_msg_set_str (request, TL_MSG_SERVICE, "analytics");
        tl_msg_set_str (request, TL_MSG_METHOD, "calls.ingest");
        tl_msg_set_str (request, TL_MSG_CALLER, "gateway");
        tl_msg_set_deadline (request, tl_msg_now_ms () + GW_CALLS_TIMEOUT_MS);
        tl_msg_set_idempotent (request, false);     //  never twice: no duplicates
        rc = tl_msg_set_body (request, body.data, body.size);
    }
    msgpack_sbuffer_destroy (&body);
    flight->busy = true;
    flight->count = count;
    rc = rc ? rc : self->ship (self->ship_arg, &request, s_answered, flight);
    if (rc) {
        tl_msg_destroy (&request);
        flight->busy = false;
        self->dropped += count;
    }
}

void
gw_calls_tick (gw_calls_t *self, int64_t now_ms)
{
    //  The oldest call's wait starts when a tick first sees it
    for (size_t i = 0; i < self->count; i++) {
        s_call_t *call = &self->ring [(self->head + i) % self->capacity];
        if (call->queued_ms)
            break;                  //  the rest were seen before it
        call->queued_ms = now_ms ? now_ms : 1;
    }
    for (int i = 0; i < GW_CALLS_IN_FLIGHT && self->count; i++) {
        if (self->flights [i].busy)
            continue;
        bool full = self->count >= GW_CALLS_BATCH;
        bool waited = now_ms - self->ring [self->head].queued_ms >= GW_CALLS_FLUSH_MS;
        if (!full && !waited)
            break;
        s_ship (self, &self->flights [i], full ? GW_CALLS_BATCH : self->count);
    }
}

uint64_t gw_calls_recorded (gw_calls_t *self) { return self->recorded; }
uint64_t gw_calls_shipped (gw_calls_t *self) { return self->shipped; }
uint64_t gw_calls_dropped (gw_calls_t *self) { return self->dropped; }
size_t gw_calls_waiting (gw_calls_t *self) { return self->count; }

char *
gw_calls_metrics (gw_calls_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    fprintf (out,
        "# HELP tally_calls_recorded_total Calls this gateway recorded for analytics.\n"
        "# TYPE tally_calls_recorded_total counter\ntally_calls_recorded_total %" PRIu64 "\n"
        "# HELP tally_calls_shipped_total Recorded calls the analytics service took.\n"
        "# TYPE tally_calls_shipped_total counter\ntally_calls_shipped_total %" PRIu64 "\n"
        "# HELP tally_calls_dropped_total Recorded calls dropped: the buffer full, or a batch "
        "the analytics service did not take.\n"
        "# TYPE tally_calls_dropped_total counter\ntally_calls_dropped_total %" PRIu64 "\n"
        "# HELP tally_calls_waiting Recorded calls waiting to be shipped.\n"
        "# TYPE tally_calls_waiting gauge\ntally_calls_waiting %zu\n",
        self->recorded, self->shipped, self->dropped, self->count);
    fclose (out);
    return text;
}


//  --------------------------------------------------------------------------
//  Self-test

//  The shipper of the test: keeps each batch's answer to give later
typedef struct {
    int refuse;                     //  submit fails while > 0
    int sent;
    size_t last_count;
    char last_endpoint [GW_CALLS_ENDPOINT_MAX + 1];
    gw_reply_fn *fn [8];
    void *arg [8];
} s_test_ship_t;

static int
s_test_ship (void *ship_arg, tl_msg_t **request_p, gw_reply_fn *fn, void *arg)
{
    s_test_ship_t *ship = (s_test_ship_t *) ship_arg;
    if (ship->refuse > 0) {
        ship->refuse--;
        return TL_EBUSY;
    }
    const msgpack_object *body = tl_msg_body (*request_p);
    const msgpack_object *calls = tl_mp_get (body, "calls");
    assert (calls && calls->type == MSGPACK_OBJECT_ARRAY);
    assert (tl_mp_str_eq (tl_mp_get (body, "version"), "1.2"));
    assert (strcmp (tl_msg_str (*request_p, TL_MSG_METHOD), "calls.ingest") == 0);
    assert (strcmp (tl_msg_str (*request_p, TL_MSG_CALLER), "gateway") == 0);
    ship->last_count = calls->via.array.size;
    tl_mp_copy (&calls->via.array.ptr [0].via.array.ptr [0], ship->last_endpoint,
                sizeof ship->last_endpoint);
    assert (ship->sent < 8);
    ship->fn [ship->sent] = fn;
    ship->arg [ship->sent] = arg;
    ship->sent++;
    tl_msg_destroy (request_p);
    return 0;
}

//  Answers batch `i` with `status` (0: no reply at all).
static void
s_test_answer (s_test_ship_t *ship, int i, int status)
{
    tl_msg_t *reply = status ? tl_msg_new (TL_MSG_REPLY) : NULL;
    if (reply)
        tl_msg_set_status (reply, status);
    ship->fn [i] (ship->arg [i], &reply);
    assert (reply == NULL);
}

void
gw_calls_test (bool verbose)
{
    (void) verbose;
    s_test_ship_t ship = { 0 };
    assert (gw_calls_new (0, "1", s_test_ship, &ship) == NULL);
    assert (gw_calls_new (GW_CALLS_CAPACITY + 1, "1", s_test_ship, &ship) == NULL);
    gw_calls_t *calls = gw_calls_new (2500, "1.2", s_test_ship, &ship);
    assert (calls);

    //  A partial batch waits GW_CALLS_FLUSH_MS from the tick that saw it
    gw_calls_record (calls, "GET", "/api/v1/trackers/{id}", 200, 1.5, "10.0.0.1", 1);
    gw_calls_tick (calls, 10000);
    assert (ship.sent == 0 && gw_calls_waiting (calls) == 1);
    gw_calls_tick (calls, 10000 + GW_CALLS_FLUSH_MS);
    assert (ship.sent == 1 && ship.last_count == 1 && gw_calls_waiting (calls) == 0);
    assert (strcmp (ship.last_endpoint, "GET /api/v1/trackers/{id}") == 0);
    s_test_answer (&ship, 0, 200);
    assert (gw_calls_shipped (calls) == 1 && gw_calls_dropped (calls) == 0);

    //  Full batches go at once, at most GW_CALLS_IN_FLIGHT unanswered; a
    //  full ring drops
    for (int i = 0; i < 2600; i++)
        gw_calls_record (calls, "POST", "/x", 201, 2.0, "::1", i);
    assert (gw_calls_dropped (calls) == 100 && gw_calls_waiting (calls) == 2500);
    gw_calls_tick (calls, 20000);
    assert (ship.sent == 3 && ship.last_count == GW_CALLS_BATCH);     //  and one of 500 waits
    assert (gw_calls_waiting (calls) == 500);
    //  An error reply and no reply drop their batch; a success counts
    s_test_answer (&ship, 1, 503);
    s_test_answer (&ship, 2, 0);
    assert (gw_calls_dropped (calls) == 100 + 2 * GW_CALLS_BATCH);
    gw_calls_tick (calls, 20000 + GW_CALLS_FLUSH_MS);
    assert (ship.sent == 4 && ship.last_count == 500);
    s_test_answer (&ship, 3, 200);
    assert (gw_calls_shipped (calls) == 501);

    //  A batch that cannot be sent is dropped, and the next goes
    ship.refuse = 1;
    gw_calls_record (calls, "GET", "/y", 200, 1.0, "a-very-long-address-that-is-not-one-at-all-xxxxx", 5);
    gw_calls_tick (calls, 30000);
    gw_calls_tick (calls, 30000 + GW_CALLS_FLUSH_MS);
    assert (gw_calls_dropped (calls) == 100 + 2 * GW_CALLS_BATCH + 1 && ship.sent == 4);
    assert (gw_calls_recorded (calls) == 2602);
    char *text = gw_calls_metrics (calls);
    assert (text && strstr (text, "tally_calls_recorded_total 2602\n"));
    assert (strstr (text, "tally_calls_shipped_total 501\n"));
    free (text);
    gw_calls_destroy (&calls);
    gw_calls_destroy (&calls);
    assert (calls == NULL);
}
