//  gw_streams.c — the Server-Sent Event streams a gateway holds
//  (gw_streams.h).
//
//  A stream's bytes wait in its backlog (`out`) until libmicrohttpd asks
//  for them (s_reader). With nothing to send, the reader suspends the
//  connection and returns 0; whatever appends to the backlog resumes it
//  (s_wake). A stream ends by its reader returning end-of-stream once it
//  is resumed (s_end), and is freed with its response (s_free), which is
//  the one place it leaves the user's list and the set.
#define _GNU_SOURCE         //  POLLRDHUP
#include "gw_streams.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/socket.h>

#define S_BLOCK_SIZE        2048            //  bytes the reader gives per call
#define S_RESPONSE_BLOCK    512             //  libmicrohttpd's buffer in the response: used
                                            //  only for HTTP/1.0 clients (no chunks); the
                                            //  reader writes chunks into the connection's
                                            //  own buffer. Resident in every stream.
#define S_CHECK_TIMEOUT_MS  3000            //  a session re-check's deadline
#define S_SNDBUF            (32 * 1024)     //  a stream socket's kernel buffer
#define S_SWEEP_MS          1000
#define S_FRAME_MAX         (TL_BROADCAST_MAX_BODY * 2 + 256)
#define S_OPENING           "retry: 2000\n\n"
#define S_HEARTBEAT         ": keep-alive\n\n"

typedef struct _s_user_t s_user_t;
typedef struct _s_stream_t s_stream_t;

//  A push that came while its stream was catching up.
typedef struct {
    int64_t seq;
    char *frame;
    size_t len;
} s_held_t;

struct _s_stream_t {
    gw_streams_t *owner;
    struct MHD_Connection *conn;    //  NULL in self-tests
    s_user_t *user;
    s_stream_t *prev, *next;        //  the user's streams
    size_t index;                   //  in owner->all
    char *token;                    //  the session's, for re-checks
    char *out;                      //  unsent bytes: out [out_pos .. out_len)
    size_t out_pos, out_len, out_cap;
    int64_t floor;                  //  pushes at or below this seq were sent by the catch-up
    int64_t last_write_ms;
    bool catching_up;
    bool suspended;
    bool closing;
    bool in_catchup, checking;      //  a request in the broker
    uint64_t catchup_handle, check_handle;
    tl_msg_t *replay;               //  the catch-up reply being written
    uint32_t replay_next;           //  its next item
    int64_t replay_unread;          //  its unread count
    int64_t replay_version;         //  ... and that count's version
    s_held_t *held;                 //  TL_STREAM_HELD_MAX, while catching up
    size_t nheld;
    long held_count;                //  an unread count held, -1 none
    int64_t held_version;           //  ... its version
    int64_t count_version;          //  of the last count sent: older ones are dropped
};

struct _s_user_t {
    char id [TL_MAX_ID_LEN + 1];
    s_stream_t *head;
    size_t count;
};

struct _gw_streams_t {
    gw_broker_t *broker;
    zhashx_t *users;                //  id → s_user_t * (owned)
    s_stream_t **all;               //  TL_STREAMS_MAX slots, `size` used
    size_t size;
    uint64_t cut;
    int64_t now_ms;                 //  of the last tick
    int64_t next_sweep;
    struct pollfd *pfds;            //  the sweep's scratch, TL_STREAMS_MAX each
    s_stream_t **polled;
};

static void s_end (s_stream_t *st);
static void s_replay_fill (s_stream_t *st);

//  ---------------------------------------------------------------------
//  Writing

//  Resumes a stream that waits for bytes.
static void
s_wake (s_stream_t *st)
{
    if (st->suspended) {
        st->suspended = false;
        if (st->conn)
            MHD_resume_connection (st->conn);
    }
}

//  Cuts a client that does not read: its backlog is dropped and its socket
//  shut, so that libmicrohttpd closes it at once instead of waiting for it
//  to read again.
static void
s_cut (s_stream_t *st)
{
    st->owner->cut++;
    tl_log (TL_LOG_WARN, NULL, "stream of user %s cut: over %d bytes unread",
            st->user->id, TL_STREAM_BACKLOG_BYTES);
    s_end (st);
    if (st->conn) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info)
            shutdown (info->connect_fd, SHUT_RDWR);
    }
}

