//  tl_call.c — one request being handled by a service, and its reply.
#include "tl_call.h"
#include "tl_private.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"
#include "tl_valid.h"
#include "tl_time.h"
#include "tl_service.h"
#include "tl_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

struct _tl_call_t {
    tl_msg_t *request;
    tl_db_t *db;                //  borrowed from the handler thread
    int status;                 //  0 until a reply is started
    msgpack_sbuffer body;
    msgpack_packer packer;
    bool has_body;
    tl_msg_t *reply;            //  headers collect here
    tl_call_nested_fn *nested;  //  the runtime's way out for tl_call_call
    void *nested_arg;
};

tl_call_t *
tl_call_new (tl_msg_t **request_p, tl_db_t *db)
{
    tl_call_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->reply = tl_msg_new (TL_MSG_REPLY);
    if (!self->reply) {
        free (self);
        return NULL;
    }
    self->request = *request_p;
    *request_p = NULL;
    self->db = db;
    msgpack_sbuffer_init (&self->body);
    msgpack_packer_init (&self->packer, &self->body, msgpack_sbuffer_write);
    return self;
}

void
tl_call_destroy (tl_call_t **self_p)
{
    assert (self_p);
    tl_call_t *self = *self_p;
    if (!self)
        return;
    tl_msg_destroy (&self->request);
    tl_msg_destroy (&self->reply);
    msgpack_sbuffer_destroy (&self->body);
    free (self);
    *self_p = NULL;
}

tl_msg_t *tl_call_request (tl_call_t *self) { return self->request; }
void
tl_call_set_runtime (tl_call_t *self, tl_call_nested_fn *nested, void *arg)
{
    self->nested = nested;
    self->nested_arg = arg;
}
const char *tl_call_method (tl_call_t *self) { return tl_msg_str (self->request, TL_MSG_METHOD); }
const char *tl_call_user (tl_call_t *self) { return tl_msg_str (self->request, TL_MSG_USER_ID); }

const char *
tl_call_caller (tl_call_t *self)
{
    const char *kind = tl_msg_str (self->request, TL_MSG_CALLER);
    return kind ? kind : "anonymous";
}

bool
tl_call_range (tl_call_t *self, int64_t *from_ms, int64_t *to_ms)
{
    *from_ms = INT64_MIN;
    *to_ms = INT64_MAX;
    const char *from = tl_call_param (self, "from");
    const char *to = tl_call_param (self, "to");
    if (from && *from && tl_time_parse (from, from_ms) != 0) {
        tl_call_field_error (self, 400, "invalid", "from", "must be an RFC 3339 time");
        return false;
    }
    if (to && *to && tl_time_parse (to, to_ms) != 0) {
        tl_call_field_error (self, 400, "invalid", "to", "must be an RFC 3339 time");
        return false;
    }
    if (*from_ms > *to_ms) {
        tl_call_field_error (self, 400, "invalid", "from", "must not be after to");
        return false;
    }
    return true;
}

const char *
tl_call_user_zone (tl_call_t *self)
{
    const char *zone = tl_msg_str (self->request, TL_MSG_USER_TZ);
    return zone && *zone ? zone : "UTC";
}

bool
tl_call_user_verified (tl_call_t *self)
{
    return tl_msg_user_verified (self->request) == 1;
}

uint64_t tl_call_deadline (tl_call_t *self) { return tl_msg_deadline (self->request); }
tl_db_t *tl_call_db (tl_call_t *self) { return self->db; }
int tl_call_status (tl_call_t *self) { return self->status; }

const char *
tl_call_param (tl_call_t *self, const char *name)
{
    return tl_msg_param (self->request, name);
}

const msgpack_object *
tl_call_body (tl_call_t *self)
{
    return tl_msg_body (self->request);
}

const msgpack_object *
tl_call_body_map (tl_call_t *self)
{
    const msgpack_object *body = tl_msg_body (self->request);
    if (body && body->type == MSGPACK_OBJECT_MAP)
        return body;
    tl_call_field_error (self, 400, "invalid", "body", "must be a JSON object");
    return NULL;
}