//  Adds `len` bytes to the stream's backlog and wakes it; cuts the stream
//  when they would pass TL_STREAM_BACKLOG_BYTES. Nothing on an ending one.
static void
s_append (s_stream_t *st, const char *data, size_t len)
{
    if (st->closing)
        return;
    size_t pending = st->out_len - st->out_pos;
    if (pending + len > TL_STREAM_BACKLOG_BYTES) {
        s_cut (st);
        return;
    }
    if (st->out_pos) {
        memmove (st->out, st->out + st->out_pos, pending);
        st->out_pos = 0;
        st->out_len = pending;
    }
    if (st->out_len + len > st->out_cap) {
        size_t cap = st->out_cap ? st->out_cap : 512;
        while (cap < st->out_len + len)
            cap *= 2;
        char *out = realloc (st->out, cap);
        if (!out) {
            s_end (st);                 //  the client reconnects and catches up
            return;
        }
        st->out = out;
        st->out_cap = cap;
    }
    memcpy (st->out + st->out_len, data, len);
    st->out_len += len;
    st->last_write_ms = st->owner->now_ms;
    s_wake (st);
}

//  Ends a stream: its reader answers end-of-stream once resumed.
static void
s_end (s_stream_t *st)
{
    if (st->closing)
        return;
    st->closing = true;
    free (st->out);
    st->out = NULL;
    st->out_pos = st->out_len = st->out_cap = 0;
    s_wake (st);
}

//  libmicrohttpd's content reader: the backlog, or a suspension until
//  there is one, or the end.
static ssize_t
s_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_stream_t *st = (s_stream_t *) cls;
    if (st->replay && st->out_len - st->out_pos < TL_STREAM_BACKLOG_BYTES / 2)
        s_replay_fill (st);
    if (st->out_len > st->out_pos) {
        size_t n = st->out_len - st->out_pos;
        n = n < max ? n : max;
        memcpy (buf, st->out + st->out_pos, n);
        st->out_pos += n;
        if (st->out_pos == st->out_len) {
            //  An idle stream keeps no buffer
            free (st->out);
            st->out = NULL;
            st->out_pos = st->out_len = st->out_cap = 0;
        }
        return (ssize_t) n;
    }
    if (st->closing)
        return MHD_CONTENT_READER_END_OF_STREAM;
    st->suspended = true;
    if (st->conn)
        MHD_suspend_connection (st->conn);
    return 0;
}

//  ---------------------------------------------------------------------
//  Frames

//  "event: notification\nid: <seq>\ndata: <json>\n\n" into `out`.
static int
s_frame_notification (tl_buf_t *out, int64_t seq, const msgpack_object *notification)
{
    int rc = tl_buf_printf (out, "event: notification\nid: %" PRId64 "\ndata: ", seq);
    rc = rc ? rc : tl_json_from_mp (notification, out);
    rc = rc ? rc : tl_buf_append (out, "\n\n", 2);
    return rc;
}

static int
s_frame_count (tl_buf_t *out, int64_t count)
{
    return tl_buf_printf (out, "event: unread_count\ndata: {\"count\":%" PRId64 "}\n\n", count);
}

//  A notification for one stream: held while it catches up, sent when it
//  is after the catch-up, dropped when the catch-up sent it.
static void
s_deliver (s_stream_t *st, int64_t seq, const char *frame, size_t len)
{
    if (st->closing)
        return;
    if (!st->catching_up) {
        if (seq > st->floor)
            s_append (st, frame, len);
        return;
    }
    if (!st->held)
        st->held = calloc (TL_STREAM_HELD_MAX, sizeof (s_held_t));
    char *copy = st->held && st->nheld < TL_STREAM_HELD_MAX ? malloc (len) : NULL;
    if (!copy) {
        s_cut (st);
        return;
    }
    memcpy (copy, frame, len);
    st->held [st->nheld++] = (s_held_t) { seq, copy, len };
}

//  An unread count for one stream: held while it catches up (the newest),
//  dropped when older than the count it sent (`version` orders a user's
//  counts; 0 says nothing), sent otherwise.
static void
s_deliver_count (s_stream_t *st, int64_t count, int64_t version, const char *frame,
                 size_t len)
{
    if (st->closing)
        return;
    if (st->catching_up) {
        if (st->held_count < 0 || version == 0 || version >= st->held_version) {
            st->held_count = (long) count;
            st->held_version = version;
        }
        return;
    }
    if (version && version <= st->count_version)
        return;
    if (version)
        st->count_version = version;
    s_append (st, frame, len);
}

static void
s_free_held (s_stream_t *st)
{
    for (size_t i = 0; i < st->nheld; i++)
        free (st->held [i].frame);
    free (st->held);
    st->held = NULL;
    st->nheld = 0;
}

//  ---------------------------------------------------------------------
//  The catch-up: {items, last_seq, unread_count} from the service. Its
//  items (up to TL_STREAM_CATCHUP_MAX, more than a backlog holds) are
//  written as the client reads them (s_replay_fill, from the reader);
//  pushes stay held until the last one is written.