bool
tl_call_has_role (tl_call_t *self, const char *role)
{
    const char **roles = NULL;
    size_t count = tl_msg_roles (self->request, &roles);
    for (size_t i = 0; i < count; i++)
        if (strcmp (roles [i], role) == 0)
            return true;
    return false;
}

const char *
tl_call_trace (tl_call_t *self)
{
    const char *trace = tl_msg_str (self->request, TL_MSG_TRACE);
    return trace ? trace : tl_msg_str (self->request, TL_MSG_ID);
}

msgpack_packer *
tl_call_reply (tl_call_t *self, int status)
{
    msgpack_sbuffer_clear (&self->body);
    self->status = status;
    self->has_body = true;
    return &self->packer;
}

void
tl_call_reply_empty (tl_call_t *self, int status)
{
    msgpack_sbuffer_clear (&self->body);
    self->status = status;
    self->has_body = false;
}

void
tl_call_header (tl_call_t *self, const char *name, const char *value)
{
    tl_msg_add_header (self->reply, name, value);
}

//  Packs {"error": {"code", "message", "fields"?}}.
static void
s_error (tl_call_t *self, int status, const char *code, const char *message,
         const char *field, const char *why)
{
    msgpack_packer *pk = tl_call_reply (self, status);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "error");
    msgpack_pack_map (pk, field ? 3 : 2);
    tl_mp_pack_kv (pk, "code", code);
    tl_mp_pack_kv (pk, "message", message);
    if (field) {
        tl_mp_pack_str (pk, "fields");
        msgpack_pack_map (pk, 1);
        tl_mp_pack_kv (pk, field, why);
    }
}

//  s_error with a printf-style message.
static void
s_error_v (tl_call_t *self, int status, const char *code, const char *format, va_list args)
{
    char message [512];
    vsnprintf (message, sizeof message, format, args);
    s_error (self, status, code, message, NULL, NULL);
}

void
tl_call_error (tl_call_t *self, int status, const char *code,
               const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_error_v (self, status, code, format, args);
    va_end (args);
}

void
tl_call_error_retry (tl_call_t *self, int status, int seconds, const char *code,
                     const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_error_v (self, status, code, format, args);
    va_end (args);
    char after [16];
    snprintf (after, sizeof after, "%d", seconds);
    tl_call_header (self, "Retry-After", after);
}

void
tl_call_db_error (tl_call_t *self, int err)
{
    //  The client hears only 503/504; the operator needs the cause
    tl_log (TL_LOG_ERROR, tl_call_trace (self), "%s: %s: %s", tl_call_method (self),
            tl_strerror (err), self->db ? tl_db_errmsg (self->db) : "no database");
    if (err == TL_ETIMEDOUT)
        tl_call_error (self, 504, "timeout", "the database did not answer in time");
    else
        tl_call_error (self, 503, "database", "the database is not available now");
}

PGresult *
tl_call_exec_page (tl_call_t *self, const char *name, int nparams, const char *const *values)
{
    int err = 0;
    PGresult *res = tl_db_exec (self->db, name, nparams, values, &err);
    if (!res && err == TL_EINVAL)       //  a cursor's time or id the database refused
        tl_call_field_error (self, 400, "invalid", "cursor", "is not a cursor from this list");
    else
    if (!res)
        tl_call_db_error (self, err);
    return res;
}

PGresult *
tl_call_exec_one (tl_call_t *self, const char *name, int nparams,
                  const char *const *values, const char *noun)
{
    int err = 0;
    PGresult *res = tl_db_exec (self->db, name, nparams, values, &err);
    if (!res)
        tl_call_db_error (self, err);
    else
    if (PQntuples (res) != 1) {
        PQclear (res);
        res = NULL;
        tl_call_error (self, 404, "not_found", "no such %s", noun);
    }
    return res;
}

void
tl_call_field_error (tl_call_t *self, int status, const char *code,
                     const char *field, const char *why)
{
    char message [512];
    snprintf (message, sizeof message, "%s %s", field, why);
    s_error (self, status, code, message, field, why);
}