//  Writes the next catch-up items while the backlog is under half its
//  bound; after the last, the unread count, the held pushes after the
//  catch-up, and the stream is live.
static void
s_replay_fill (s_stream_t *st)
{
    const msgpack_object *items = tl_mp_get (tl_msg_body (st->replay), "items");
    tl_buf_t *frame = tl_buf_new (S_FRAME_MAX);
    if (!frame) {
        s_end (st);
        return;
    }
    while (!st->closing && st->replay_next < items->via.array.size
       &&  st->out_len - st->out_pos < TL_STREAM_BACKLOG_BYTES / 2) {
        const msgpack_object *item = &items->via.array.ptr [st->replay_next++];
        int64_t seq = 0;
        tl_buf_reset (frame);
        if (tl_mp_int (tl_mp_get (item, "seq"), &seq) == 0 && seq <= st->floor
        &&  s_frame_notification (frame, seq, item) == 0)
            s_append (st, tl_buf_data (frame), tl_buf_size (frame));
    }
    if (!st->closing && st->replay_next == items->via.array.size) {
        tl_buf_reset (frame);
        if (s_frame_count (frame, st->replay_unread) == 0)
            s_append (st, tl_buf_data (frame), tl_buf_size (frame));
        st->count_version = st->replay_version;
        tl_msg_destroy (&st->replay);
        st->catching_up = false;
        for (size_t i = 0; i < st->nheld; i++)
            s_deliver (st, st->held [i].seq, st->held [i].frame, st->held [i].len);
        if (st->held_count >= 0) {
            tl_buf_reset (frame);
            if (s_frame_count (frame, st->held_count) == 0)
                s_deliver_count (st, st->held_count, st->held_version, tl_buf_data (frame),
                                 tl_buf_size (frame));
        }
        s_free_held (st);
    }
    tl_buf_destroy (&frame);
}

//  Takes the catch-up reply (the caller's reference is nulled). Returns
//  false when it is not one.
static bool
s_catch_up (s_stream_t *st, tl_msg_t **reply_p)
{
    tl_msg_t *reply = *reply_p;
    const msgpack_object *body = tl_msg_body (reply);
    const msgpack_object *items = tl_mp_get (body, "items");
    int64_t last_seq = 0, unread = 0, version = 0;
    const msgpack_object *given = tl_mp_get (body, "version");
    if (given && tl_mp_int (given, &version) != 0)
        return false;
    if (tl_msg_status (reply) != 200 || !items || items->type != MSGPACK_OBJECT_ARRAY
    ||  items->via.array.size > TL_STREAM_CATCHUP_MAX
    ||  tl_mp_int (tl_mp_get (body, "last_seq"), &last_seq) != 0
    ||  tl_mp_int (tl_mp_get (body, "unread_count"), &unread) != 0)
        return false;
    st->floor = last_seq;
    st->replay_unread = unread;
    st->replay_version = version;
    st->replay_next = 0;
    st->replay = reply;
    *reply_p = NULL;
    s_replay_fill (st);
    return true;
}

static void
s_on_catchup (void *arg, tl_msg_t **reply_p)
{
    s_stream_t *st = (s_stream_t *) arg;
    st->in_catchup = false;
    if (!s_catch_up (st, reply_p)) {
        //  The client reconnects (retry:) and asks again
        tl_log (TL_LOG_WARN, NULL, "stream of user %s: catch-up failed (%d)", st->user->id,
                tl_msg_status (*reply_p));
        s_end (st);
    }
    tl_msg_destroy (reply_p);
}

//  ---------------------------------------------------------------------
//  Session re-checks (auth.user.changed)

static void
s_on_check (void *arg, tl_msg_t **reply_p)
{
    s_stream_t *st = (s_stream_t *) arg;
    st->checking = false;
    int status = tl_msg_status (*reply_p);
    if (status == 401 || status == 403 || status == 404
    ||  (status == 200 && !tl_mp_str_eq (tl_mp_get (tl_msg_body (*reply_p), "user_id"),
                                         st->user->id)))
        s_end (st);
    //  Any other answer (503, 504) tells nothing: the stream stays
    tl_msg_destroy (reply_p);
}