bool
tl_call_text (tl_call_t *self, const msgpack_object *map, const char *name,
              const char *field, size_t max, char **out, bool *given)
{
    const msgpack_object *value = tl_mp_get (map ? map : tl_call_body (self), name);
    if (given)
        *given = value != NULL;
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return true;
    *out = tl_mp_strdup (value, max);
    if (*out)
        return true;
    tl_call_field_error (self, 400, "invalid", field ? field : name, "must be a string");
    return false;
}

bool
tl_call_page (tl_call_t *self, tl_page_t *page)
{
    memset (page, 0, sizeof *page);
    page->limit = TL_LIST_LIMIT_DEFAULT;
    const char *limit = tl_call_param (self, "limit");
    if (limit) {
        char *end = NULL;
        page->limit = strtol (limit, &end, 10);
        if (!*limit || *end || page->limit < 1 || page->limit > TL_LIST_LIMIT_MAX) {
            tl_call_field_error (self, 400, "invalid", "limit", "must be 1 to 500");
            return false;
        }
    }
    snprintf (page->fetch, sizeof page->fetch, "%ld", page->limit + 1);
    const char *cursor = tl_call_param (self, "cursor");
    if (cursor && *cursor) {
        //  "YYYY-MM-DDTHH:MM:SS.ffffffZ_<uuid>": digits and separators only
        const char *sep = strrchr (cursor, '_');
        size_t time_size = sep ? (size_t) (sep - cursor) : 0;
        bool ok = sep && time_size >= 20 && time_size <= 32
               && tl_valid_uuid (sep + 1);
        for (size_t i = 0; ok && i < time_size; i++)
            ok = isdigit ((unsigned char) cursor [i]) || strchr ("-:.TZ+", cursor [i]);
        if (!ok) {
            tl_call_field_error (self, 400, "invalid", "cursor", "is not a cursor from this list");
            return false;
        }
        memcpy (page->after_buf, cursor, time_size);
        page->after_buf [time_size] = 0;
        strcpy (page->after_buf + time_size + 1, sep + 1);
        page->after_time = page->after_buf;
        page->after_id = page->after_buf + time_size + 1;
    }
    return true;
}

int
tl_call_page_reply (tl_call_t *self, const tl_page_t *page, int rows, bool *more,
                    msgpack_packer **pk_p)
{
    *more = rows > page->limit;
    if (*more)
        rows = (int) page->limit;
    msgpack_packer *pk = tl_call_reply (self, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) rows);
    *pk_p = pk;
    return rows;
}

void
tl_call_page_end (msgpack_packer *pk, bool more, const char *time, const char *id)
{
    tl_mp_pack_str (pk, "next_cursor");
    if (!more || !time || !id) {
        msgpack_pack_nil (pk);
        return;
    }
    char cursor [128];
    snprintf (cursor, sizeof cursor, "%s_%s", time, id);
    tl_mp_pack_str (pk, cursor);
}

//  tl_call_call, and with `nowait` tl_call_ask's: a service with no live
//  instance is 503 `no_instance` at once (tl_msg_nowait).
static int
s_call (tl_call_t *self, const char *service, const char *method,
        const void *body, size_t body_size, bool nowait, tl_msg_t **reply_p)
{
    *reply_p = NULL;
    if (!self->nested)
        return TL_EUNAVAIL;
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    if (!request)
        return TL_ENOMEM;
    tl_msg_set_str (request, TL_MSG_SERVICE, service);
    tl_msg_set_str (request, TL_MSG_METHOD, method);
    tl_msg_set_str (request, TL_MSG_TRACE, tl_call_trace (self));
    tl_msg_set_deadline (request, tl_call_deadline (self));
    tl_msg_set_nowait (request, nowait);
    if (body && tl_msg_set_body (request, body, body_size) != 0) {
        tl_msg_destroy (&request);
        return TL_EINVAL;
    }
    //  The runtime sends it where this call's request came from, with
    //  `parent` set, and waits for the reply until the deadline.
    return self->nested (self->nested_arg, &request, tl_call_deadline (self), reply_p);
}

int
tl_call_call (tl_call_t *self, const char *service, const char *method,
              const void *body, size_t body_size, tl_msg_t **reply_p)
{
    return s_call (self, service, method, body, body_size, false, reply_p);
}

tl_msg_t *
tl_call_ask (tl_call_t *self, const char *service, const char *method,
             const void *body, size_t body_size)
{
    tl_msg_t *reply = NULL;
    int rc = s_call (self, service, method, body, body_size, true, &reply);
    int status = rc || !reply ? 0 : tl_msg_status (reply);
    if (status >= 200 && status < 300)
        return reply;
    if (status >= 400 && status < 500) {
        const msgpack_object *error = tl_mp_get (tl_msg_body (reply), "error");
        char code [64] = "refused", message [256] = "";
        tl_mp_copy (tl_mp_get (error, "code"), code, sizeof code);
        if (!tl_mp_copy (tl_mp_get (error, "message"), message, sizeof message) || !*message)
            snprintf (message, sizeof message, "the %s service refused this", service);
        tl_call_error (self, status, code, "%s", message);
    }
    else
        tl_call_error (self, 503, "unavailable", "the %s service did not answer", service);
    tl_msg_destroy (&reply);
    return NULL;
}

tl_msg_t *
tl_call_take_reply (tl_call_t *self)
{
    tl_msg_t *reply = self->reply;
    if (!self->status)
        tl_call_error (self, 500, "no_reply", "the handler gave no reply");
    tl_msg_set_str (reply, TL_MSG_ID, tl_msg_str (self->request, TL_MSG_ID));
    tl_msg_set_status (reply, self->status);
    if (self->has_body && tl_msg_set_body (reply, self->body.data, self->body.size)) {
        //  The handler packed nothing or more than one value: a bug.
        tl_msg_destroy (&reply);
        reply = tl_msg_new (TL_MSG_REPLY);
        if (!reply)
            return NULL;
        tl_msg_set_str (reply, TL_MSG_ID, tl_msg_str (self->request, TL_MSG_ID));
        tl_msg_set_status (reply, 500);
    }
    self->reply = tl_msg_new (TL_MSG_REPLY);
    return reply;
}

int
tl_call_replay (tl_call_t *self, const void *data, size_t size)
{
    tl_msg_t *stored = NULL;
    int rc = tl_msg_decode (data, size, &stored);
    if (rc)
        return rc;
    tl_msg_destroy (&self->reply);
    self->reply = stored;
    self->status = tl_msg_status (stored);
    self->has_body = false;     //  the stored body stays in the message
    return 0;
}

//  ---------------------------------------------------------------------
//  Broadcasts after the commit

typedef struct {
    char topic [TL_MAX_NAME_LEN + 1];
    char trace [TL_HTTP_MAX_REQUEST_ID + 1];
    size_t size;
    bool has_body;
    bool post;                      //  without waiting (tl_call_broadcast_post)
    char body [];
} s_broadcast_t;

static void
s_broadcast_run (void *arg)
{
    s_broadcast_t *cast = (s_broadcast_t *) arg;
    const void *body = cast->has_body ? cast->body : NULL;
    int acked = cast->post ? tl_service_broadcast_post (cast->topic, body, cast->size)
                           : tl_service_broadcast (cast->topic, body, cast->size,
                                                   TL_BROADCAST_TIMEOUT_MS);
    if (acked < 0)
        tl_log (TL_LOG_ERROR, cast->trace, "broadcast %s not sent: %s",
                cast->topic, tl_strerror (acked));
}

//  Copies the broadcast and runs it after the commit (at once outside a
//  transaction), waiting for the gateways or not (`post`).
static int
s_broadcast_after_commit (tl_call_t *self, const char *topic, const void *body, size_t size,
                          bool post)
{
    if (!topic || !*topic || strlen (topic) > TL_MAX_NAME_LEN || (body && !size))
        return TL_EINVAL;
    if (size > TL_BROADCAST_MAX_BODY)
        return TL_ETOOBIG;
    s_broadcast_t *cast = calloc (1, sizeof *cast + size);
    if (!cast)
        return TL_ENOMEM;
    strcpy (cast->topic, topic);
    snprintf (cast->trace, sizeof cast->trace, "%s", tl_call_trace (self));
    cast->has_body = body != NULL;
    cast->post = post;
    cast->size = body ? size : 0;
    if (body)
        memcpy (cast->body, body, size);
    if (!self->db) {
        s_broadcast_run (cast);
        free (cast);
        return 0;
    }
    return tl_db_after_commit (self->db, s_broadcast_run, cast, free);
}