static void
s_check (s_stream_t *st)
{
    gw_streams_t *self = st->owner;
    if (st->closing || !self->broker)
        return;
    if (st->checking) {
        gw_broker_cancel (self->broker, st->check_handle);
        st->checking = false;
    }
    tl_msg_t *check = tl_msg_new (TL_MSG_REQUEST);
    if (!check)
        return;
    tl_msg_set_str (check, TL_MSG_SERVICE, "auth");
    tl_msg_set_str (check, TL_MSG_METHOD, "session.check");
    tl_msg_set_str (check, TL_MSG_CALLER, "gateway");
    tl_msg_set_deadline (check, tl_msg_now_ms () + S_CHECK_TIMEOUT_MS);
    tl_msg_set_idempotent (check, true);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tl_mp_pack_pairs (&sbuf, (const char *[]) { "token", st->token }, 1);
    tl_msg_set_body (check, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    if (gw_broker_submit (self->broker, &check, s_on_check, st, &st->check_handle) == 0)
        st->checking = true;
    tl_msg_destroy (&check);
}

//  ---------------------------------------------------------------------
//  Opening and freeing

//  The response's free callback: the stream leaves its user and the set.
static void
s_free (void *cls)
{
    s_stream_t *st = (s_stream_t *) cls;
    gw_streams_t *self = st->owner;
    if (st->in_catchup && self->broker)
        gw_broker_cancel (self->broker, st->catchup_handle);
    if (st->checking && self->broker)
        gw_broker_cancel (self->broker, st->check_handle);
    s_user_t *user = st->user;
    if (st->prev)
        st->prev->next = st->next;
    else
        user->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (--user->count == 0)
        zhashx_delete (self->users, user->id);
    self->all [st->index] = self->all [--self->size];
    self->all [st->index]->index = st->index;
    s_free_held (st);
    tl_msg_destroy (&st->replay);
    free (st->token);
    free (st->out);
    free (st);
}

static void
s_user_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

gw_streams_t *
gw_streams_new (gw_broker_t *broker)
{
    gw_streams_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->broker = broker;
    self->users = zhashx_new ();
    self->all = calloc (TL_STREAMS_MAX, sizeof (s_stream_t *));
    self->pfds = calloc (TL_STREAMS_MAX, sizeof (struct pollfd));
    self->polled = calloc (TL_STREAMS_MAX, sizeof (s_stream_t *));
    if (!self->users || !self->all || !self->pfds || !self->polled) {
        gw_streams_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->users, s_user_destroy);
    return self;
}

void
gw_streams_destroy (gw_streams_t **self_p)
{
    assert (self_p);
    gw_streams_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->users);
    free (self->all);
    free (self->pfds);
    free (self->polled);
    free (self);
    *self_p = NULL;
}

//  A Last-Event-ID worth passing on: 1 to 18 decimal digits.
static bool
s_cursor_ok (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len < 1 || len > 18)
        return false;
    for (size_t i = 0; i < len; i++)
        if (text [i] < '0' || text [i] > '9')
            return false;
    return true;
}

//  Joins `st` to its user (made when new) and to the set.
static int
s_link (gw_streams_t *self, s_stream_t *st, const char *user_id)
{
    s_user_t *user = (s_user_t *) zhashx_lookup (self->users, user_id);
    if (!user) {
        user = calloc (1, sizeof *user);
        if (!user)
            return TL_ENOMEM;
        snprintf (user->id, sizeof user->id, "%s", user_id);
        zhashx_insert (self->users, user->id, user);
    }
    st->user = user;
    st->next = user->head;
    if (user->head)
        user->head->prev = st;
    user->head = st;
    user->count++;
    st->index = self->size;
    self->all [self->size++] = st;
    return 0;
}