int
tl_call_broadcast (tl_call_t *self, const char *topic, const void *body, size_t size)
{
    return s_broadcast_after_commit (self, topic, body, size, false);
}

int
tl_call_broadcast_post (tl_call_t *self, const char *topic, const void *body, size_t size)
{
    return s_broadcast_after_commit (self, topic, body, size, true);
}


void
tl_call_test (bool verbose)
{
    tl_msg_t *req = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (req, TL_MSG_ID, "7");
    tl_msg_set_str (req, TL_MSG_METHOD, "items.get");
    tl_msg_set_str (req, TL_MSG_USER_ID, "u1");
    tl_msg_add_role (req, "admin");
    tl_msg_add_param (req, "id", "42");
    tl_call_t *call = tl_call_new (&req, NULL);
    assert (call && req == NULL);
    assert (strcmp (tl_call_param (call, "id"), "42") == 0);
    assert (tl_call_has_role (call, "admin") && !tl_call_has_role (call, "x"));
    assert (strcmp (tl_call_trace (call), "7") == 0);

    //  No reply: 500.
    tl_msg_t *reply = tl_call_take_reply (call);
    assert (tl_msg_status (reply) == 500);
    tl_msg_destroy (&reply);

    //  A field error has the API's shape.
    tl_call_field_error (call, 400, "invalid", "name", "is required");
    tl_call_header (call, "X-Test", "1");
    reply = tl_call_take_reply (call);
    assert (tl_msg_status (reply) == 400);
    assert (strcmp (tl_msg_str (reply, TL_MSG_ID), "7") == 0);
    assert (strcmp (tl_msg_header (reply, "X-Test"), "1") == 0);
    const msgpack_object *err = tl_mp_get (tl_msg_body (reply), "error");
    assert (tl_mp_str_eq (tl_mp_get (err, "code"), "invalid"));
    assert (tl_mp_str_eq (tl_mp_get (tl_mp_get (err, "fields"), "name"), "is required"));

    //  Errors that say when to retry, and the database's
    tl_call_error_retry (call, 429, 3, "too_many_requests", "slow down (%d)", 3);
    tl_msg_t *retry = tl_call_take_reply (call);
    assert (tl_msg_status (retry) == 429);
    assert (strcmp (tl_msg_header (retry, "Retry-After"), "3") == 0);
    tl_msg_destroy (&retry);
    tl_call_db_error (call, TL_ETIMEDOUT);
    retry = tl_call_take_reply (call);
    assert (tl_msg_status (retry) == 504);
    tl_msg_destroy (&retry);
    tl_call_db_error (call, TL_EUNAVAIL);
    retry = tl_call_take_reply (call);
    assert (tl_msg_status (retry) == 503);
    assert (tl_mp_str_eq (tl_mp_get (tl_mp_get (tl_msg_body (retry), "error"), "code"),
                          "database"));
    tl_msg_destroy (&retry);

    //  Replay restores a stored reply.
    char *data = NULL;
    size_t size = 0;
    assert (tl_msg_encode (reply, &data, &size) == 0);
    tl_msg_destroy (&reply);
    assert (tl_call_replay (call, data, size) == 0);
    free (data);
    reply = tl_call_take_reply (call);
    assert (tl_msg_status (reply) == 400);
    assert (tl_mp_get (tl_msg_body (reply), "error"));
    tl_msg_destroy (&reply);
    tl_call_destroy (&call);
    tl_call_destroy (&call);

    //  A body that must be a map: none, or another type, is a 400
    req = tl_msg_new (TL_MSG_REQUEST);
    call = tl_call_new (&req, NULL);
    assert (tl_call_body_map (call) == NULL);
    reply = tl_call_take_reply (call);
    assert (tl_msg_status (reply) == 400);
    err = tl_mp_get (tl_msg_body (reply), "error");
    assert (tl_mp_str_eq (tl_mp_get (tl_mp_get (err, "fields"), "body"), "must be a JSON object"));
    tl_msg_destroy (&reply);
    tl_call_destroy (&call);
    const char list [] = { (char) 0x91, 0x01 }, map [] = { (char) 0x81, (char) 0xa1, 'a', 0x01 };
    for (int i = 0; i < 2; i++) {
        req = tl_msg_new (TL_MSG_REQUEST);
        assert (tl_msg_set_body (req, i ? map : list, i ? sizeof map : sizeof list) == 0);
        call = tl_call_new (&req, NULL);
        const msgpack_object *body = tl_call_body_map (call);
        assert ((body != NULL) == (i == 1));
        assert (tl_call_status (call) == (i ? 0 : 400));
        tl_call_destroy (&call);
    }

    //  Pages: limit and cursor, and what is refused
    struct { const char *limit, *cursor; bool ok; long want; } pages [] = {
        { NULL, NULL, true, TL_LIST_LIMIT_DEFAULT },
        { "1", NULL, true, 1 }, { "500", NULL, true, 500 },
        { "0", NULL, false, 0 }, { "501", NULL, false, 0 }, { "", NULL, false, 0 },
        { "5x", NULL, false, 0 }, { "-3", NULL, false, 0 },
        { NULL, "2026-11-23T18:05:00.123456Z_0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11", true, 50 },
        { NULL, "2026-11-23T18:05:00Z_not-a-uuid", false, 0 },
        { NULL, "x_0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11", false, 0 },
        { NULL, "2026-11-23T18:05:00.123456Z'; DROP TABLE x;--_0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11",
          false, 0 },
        { NULL, "", true, 50 },
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages [0]; i++) {
        req = tl_msg_new (TL_MSG_REQUEST);
        if (pages [i].limit)
            tl_msg_add_param (req, "limit", pages [i].limit);
        if (pages [i].cursor)
            tl_msg_add_param (req, "cursor", pages [i].cursor);
        call = tl_call_new (&req, NULL);
        tl_page_t page;
        bool ok = tl_call_page (call, &page);
        assert (ok == pages [i].ok);
        if (ok) {
            assert (page.limit == pages [i].want);
            if (pages [i].cursor && *pages [i].cursor) {
                assert (strcmp (page.after_time, "2026-11-23T18:05:00.123456Z") == 0);
                assert (strcmp (page.after_id, "0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11") == 0);
            }
            else
                assert (!page.after_time && !page.after_id);
        }
        else {
            reply = tl_call_take_reply (call);
            assert (tl_msg_status (reply) == 400);
            tl_msg_destroy (&reply);
        }
        tl_call_destroy (&call);
    }
    //  A next cursor reads back as the page after
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_call_page_end (&pk, true, "2026-01-02T03:04:05.000006Z",
                      "0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11");
    msgpack_pack_map (&pk, 1);
    tl_call_page_end (&pk, false, "x", "y");
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset) == MSGPACK_UNPACK_SUCCESS);
    assert (tl_mp_str_eq (tl_mp_get (&unpacked.data, "next_cursor"),
            "2026-01-02T03:04:05.000006Z_0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11"));
    assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset) == MSGPACK_UNPACK_SUCCESS);
    assert (tl_mp_get (&unpacked.data, "next_cursor")->type == MSGPACK_OBJECT_NIL);
    //  A page of 3 rows fetched for a limit of 2: two shown, more after
    req = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_add_param (req, "limit", "2");
    call = tl_call_new (&req, NULL);
    tl_page_t two;
    assert (tl_call_page (call, &two) && strcmp (two.fetch, "3") == 0);
    bool more = false;
    msgpack_packer *page_pk = NULL;
    assert (tl_call_page_reply (call, &two, 3, &more, &page_pk) == 2 && more && page_pk);
    assert (tl_call_page_reply (call, &two, 2, &more, &page_pk) == 2 && !more);
    tl_call_destroy (&call);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&sbuf);
    if (verbose)
        printf ("(call ok) ");
}