struct MHD_Response *
gw_streams_open (gw_streams_t *self, struct MHD_Connection *conn, tl_msg_t **request_p,
                 const char *token, const char *last_event_id, int *status)
{
    *status = 503;
    const char *user_id = tl_msg_str (*request_p, TL_MSG_USER_ID);
    if (!user_id || strlen (user_id) > TL_MAX_ID_LEN || self->size >= TL_STREAMS_MAX) {
        tl_msg_destroy (request_p);
        return NULL;
    }
    s_user_t *user = (s_user_t *) zhashx_lookup (self->users, user_id);
    if (user && user->count >= TL_STREAMS_PER_USER) {
        *status = 429;
        tl_msg_destroy (request_p);
        return NULL;
    }
    s_stream_t *st = calloc (1, sizeof *st);
    if (!st || !(st->token = strdup (token ? token : "")) || s_link (self, st, user_id)) {
        if (st)
            free (st->token);
        free (st);
        tl_msg_destroy (request_p);
        return NULL;
    }
    st->owner = self;
    st->conn = conn;
    st->catching_up = true;
    st->held_count = -1;
    st->last_write_ms = self->now_ms;
    struct MHD_Response *response = MHD_create_response_from_callback (
        MHD_SIZE_UNKNOWN, S_RESPONSE_BLOCK, s_reader, st, s_free);
    if (!response) {
        s_free (st);
        tl_msg_destroy (request_p);
        return NULL;
    }
    MHD_add_response_header (response, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    s_append (st, S_OPENING, strlen (S_OPENING));

    //  Subscribed: now ask for what came after the client's last event
    if (s_cursor_ok (last_event_id) && !tl_msg_param (*request_p, "last_event_id"))
        tl_msg_add_param (*request_p, "last_event_id", last_event_id);
    if (self->broker) {
        if (gw_broker_submit (self->broker, request_p, s_on_catchup, st,
                              &st->catchup_handle) != 0) {
            tl_msg_destroy (request_p);
            MHD_destroy_response (response);            //  frees the stream
            return NULL;
        }
        st->in_catchup = true;
    }
    tl_msg_destroy (request_p);
    if (conn) {
        //  A small kernel buffer: an idle stream costs little, and a client
        //  that does not read reaches its backlog's bound soon
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int size = S_SNDBUF;
        if (info)
            setsockopt (info->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    *status = 200;
    return response;
}

//  ---------------------------------------------------------------------
//  Broadcasts

static bool
s_push (gw_streams_t *self, const msgpack_object *body)
{
    char user_id [TL_MAX_ID_LEN + 1];
    if (!tl_mp_copy (tl_mp_get (body, "user_id"), user_id, sizeof user_id))
        return false;
    const msgpack_object *notification = tl_mp_get (body, "notification");
    int64_t seq = 0, count = -1, version = 0;
    bool has_item = notification && tl_mp_int (tl_mp_get (body, "seq"), &seq) == 0;
    bool has_count = tl_mp_int (tl_mp_get (body, "unread_count"), &count) == 0 && count >= 0;
    if (has_count && tl_mp_get (body, "version")
    &&  (tl_mp_int (tl_mp_get (body, "version"), &version) != 0 || version < 0))
        return false;
    s_user_t *user = (s_user_t *) zhashx_lookup (self->users, user_id);
    if (!user)
        return true;                    //  no stream of theirs here
    tl_buf_t *item = tl_buf_new (S_FRAME_MAX);
    tl_buf_t *counted = tl_buf_new (256);
    bool ok = item && counted;
    if (ok && has_item && s_frame_notification (item, seq, notification) != 0)
        ok = false;
    if (ok && has_count && s_frame_count (counted, count) != 0)
        ok = false;
    //  A stream that ends here stays in the list until its response is
    //  freed, so the walk is safe
    for (s_stream_t *st = user->head; ok && st; st = st->next) {
        if (has_item)
            s_deliver (st, seq, tl_buf_data (item), tl_buf_size (item));
        if (has_count)
            s_deliver_count (st, count, version, tl_buf_data (counted), tl_buf_size (counted));
    }
    tl_buf_destroy (&item);
    tl_buf_destroy (&counted);
    return ok;
}

bool
gw_streams_on_broadcast (gw_streams_t *self, const char *topic, const msgpack_object *body)
{
    if (strcmp (topic, "notification.push") == 0)
        return s_push (self, body);
    if (strcmp (topic, "auth.user.changed") == 0) {
        char user_id [TL_MAX_ID_LEN + 1];
        if (!tl_mp_copy (tl_mp_get (body, "user_id"), user_id, sizeof user_id))
            return false;
        s_user_t *user = (s_user_t *) zhashx_lookup (self->users, user_id);
        for (s_stream_t *st = user ? user->head : NULL; st; st = st->next)
            s_check (st);
        return true;
    }
    return false;
}

//  ---------------------------------------------------------------------
//  The sweep: heartbeats, and suspended clients that hung up

void
gw_streams_tick (gw_streams_t *self, int64_t now_ms)
{
    self->now_ms = now_ms;
    if (now_ms < self->next_sweep)
        return;
    self->next_sweep = now_ms + S_SWEEP_MS;
    nfds_t polled = 0;
    for (size_t i = 0; i < self->size; i++) {
        s_stream_t *st = self->all [i];
        if (st->closing)
            continue;
        if (now_ms - st->last_write_ms >= TL_STREAM_HEARTBEAT_MS)
            s_append (st, S_HEARTBEAT, strlen (S_HEARTBEAT));
        if (st->suspended && st->conn) {
            const union MHD_ConnectionInfo *info =
                MHD_get_connection_info (st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (info) {
                self->pfds [polled] = (struct pollfd) { info->connect_fd, POLLRDHUP, 0 };
                self->polled [polled++] = st;
            }
        }
    }
    if (polled && poll (self->pfds, polled, 0) > 0)
        for (nfds_t i = 0; i < polled; i++)
            if (self->pfds [i].revents & (POLLRDHUP | POLLHUP | POLLERR))
                s_end (self->polled [i]);
}

void
gw_streams_close_all (gw_streams_t *self)
{
    for (size_t i = 0; i < self->size; i++)
        s_end (self->all [i]);
}

size_t
gw_streams_size (gw_streams_t *self)
{
    return self->size;
}

uint64_t
gw_streams_cut (gw_streams_t *self)
{
    return self->cut;
}

//  ---------------------------------------------------------------------
//  Self-test: streams without connections, read through their reader

//  Everything the stream has to send now, as text (the caller frees).
static char *
s_test_read (s_stream_t *st)
{
    tl_buf_t *text = tl_buf_new (1 << 20);
    char block [S_BLOCK_SIZE];
    ssize_t n;
    while ((n = s_reader (st, 0, block, sizeof block)) > 0)
        tl_buf_append (text, block, (size_t) n);
    tl_buf_append (text, "", 1);
    char *copy = strdup (tl_buf_data (text));
    tl_buf_destroy (&text);
    return copy;
}

static tl_msg_t *
s_test_request (const char *user)
{
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (request, TL_MSG_USER_ID, user);
    return request;
}

//  A push body {user_id, seq?, notification?, unread_count?, version?};
//  seq 0: none; count -1: none; version 0: none.
static void
s_test_push_versioned (gw_streams_t *self, const char *user, int64_t seq, int64_t count,
                       int64_t version)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1 + (seq ? 2 : 0) + (count >= 0) + (version > 0));
    tl_mp_pack_kv (&pk, "user_id", user);
    if (seq) {
        tl_mp_pack_str (&pk, "seq");
        msgpack_pack_int64 (&pk, seq);
        tl_mp_pack_str (&pk, "notification");
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_str (&pk, "seq");
        msgpack_pack_int64 (&pk, seq);
        tl_mp_pack_kv (&pk, "title", "hi");
    }
    if (count >= 0) {
        tl_mp_pack_str (&pk, "unread_count");
        msgpack_pack_int64 (&pk, count);
    }
    if (version > 0) {
        tl_mp_pack_str (&pk, "version");
        msgpack_pack_int64 (&pk, version);
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object body;
    assert (tl_mp_unpack (sbuf.data, sbuf.size, &zone, &body) == 0);
    assert (gw_streams_on_broadcast (self, "notification.push", &body));
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);
}

static void
s_test_push (gw_streams_t *self, const char *user, int64_t seq, int64_t count)
{
    s_test_push_versioned (self, user, seq, count, 0);
}

//  The catch-up reply: items first..last, then last_seq and the count.
static void
s_test_catch_up_padded (s_stream_t *st, int64_t first, int64_t last, int64_t last_seq,
                        int64_t unread, size_t pad)
{
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_status (reply, 200);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    tl_mp_pack_str (&pk, "items");
    msgpack_pack_array (&pk, first ? (size_t) (last - first + 1) : 0);
    char *padding = calloc (1, pad + 1);
    memset (padding, 'p', pad);
    for (int64_t seq = first; first && seq <= last; seq++) {
        msgpack_pack_map (&pk, pad ? 2 : 1);
        tl_mp_pack_str (&pk, "seq");
        msgpack_pack_int64 (&pk, seq);
        if (pad)
            tl_mp_pack_kv (&pk, "message", padding);
    }
    free (padding);
    tl_mp_pack_str (&pk, "last_seq");
    msgpack_pack_int64 (&pk, last_seq);
    tl_mp_pack_str (&pk, "unread_count");
    msgpack_pack_int64 (&pk, unread);
    tl_msg_set_body (reply, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    st->in_catchup = true;
    s_on_catchup (st, &reply);
    assert (!reply);
}

static void
s_test_catch_up (s_stream_t *st, int64_t first, int64_t last, int64_t last_seq, int64_t unread)
{
    s_test_catch_up_padded (st, first, last, last_seq, unread, 0);
}

//  How many times `needle` occurs in `text`.
static int
s_test_count (const char *text, const char *needle)
{
    int count = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
        count++;
    return count;
}

//  A push that comes while the stream catches up is sent once, after the
//  catch-up, in order; one the catch-up covered is dropped.
static void
s_test_catch_up_has_no_gap_or_duplicate (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    tl_msg_t *request = s_test_request ("u1");
    int status = 0;
    struct MHD_Response *response = gw_streams_open (self, NULL, &request, "t", "5", &status);
    assert (response && status == 200 && !request && gw_streams_size (self) == 1);
    s_stream_t *st = self->all [0];
    s_test_push (self, "u1", 8, 3);         //  held: the catch-up will cover it
    s_test_push (self, "u1", 9, 4);         //  held: after the catch-up
    s_test_push (self, "u2", 10, 1);        //  another user's
    char *text = s_test_read (st);
    assert (strcmp (text, S_OPENING) == 0);
    free (text);
    s_test_catch_up (st, 6, 8, 8, 3);
    s_test_push (self, "u1", 8, -1);        //  a late duplicate
    s_test_push (self, "u1", 10, 5);
    text = s_test_read (st);
    const char *order [] = { "id: 6\n", "id: 7\n", "id: 8\n", "{\"count\":3}", "id: 9\n",
                             "{\"count\":4}", "id: 10\n", "{\"count\":5}" };
    const char *at = text;
    for (size_t i = 0; i < sizeof order / sizeof order [0]; i++) {
        const char *found = strstr (at, order [i]);
        assert (found);
        at = found;
    }
    assert (s_test_count (text, "id: 8\n") == 1 && s_test_count (text, "id: 9\n") == 1);
    assert (strstr (text, "event: notification\nid: 6\ndata: {\"seq\":6}\n\n"));
    free (text);
    MHD_destroy_response (response);
    assert (gw_streams_size (self) == 0 && zhashx_size (self->users) == 0);
    gw_streams_destroy (&self);
    gw_streams_destroy (&self);
}

//  A catch-up larger than a backlog is written as the client reads it,
//  never cut; a push that comes meanwhile follows it.
static void
s_test_catch_up_larger_than_a_backlog_is_paced (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    tl_msg_t *request = s_test_request ("u1");
    int status = 0;
    struct MHD_Response *response = gw_streams_open (self, NULL, &request, "t", "0", &status);
    s_stream_t *st = self->all [0];
    s_test_catch_up_padded (st, 1, TL_STREAM_CATCHUP_MAX, TL_STREAM_CATCHUP_MAX, 7, 200);
    assert (!st->closing && st->catching_up && st->replay);
    s_test_push (self, "u1", TL_STREAM_CATCHUP_MAX + 1, 8);       //  held meanwhile
    char *text = s_test_read (st);
    assert (!st->closing && !st->catching_up && !st->replay && gw_streams_cut (self) == 0);
    char id [32];
    const char *at = text;
    for (int seq = 1; seq <= TL_STREAM_CATCHUP_MAX + 1; seq++) {
        snprintf (id, sizeof id, "\nid: %d\n", seq);
        const char *found = strstr (at, id);
        assert (found);
        at = found;
    }
    assert (strstr (at, "{\"count\":8}") && s_test_count (text, "\nid: 1\n") == 1);
    free (text);
    MHD_destroy_response (response);
    gw_streams_destroy (&self);
}

//  Counts arrive in any order: one older than the count sent is dropped,
//  during the catch-up as after it.
static void
s_test_an_older_count_is_dropped (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    tl_msg_t *request = s_test_request ("u1");
    int status = 0;
    struct MHD_Response *response = gw_streams_open (self, NULL, &request, "t", NULL, &status);
    s_stream_t *st = self->all [0];
    s_test_push_versioned (self, "u1", 0, 4, 12);       //  held: newer than the catch-up's
    s_test_push_versioned (self, "u1", 0, 9, 8);        //  older than the held one
    st->in_catchup = true;
    tl_msg_t *reply = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_status (reply, 200);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    tl_mp_pack_str (&pk, "items");
    msgpack_pack_array (&pk, 0);
    tl_mp_pack_str (&pk, "last_seq");
    msgpack_pack_int64 (&pk, 0);
    tl_mp_pack_str (&pk, "unread_count");
    msgpack_pack_int64 (&pk, 3);
    tl_mp_pack_str (&pk, "version");
    msgpack_pack_int64 (&pk, 10);
    tl_msg_set_body (reply, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    s_on_catchup (st, &reply);
    s_test_push_versioned (self, "u1", 0, 7, 11);       //  older than 12: dropped
    s_test_push_versioned (self, "u1", 0, 5, 13);
    char *text = s_test_read (st);
    assert (s_test_count (text, "unread_count") == 3);
    const char *three = strstr (text, "{\"count\":3}");
    const char *four = strstr (text, "{\"count\":4}");
    const char *five = strstr (text, "{\"count\":5}");
    assert (three && four && five && three < four && four < five);
    assert (!strstr (text, "{\"count\":7}") && !strstr (text, "{\"count\":9}"));
    free (text);
    MHD_destroy_response (response);
    gw_streams_destroy (&self);
}

//  Only 1 to 18 digits are passed on as the catch-up's last_event_id.
static void
s_test_bad_last_event_id_is_ignored (void)
{
    assert (s_cursor_ok ("0") && s_cursor_ok ("123456789012345678"));
    assert (!s_cursor_ok ("1234567890123456789") && !s_cursor_ok ("-1")
         && !s_cursor_ok ("abc") && !s_cursor_ok ("") && !s_cursor_ok (NULL)
         && !s_cursor_ok ("1 "));
    gw_streams_t *self = gw_streams_new (NULL);
    tl_msg_t *request = s_test_request ("u1");
    int status = 0;
    struct MHD_Response *response = gw_streams_open (self, NULL, &request, "t", "-3", &status);
    assert (response);
    s_test_catch_up (self->all [0], 0, 0, 12, 0);
    s_test_push (self, "u1", 12, -1);       //  before the stream: not sent
    s_test_push (self, "u1", 13, -1);
    char *text = s_test_read (self->all [0]);
    assert (!strstr (text, "id: 12\n") && strstr (text, "id: 13\n"));
    free (text);
    MHD_destroy_response (response);
    gw_streams_destroy (&self);
}

//  A stream that nobody reads is cut past its backlog's bound and ends;
//  the user's other stream goes on.
static void
s_test_slow_client_is_cut (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    int status = 0;
    tl_msg_t *request = s_test_request ("u1");
    struct MHD_Response *slow = gw_streams_open (self, NULL, &request, "t", NULL, &status);
    request = s_test_request ("u1");
    struct MHD_Response *fast = gw_streams_open (self, NULL, &request, "t", NULL, &status);
    assert (slow && fast);
    s_stream_t *slow_st = self->all [0], *fast_st = self->all [1];
    s_test_catch_up (slow_st, 0, 0, 0, 0);
    s_test_catch_up (fast_st, 0, 0, 0, 0);
    for (int64_t seq = 1; seq <= 2000; seq++) {
        s_test_push (self, "u1", seq, -1);
        free (s_test_read (fast_st));
    }
    assert (gw_streams_cut (self) == 1 && slow_st->closing && !fast_st->closing);
    char block [64];
    assert (s_reader (slow_st, 0, block, sizeof block) == MHD_CONTENT_READER_END_OF_STREAM);
    MHD_destroy_response (slow);
    MHD_destroy_response (fast);
    gw_streams_destroy (&self);
}

//  Per user bound: 429 past TL_STREAMS_PER_USER.
static void
s_test_streams_per_user_are_bounded (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    struct MHD_Response *responses [TL_STREAMS_PER_USER];
    int status = 0;
    for (int i = 0; i < TL_STREAMS_PER_USER; i++) {
        tl_msg_t *request = s_test_request ("u1");
        responses [i] = gw_streams_open (self, NULL, &request, "t", NULL, &status);
        assert (responses [i] && status == 200);
    }
    tl_msg_t *request = s_test_request ("u1");
    assert (!gw_streams_open (self, NULL, &request, "t", NULL, &status) && status == 429);
    assert (!request);
    request = s_test_request ("u2");
    struct MHD_Response *other = gw_streams_open (self, NULL, &request, "t", NULL, &status);
    assert (other && status == 200);
    MHD_destroy_response (other);
    for (int i = 0; i < TL_STREAMS_PER_USER; i++)
        MHD_destroy_response (responses [i]);
    assert (gw_streams_size (self) == 0);
    gw_streams_destroy (&self);
}

//  An idle stream gets a comment every TL_STREAM_HEARTBEAT_MS; an ended
//  one finishes what it had, then ends.
static void
s_test_heartbeat_and_end (void)
{
    gw_streams_t *self = gw_streams_new (NULL);
    gw_streams_tick (self, 1000);
    int status = 0;
    tl_msg_t *request = s_test_request ("u1");
    struct MHD_Response *response = gw_streams_open (self, NULL, &request, "t", NULL, &status);
    s_stream_t *st = self->all [0];
    s_test_catch_up (st, 0, 0, 0, 2);
    free (s_test_read (st));
    assert (st->suspended);
    gw_streams_tick (self, 1000 + TL_STREAM_HEARTBEAT_MS - 1);
    char *text = s_test_read (st);
    assert (*text == 0);
    free (text);
    gw_streams_tick (self, 1000 + TL_STREAM_HEARTBEAT_MS + S_SWEEP_MS);
    assert (!st->suspended);
    text = s_test_read (st);
    assert (strcmp (text, S_HEARTBEAT) == 0);
    free (text);
    gw_streams_close_all (self);
    char block [64];
    assert (s_reader (st, 0, block, sizeof block) == MHD_CONTENT_READER_END_OF_STREAM);
    MHD_destroy_response (response);
    gw_streams_destroy (&self);
}

void
gw_streams_test (bool verbose)
{
    s_test_catch_up_has_no_gap_or_duplicate ();
    s_test_bad_last_event_id_is_ignored ();
    s_test_catch_up_larger_than_a_backlog_is_paced ();
    s_test_an_older_count_is_dropped ();
    s_test_slow_client_is_cut ();
    s_test_streams_per_user_are_bounded ();
    s_test_heartbeat_and_end ();
    if (verbose)
        printf ("(streams ok) ");
}
