//  gw_http.c — the gateway's HTTP side over libmicrohttpd.
//
//  Life of a request (one s_req_t per HTTP request):
//    1. first call: route it, check method, size and content type; a route
//       that needs a session refuses a request without a token, and when a
//       body is announced asks the auth service who the caller is before
//       reading it (the connection waits suspended);
//    2. body chunks: collected up to the route's limit;
//    3. last call: parse and check the JSON, build the envelope, ask the
//       auth service who the caller is (when the route needs it and it was
//       not asked yet), submit to the broker and suspend the connection;
//    4. the broker's callback turns the reply into a response and resumes
//       the connection; libmicrohttpd calls us once more and we queue it.
//  Nothing here blocks: the deadline in the broker bounds every suspension.
//
//  The public port is accepted here, not by libmicrohttpd, and each new
//  connection goes to one of two daemons on the same event loop: a stream
//  request (GET of a "stream" route) whose whole head came in its first
//  bytes and is small goes to the stream daemon, whose connections have a
//  TL_HTTP_STREAM_POOL_BYTES memory pool and serve that one request;
//  everything else goes to the main daemon (2 × TL_HTTP_MAX_HEADER_BYTES a
//  connection, keep-alive). An idle stream then costs a few KiB instead of
//  the ~20 KiB of the main pool that libmicrohttpd writes to (it zeroes
//  the unused half of the read buffer when it starts to answer).
#define _GNU_SOURCE         //  POLLRDHUP, accept4, memmem
#include "gw_http.h"
#include "gw_bodies.h"
#include "gw_range.h"
#include "gw_sessions.h"
#include "gw_streams.h"
#include "gw_calls.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define S_AUTH_TIMEOUT_MS 3000
#define S_JSON_TYPE "application/json; charset=utf-8"
#define S_ACCEPT_BATCH 64       //  connections accepted per run at most
#define S_DEFER_ACCEPT_SEC 1    //  TCP_DEFER_ACCEPT: a client is handed over once it sent
                                //  something, or after about this long without
//  What libmicrohttpd 0.9.75 takes from a connection's pool for each header
//  line, query argument and cookie: struct MHD_HTTP_Header (7 words),
//  rounded to its 16-byte alignment.
#define S_FIELD_BYTES 64
_Static_assert (TL_HTTP_STREAM_HEAD_BYTES <= TL_HTTP_STREAM_POOL_BYTES / 2,
                "a small stream head is read whole into the first read buffer (half the pool)");
_Static_assert (TL_HTTP_STREAM_HEAD_BYTES + TL_HTTP_STREAM_REPLY_ROOM < TL_HTTP_STREAM_POOL_BYTES,
                "the stream pool must hold a head and the reply");

struct _gw_http_t {
    gw_http_config_t config;
    char *cors;                     //  ",a,b," for exact matching
    gw_router_t *router;
    gw_broker_t *broker;
    gw_metrics_t *metrics;
    gw_sessions_t *sessions;        //  the sessions checked, until auth says otherwise
    gw_streams_t *streams;          //  Server-Sent Event streams held open
    gw_calls_t *calls;              //  the calls served, for analytics (or NULL)
    struct MHD_Daemon *daemon;      //  the public port's requests
    struct MHD_Daemon *stream_daemon;   //  ... its streams with a small head (small pools)
    struct MHD_Daemon *ops_daemon;  //  the ops port: probes and /metrics
    int listen_fd;                  //  the public port, accepted by s_accept; -1 once drained
    int epoll_fd;                   //  listen_fd and the two public daemons' epoll fds
    bool listening;                 //  listen_fd is in epoll_fd (not paused)
    bool draining;
    bool quiesced;
    size_t active;
    size_t buffered;                //  body bytes reserved, all requests (TL_HTTP_MAX_BUFFERED_BYTES)
    zlistx_t *suspended;            //  s_req_t * waiting on the mesh
    zlistx_t *connections;          //  s_conn_t *, to bound header time
};

//  One TCP connection. `waiting_since` is when it last started waiting for
//  a request's headers (its opening, or the end of the previous request):
//  headers must be complete within TL_HTTP_IDLE_TIMEOUT_SEC of it, however
//  slowly they trickle in.
typedef struct {
    struct MHD_Connection *conn;
    int64_t waiting_since;          //  monotonic usec
    bool in_request;
    void *handle;                   //  in http->connections
} s_conn_t;

typedef enum {
    S_RECEIVING,                    //  headers seen, body arriving
    S_AUTHENTICATING,               //  waiting for auth.session.check
    S_WAITING,                      //  waiting for the service
    S_ANSWERED                      //  response ready or queued
} s_state_t;

typedef struct {
    gw_http_t *http;
    struct MHD_Connection *conn;
    bool ops;                       //  came in on the ops port
    bool close_after;               //  on the stream daemon: one request a connection
    s_state_t state;
    int64_t started;                //  monotonic usec
    char request_id [TL_HTTP_MAX_REQUEST_ID + 1];
    char method [8];
    const char *route_name;         //  metrics label
    const gw_route_t *route;
    gw_params_t params;
    tl_buf_t *body;
    size_t body_limit;
    size_t reserved;                //  this request's part of http->buffered
    size_t announced;               //  Content-Length, 0 when none
    size_t bytes_in;
    bool suspended;
    void *suspended_handle;         //  in http->suspended
    bool in_broker;
    uint64_t handle;
    tl_msg_t *request;              //  built, waiting for authentication
    tl_msg_t *caller;               //  the caller, when known before the body
    uint64_t check_generation;      //  of the session cache, when the check was sent
    struct MHD_Response *response;
    int status;
    gw_bodies_t *stream;            //  a streamed body (gw_bodies.h), or NULL
    bool streaming;                 //  dispatched, more chunks to hand out
} s_req_t;

//  ---------------------------------------------------------------------
//  Responses

static void
s_common_headers (s_req_t *req, struct MHD_Response *response)
{
    MHD_add_response_header (response, "X-Request-Id", req->request_id);
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "X-Frame-Options", "DENY");
    MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (response, "Content-Security-Policy",
                             "default-src 'none'; frame-ancestors 'none'");
    if (req->http->config.secure_cookies)
        MHD_add_response_header (response, "Strict-Transport-Security",
                                 "max-age=31536000; includeSubDomains");
    const char *origin = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Origin");
    if (origin && req->http->cors && strlen (origin) < 256) {
        char needle [260];
        snprintf (needle, sizeof needle, ",%s,", origin);
        if (strstr (req->http->cors, needle)) {
            MHD_add_response_header (response, "Access-Control-Allow-Origin", origin);
            MHD_add_response_header (response, "Access-Control-Allow-Credentials", "true");
            MHD_add_response_header (response, "Access-Control-Expose-Headers",
                                     "ETag, X-Request-Id, Location, Retry-After");
            MHD_add_response_header (response, "Vary", "Origin");
        }
    }
}

//  Sets the response to send (replacing any earlier one).
static void
s_respond (s_req_t *req, int status, struct MHD_Response *response)
{
    if (req->response)
        MHD_destroy_response (req->response);
    req->response = response;
    req->status = status;
    req->state = S_ANSWERED;
    if (response)
        s_common_headers (req, response);
    if (response && req->close_after)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONNECTION, "close");
}

static struct MHD_Response *
s_text_response (const char *text, const char *content_type)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), (void *) text, MHD_RESPMEM_MUST_COPY);
    if (response)
        MHD_add_response_header (response, "Content-Type", content_type);
    return response;
}

static struct MHD_Response *
s_json_response (json_t *json)
{
    char *text = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    if (!text)
        return NULL;
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (text);
        return NULL;
    }
    MHD_add_response_header (response, "Content-Type", S_JSON_TYPE);
    return response;
}

//  An error in the API's shape: {"error": {"code", "message", "fields"?}}.
//  Takes `fields` when not NULL.
static void
s_error (s_req_t *req, int status, const char *code, const char *message, json_t *fields)
{
    json_t *error = json_pack ("{s:s, s:s}", "code", code, "message", message);
    if (fields && error)
        json_object_set_new (error, "fields", fields);
    else
        json_decref (fields);
    struct MHD_Response *response = s_json_response (json_pack ("{s:o*}", "error", error));
    if (response) {
        MHD_add_response_header (response, "Cache-Control", "no-store");
        if (status == 503 || status == 429) {
            char after [16];
            snprintf (after, sizeof after, "%d", TL_RETRY_AFTER_SEC);
            MHD_add_response_header (response, "Retry-After", after);
        }
    }
    s_respond (req, status, response);
}

//  True when If-None-Match names `etag` (weak comparison, as RFC 9110 asks).
static bool
s_etag_matches (const char *header, const char *etag)
{
    if (!header)
        return false;
    size_t len = strlen (etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp (p, "W/", 2) == 0)
            p += 2;
        if (strncmp (p, etag, len) == 0 && (p [len] == 0 || p [len] == ',' || p [len] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

//  Turns a service's reply into the HTTP response.
static void
s_respond_reply (s_req_t *req, tl_msg_t *reply)
{
    int status = tl_msg_status (reply);
    if (status < 200 || status == 304) {
        //  Not a final answer, or one only the gateway may give.
        tl_log (TL_LOG_ERROR, req->request_id, "service %s answered status %d",
                req->route ? req->route->service : "?", status);
        s_error (req, 502, "bad_gateway", "the service sent an invalid reply", NULL);
        return;
    }
    //  The body as it came: bytes (bin) are sent as they are, anything else
    //  is written as JSON straight from its MessagePack bytes, never
    //  unpacked into a tree
    size_t body_size = 0;
    const char *body = tl_msg_body_raw (reply, &body_size);
    unsigned char first = body && body_size ? (unsigned char) body [0] : 0;
    bool is_bin = first == 0xc4 || first == 0xc5 || first == 0xc6;
    struct MHD_Response *response = NULL;
    const char *content_type = tl_msg_header (reply, "Content-Type");
    bool is_get = streq (req->method, "GET") || streq (req->method, "HEAD");

    char *data = NULL;
    size_t size = 0;
    const msgpack_object *bin = is_bin ? tl_msg_body (reply) : NULL;
    if (bin && bin->type == MSGPACK_OBJECT_BIN) {
        size = bin->via.bin.size;
        data = malloc (size ? size : 1);
        if (data && size)               //  an empty bin may have no pointer
            memcpy (data, bin->via.bin.ptr, size);
        if (!content_type)
            content_type = "application/octet-stream";
    }
    else
    if (body && status != 204) {
        tl_buf_t *out = tl_buf_new (TL_MAX_FRAME_BYTES * 2);
        //  JSON is about a fifth longer than its MessagePack: one allocation
        //  where doubling from 64 bytes would take a dozen, each a copy
        if (out)
            (void) tl_buf_reserve (out, body_size + body_size / 4 + 64);
        int rc = out ? tl_json_from_mp_bytes (body, body_size, out) : TL_ENOMEM;
        if (rc == 0)
            data = tl_buf_steal (out, &size);
        tl_buf_destroy (&out);
        if (rc) {
            tl_log (TL_LOG_ERROR, req->request_id, "service %s sent a body that is not JSON: %s",
                    req->route ? req->route->service : "?", tl_strerror (rc));
            s_error (req, 502, "bad_gateway", "the service sent an invalid reply", NULL);
            return;
        }
        content_type = S_JSON_TYPE;
    }
    if (!data && status != 204 && status != 304) {
        data = strdup ("");
        size = 0;
    }

    char etag [160] = "";
    //  Bytes whose service names them (a strong ETag: the same name, the
    //  same bytes) keep that name and the service's caching.
    const char *named = is_bin ? tl_msg_header (reply, "ETag") : NULL;
    if (named && (strlen (named) >= sizeof etag || named [0] != '"'))
        named = NULL;
    if (is_get && status == 200 && data && named)
        strcpy (etag, named);
    else
    if (is_get && status == 200 && data) {
        unsigned char hash [16];
        crypto_generichash (hash, sizeof hash, (const unsigned char *) data, size, NULL, 0);
        etag [0] = '"';
        sodium_bin2hex (etag + 1, 33, hash, sizeof hash);
        strcat (etag, "\"");
    }
    if (*etag) {
        const char *inm = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "If-None-Match");
        if (s_etag_matches (inm, etag)) {
            free (data);
            data = NULL;
            size = 0;
            status = 304;
        }
    }
    char content_range [64] = "";
    if (is_bin && *etag && status == 200)
        status = gw_range_apply (req->conn, etag, &data, &size, content_range,
                                sizeof content_range);
    response = MHD_create_response_from_buffer (size, data ? data : (void *) "",
                                                data ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
    if (!response) {
        free (data);
        s_respond (req, 500, NULL);
        return;
    }
    if (content_type && status != 304)
        MHD_add_response_header (response, "Content-Type", content_type);
    if (*content_range)
        MHD_add_response_header (response, "Content-Range", content_range);
    if (is_bin && *etag)
        MHD_add_response_header (response, "Accept-Ranges", "bytes");
    if (*etag) {
        MHD_add_response_header (response, "ETag", etag);
        if (!named || !tl_msg_header (reply, "Cache-Control"))
            MHD_add_response_header (response, "Cache-Control", "private, no-cache");
    }
    else
        MHD_add_response_header (response, "Cache-Control", "no-store");
    for (size_t i = 0; i < tl_msg_header_count (reply); i++) {
        const char *name, *value;
        tl_msg_header_at (reply, i, &name, &value);
        //  Headers a service may set; the rest belong to the gateway.
        if (strcasecmp (name, "Location") == 0 || strcasecmp (name, "Retry-After") == 0
        ||  strcasecmp (name, "Content-Disposition") == 0
        ||  (strcasecmp (name, "Cache-Control") == 0 && (!*etag || named)))
            MHD_add_response_header (response, name, value);
        else
        if (strcasecmp (name, "Set-Cookie") == 0) {
            //  Behind TLS every cookie is Secure, whatever the service says.
            char cookie [TL_MAX_HEADER_VALUE_LEN + 16];
            snprintf (cookie, sizeof cookie, "%s%s", value,
                      req->http->config.secure_cookies ? "; Secure" : "");
            MHD_add_response_header (response, name, cookie);
        }
    }
    s_respond (req, status, response);
}

//  ---------------------------------------------------------------------
//  Ops endpoints: the probes on both ports, /metrics on the ops port only

static bool
s_ops (s_req_t *req, const char *url)
{
    gw_http_t *http = req->http;
    if (streq (url, "/healthz") || streq (url, "/livez")) {
        req->route_name = url [1] == 'h' ? "/healthz" : "/livez";
        s_respond (req, 200, s_text_response ("{\"status\":\"ok\"}", S_JSON_TYPE));
        return true;
    }
    if (streq (url, "/readyz")) {
        req->route_name = "/readyz";
        json_t *missing = json_array ();
        if (http->draining)
            json_array_append_new (missing, json_pack ("{s:s, s:s}", "service", "gateway",
                                                       "reason", "draining"));
        gw_broker_missing (http->broker, missing);
        int status = json_array_size (missing) ? 503 : 200;
        s_respond (req, status, s_json_response (json_pack ("{s:s, s:o}",
            "status", status == 200 ? "ready" : "not_ready", "missing", missing)));
        return true;
    }
    if (streq (url, "/metrics") && req->ops) {
        req->route_name = "/metrics";
        char *requests = gw_metrics_render (http->metrics);
        char *mesh = gw_broker_metrics (http->broker);
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream (&text, &size);
        if (out) {
            fprintf (out, "%s%s# HELP tally_http_in_progress Requests being handled.\n"
                          "# TYPE tally_http_in_progress gauge\ntally_http_in_progress %zu\n",
                     requests ? requests : "", mesh ? mesh : "", http->active);
            fprintf (out, "# HELP tally_sessions_cached Sessions this gateway keeps checked.\n"
                          "# TYPE tally_sessions_cached gauge\ntally_sessions_cached %zu\n"
                          "# HELP tally_session_checks_total Session lookups, by where the "
                          "answer came from.\n# TYPE tally_session_checks_total counter\n"
                          "tally_session_checks_total{from=\"cache\"} %" PRIu64 "\n"
                          "tally_session_checks_total{from=\"auth\"} %" PRIu64 "\n",
                     gw_sessions_size (http->sessions), gw_sessions_hits (http->sessions),
                     gw_sessions_misses (http->sessions));
            fprintf (out, "# HELP tally_streams_open Server-Sent Event streams held open.\n"
                          "# TYPE tally_streams_open gauge\ntally_streams_open %zu\n"
                          "# HELP tally_streams_cut_total Streams cut for not reading.\n"
                          "# TYPE tally_streams_cut_total counter\ntally_streams_cut_total %"
                          PRIu64 "\n", gw_streams_size (http->streams),
                     gw_streams_cut (http->streams));
            char *recorded = http->calls ? gw_calls_metrics (http->calls) : NULL;
            fputs (recorded ? recorded : "", out);
            free (recorded);
            fclose (out);
        }
        free (requests);
        free (mesh);
        struct MHD_Response *response = text
            ? MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE) : NULL;
        if (response)
            MHD_add_response_header (response, "Content-Type", "text/plain; version=0.0.4");
        else
            free (text);
        s_respond (req, 200, response);
        return true;
    }
    return false;
}

//  ---------------------------------------------------------------------
//  Building the mesh request

//  Decodes %XX and '+' of a query value in place. Returns false for bad
//  escapes, NUL bytes or invalid UTF-8.
static bool
s_query_decode (char *text)
{
    char *out = text;
    for (const char *in = text; *in; in++) {
        if (*in == '+')
            *out++ = ' ';
        else
        if (*in == '%') {
            if (!isxdigit ((unsigned char) in [1]) || !isxdigit ((unsigned char) in [2]))
                return false;
            char hex [3] = { in [1], in [2], 0 };
            char c = (char) strtol (hex, NULL, 16);
            if (c == 0)
                return false;
            *out++ = c;
            in += 2;
        }
        else
            *out++ = *in;
    }
    *out = 0;
    return tl_json_utf8_valid (text, strlen (text));
}

typedef struct {
    tl_msg_t *msg;
    bool bad;
} s_query_t;

static enum MHD_Result
s_query_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_query_t *query = (s_query_t *) cls;
    char name [TL_MAX_NAME_LEN + 1];
    if (strlen (key) > TL_MAX_NAME_LEN || strlen (value ? value : "") > TL_HTTP_MAX_URL_LEN) {
        query->bad = true;
        return MHD_NO;
    }
    strcpy (name, key);
    char *decoded = strdup (value ? value : "");
    if (!decoded || !s_query_decode (name) || !s_query_decode (decoded)) {
        free (decoded);
        query->bad = true;
        return MHD_NO;
    }
    //  Path parameters win over query parameters of the same name, and
    //  what the gateway tells itself (the body's content_type) is never a
    //  query parameter
    if (!tl_msg_param (query->msg, name) && strcmp (name, "content_type") != 0
    &&  tl_msg_add_param (query->msg, name, decoded) != 0)
        query->bad = true;
    free (decoded);
    return query->bad ? MHD_NO : MHD_YES;
}

static void s_on_reply (void *arg, tl_msg_t **reply_p);
static void s_check_session (s_req_t *req, const char *token);
static const char *s_session_token (s_req_t *req);

//  A stream route's request, its caller known: the stream opens (gw_streams)
//  and the request goes as its catch-up.
static void
s_stream_open (s_req_t *req, tl_msg_t **msg_p)
{
    int status = 503;
    const char *last = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Last-Event-ID");
    struct MHD_Response *response = gw_streams_open (req->http->streams, req->conn, msg_p,
                                                     s_session_token (req), last, &status);
    if (response)
        s_respond (req, 200, response);
    else
    if (status == 429)
        s_error (req, 429, "too_many_streams", "this user holds too many streams here", NULL);
    else
        s_error (req, 503, "unavailable", "the gateway holds too many streams", NULL);
}

//  Submits the built request (or the auth check) to the broker.
static void
s_submit (s_req_t *req, tl_msg_t **msg_p)
{
    if (req->state == S_WAITING && req->route && req->route->stream) {
        s_stream_open (req, msg_p);
        return;
    }
    int rc = gw_broker_submit (req->http->broker, msg_p, s_on_reply, req, &req->handle);
    tl_msg_destroy (msg_p);
    if (rc == 0) {
        req->in_broker = true;
        return;
    }
    if (rc == TL_EBUSY)
        s_error (req, 503, "queue_full", "the service is busy; retry later", NULL);
    else
        s_error (req, 503, "no_instance", "the service is not available", NULL);
}

//  Writes the client's address into `ip`: the peer's, or behind a trusted
//  proxy the last (proxy-appended) address of X-Forwarded-For.
static void
s_client_ip (s_req_t *req, char ip [INET6_ADDRSTRLEN])
{
    if (req->http->config.trust_proxy) {
        const char *list = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND,
                                                        "X-Forwarded-For");
        const char *last = list ? strrchr (list, ',') : NULL;
        last = last ? last + 1 : list;
        while (last && *last == ' ')
            last++;
        unsigned char addr [sizeof (struct in6_addr)];
        if (last && strlen (last) < INET6_ADDRSTRLEN
        &&  (inet_pton (AF_INET, last, addr) == 1 || inet_pton (AF_INET6, last, addr) == 1)) {
            strcpy (ip, last);
            return;
        }
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr) {
        if (info->client_addr->sa_family == AF_INET)
            inet_ntop (AF_INET, &((struct sockaddr_in *) info->client_addr)->sin_addr,
                       ip, INET6_ADDRSTRLEN);
        else
        if (info->client_addr->sa_family == AF_INET6)
            inet_ntop (AF_INET6, &((struct sockaddr_in6 *) info->client_addr)->sin6_addr,
                       ip, INET6_ADDRSTRLEN);
    }
}

static const char *
s_bearer_token (s_req_t *req)
{
    const char *auth = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Authorization");
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0 && auth [7])
        return auth + 7;
    return MHD_lookup_connection_value (req->conn, MHD_COOKIE_KIND, "tally_session");
}

//  The token to check with the auth service, or NULL when the request
//  carries none worth asking about (absent, or longer than any token).
static const char *
s_session_token (s_req_t *req)
{
    const char *token = s_bearer_token (req);
    return token && strlen (token) <= 512 ? token : NULL;
}

//  True when the request goes with its caller's session: always on an
//  `auth` route, and on an `"auth": "optional"` one when a token is sent
//  (checked like any other: an ended session is 401, not anonymous).
static bool
s_wants_session (s_req_t *req)
{
    return req->route->auth || (req->route->auth_optional && s_session_token (req));
}

//  Builds the envelope for the route and either submits it or, when the
//  route needs a caller, first asks the auth service.
static void
s_dispatch (s_req_t *req)
{
    const gw_route_t *route = req->route;
    tl_msg_t *msg = tl_msg_new (TL_MSG_REQUEST);
    if (!msg) {
        s_error (req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    tl_msg_set_str (msg, TL_MSG_SERVICE, route->service);
    tl_msg_set_str (msg, TL_MSG_METHOD, route->method);
    tl_msg_set_str (msg, TL_MSG_TRACE, req->request_id);
    tl_msg_set_deadline (msg, tl_msg_now_ms () + (uint64_t) route->timeout_ms);
    tl_msg_set_idempotent (msg, route->idempotent);
    for (int i = 0; i < req->params.count; i++)
        tl_msg_add_param (msg, req->params.items [i].name, req->params.items [i].value);
    if (req->stream)                    //  before the query's: a client cannot set it
        tl_msg_add_param (msg, "body_stream", gw_bodies_ended (req->stream) ? "end" : "more");
    if (route->credentials) {
        //  Before the query's: a client cannot set these.
        const char *token = s_bearer_token (req);
        char ip [INET6_ADDRSTRLEN] = "-";
        s_client_ip (req, ip);
        tl_msg_add_param (msg, "session_token", token && strlen (token) <= 512 ? token : "");
        tl_msg_add_param (msg, "client_ip", ip);
    }
    s_query_t query = { msg, false };
    MHD_get_connection_values (req->conn, MHD_GET_ARGUMENT_KIND, s_query_arg, &query);
    if (query.bad) {
        tl_msg_destroy (&msg);
        s_error (req, 400, "bad_query", "a query parameter is malformed or too long", NULL);
        return;
    }
    const char *idem = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (idem) {
        if (!tl_valid_idempotency_key (idem)) {
            tl_msg_destroy (&msg);
            s_error (req, 400, "bad_idempotency_key",
                     "Idempotency-Key must be 1 to 255 visible ASCII characters", NULL);
            return;
        }
        tl_msg_set_str (msg, TL_MSG_IDEM, idem);
    }

    //  The body: JSON checked against the declaration, or upload bytes.
    size_t size = req->body ? tl_buf_size (req->body) : 0;
    if (req->stream) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        req->streaming = gw_bodies_take (req->stream, &pk, false);
        tl_msg_set_body (msg, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        const char *type = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Content-Type");
        if (type && strlen (type) < 256)
            tl_msg_add_param (msg, "content_type", type);
    }
    else
    if (route->body == GW_BODY_UPLOAD && size) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, tl_buf_data (req->body), size);
        tl_msg_set_body (msg, sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        const char *type = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Content-Type");
        if (type && strlen (type) < 256)
            tl_msg_add_param (msg, "content_type", type);
    }
    else
    if (route->body == GW_BODY_JSON && (size || route->fields)) {
        char errbuf [200] = "";
        int err = 0;
        json_t *json = size ? tl_json_parse (tl_buf_data (req->body), size, errbuf, sizeof errbuf, &err)
                            : NULL;
        if (size && !json) {
            tl_msg_destroy (&msg);
            s_error (req, err == TL_ETOOBIG ? 413 : 400,
                     err == TL_ETOOBIG ? "too_deep" : "malformed_json", errbuf, NULL);
            return;
        }
        json_t *errors = NULL;
        if (route->fields && tl_json_validate (json, route->fields, &errors) != 0) {
            json_decref (json);
            tl_msg_destroy (&msg);
            s_error (req, 400, "invalid_body", "the body does not match the declaration", errors);
            return;
        }
        if (json) {
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init (&sbuf);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
            int rc = tl_json_pack (json, &pk);
            if (rc == 0)
                rc = tl_msg_set_body (msg, sbuf.data, sbuf.size);
            msgpack_sbuffer_destroy (&sbuf);
            json_decref (json);
            if (rc) {
                tl_msg_destroy (&msg);
                s_error (req, 413, "too_large", "the JSON body is too large or too deep", NULL);
                return;
            }
        }
    }

    if (!s_wants_session (req) || req->caller) {
        if (req->caller)
            tl_msg_copy_caller (msg, req->caller);
        else
            tl_msg_set_str (msg, TL_MSG_CALLER, "anonymous");
        req->state = S_WAITING;
        s_submit (req, &msg);
        return;
    }
    const char *token = s_session_token (req);
    if (!token) {
        tl_msg_destroy (&msg);
        s_error (req, 401, "unauthenticated", "a session token is required", NULL);
        return;
    }
    req->request = msg;
    s_check_session (req, token);
}

//  Finds who holds `token`: from the sessions this gateway has checked
//  (the request goes on at once), or by asking the auth service
//  (s_authenticated follows).
static void
s_check_session (s_req_t *req, const char *token)
{
    gw_sessions_t *sessions = req->http->sessions;
    tl_msg_t *into = req->request;
    if (!into && !(into = req->caller = tl_msg_new (TL_MSG_REQUEST))) {
        s_error (req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    if (gw_sessions_lookup (sessions, token, (uint64_t) zclock_mono (), into)) {
        if (req->request) {
            tl_msg_t *msg = req->request;
            req->request = NULL;
            req->state = S_WAITING;
            s_submit (req, &msg);
        }
        return;                 //  known before the body: go on reading it
    }
    if (!req->request)
        tl_msg_destroy (&req->caller);
    req->check_generation = gw_sessions_generation (sessions);
    tl_msg_t *check = tl_msg_new (TL_MSG_REQUEST);
    if (!check) {
        s_error (req, 503, "unavailable", "out of memory", NULL);
        return;
    }
    tl_msg_set_str (check, TL_MSG_SERVICE, "auth");
    tl_msg_set_str (check, TL_MSG_METHOD, "session.check");
    tl_msg_set_str (check, TL_MSG_CALLER, "gateway");
    tl_msg_set_str (check, TL_MSG_TRACE, req->request_id);
    tl_msg_set_deadline (check, tl_msg_now_ms () + S_AUTH_TIMEOUT_MS);
    tl_msg_set_idempotent (check, true);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tl_mp_pack_pairs (&sbuf, (const char *[]) { "token", token }, 1);
    tl_msg_set_body (check, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    req->state = S_AUTHENTICATING;
    s_submit (req, &check);
}

//  Reads the auth service's answer into `msg`'s caller. Returns true, or
//  false with the error response set.
static bool
s_take_caller (s_req_t *req, tl_msg_t *reply, tl_msg_t *msg)
{
    int status = tl_msg_status (reply);
    const msgpack_object *body = tl_msg_body (reply);
    if (status == 401 || status == 403 || status == 404) {
        s_error (req, 401, "unauthenticated", "the session is invalid or has ended", NULL);
        return false;
    }
    if (status != 200) {
        s_respond_reply (req, reply);   //  503, 504: pass on
        return false;
    }
    char *user = tl_mp_strdup (tl_mp_get (body, "user_id"), TL_MAX_ID_LEN);
    if (!user) {
        s_error (req, 502, "bad_gateway", "the auth service sent an invalid reply", NULL);
        return false;
    }
    tl_msg_clear_caller (msg);
    tl_msg_set_str (msg, TL_MSG_CALLER, "user");
    tl_msg_set_str (msg, TL_MSG_USER_ID, user);
    free (user);
    char *zone = tl_mp_strdup (tl_mp_get (body, "tz"), TL_MAX_TIMEZONE_LEN);
    tl_msg_set_str (msg, TL_MSG_USER_TZ, zone);
    free (zone);
    const msgpack_object *verified = tl_mp_get (body, "verified");
    if (verified && verified->type == MSGPACK_OBJECT_BOOLEAN)
        tl_msg_set_user_verified (msg, verified->via.boolean);
    const msgpack_object *roles = tl_mp_get (body, "roles");
    for (uint32_t i = 0; roles && roles->type == MSGPACK_OBJECT_ARRAY
                      && i < roles->via.array.size; i++) {
        char *role = tl_mp_strdup (&roles->via.array.ptr [i], TL_MAX_NAME_LEN);
        if (role)
            tl_msg_add_role (msg, role);
        free (role);
    }
    //  Kept for the next requests with this token, unless auth told of a
    //  change while the check was on its way (gw_sessions.h)
    uint64_t lifetime = 0;
    const char *token = s_session_token (req);
    if (token && tl_mp_uint (tl_mp_get (body, "expires_in_ms"), &lifetime) == 0
    &&  gw_sessions_store (req->http->sessions, token, req->check_generation, msg,
                           (uint64_t) zclock_mono (), lifetime) != 0)
        tl_log (TL_LOG_WARN, req->request_id, "session not cached: out of memory");
    return true;
}

//  The auth service answered. Asked before the body: keep the caller and go
//  on reading the body. Asked with the request built: send it.
static void
s_authenticated (s_req_t *req, tl_msg_t *reply)
{
    if (!req->request) {
        req->caller = tl_msg_new (TL_MSG_REQUEST);
        if (!req->caller)
            s_error (req, 503, "unavailable", "out of memory", NULL);
        else
        if (s_take_caller (req, reply, req->caller))
            req->state = S_RECEIVING;
        return;
    }
    if (!s_take_caller (req, reply, req->request))
        return;
    tl_msg_t *msg = req->request;
    req->request = NULL;
    req->state = S_WAITING;
    s_submit (req, &msg);
}

static void
s_resume (s_req_t *req)
{
    if (req->suspended) {
        req->suspended = false;
        zlistx_delete (req->http->suspended, req->suspended_handle);
        req->suspended_handle = NULL;
        MHD_resume_connection (req->conn);
    }
}

static void
s_on_reply (void *arg, tl_msg_t **reply_p)
{
    s_req_t *req = (s_req_t *) arg;
    req->in_broker = false;
    if (req->state == S_AUTHENTICATING)
        s_authenticated (req, *reply_p);
    else
        s_respond_reply (req, *reply_p);
    tl_msg_destroy (reply_p);
    //  Still waiting only if the auth step submitted the real request; a
    //  caller known before the body goes on to read it.
    if (req->state == S_ANSWERED || req->state == S_RECEIVING)
        s_resume (req);
}

//  ---------------------------------------------------------------------
//  Streamed bodies (gw_bodies.h; PROTOCOL.md §3 "Streamed bodies")

static void s_suspend (s_req_t *req);

//  Answers the read waiting for a chunk when one is ready, then reads ahead
//  (resumes the connection) while the body has not ended.
static void
s_stream_answer (s_req_t *req)
{
    const unsigned char *rid;
    size_t rid_size;
    const char *id;
    if (!req->streaming || !gw_bodies_ready (req->stream)
    ||  !gw_bodies_waiting (req->stream, &rid, &rid_size, &id))
        return;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    req->streaming = gw_bodies_take (req->stream, &pk, true);
    gw_broker_answer (req->http->broker, rid, rid_size, id, 200, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    gw_bodies_answered (req->stream);
    if (req->streaming && req->state == S_WAITING)
        s_resume (req);
}

//  Body bytes of a streamed request: into the chunk; a full chunk goes
//  with the request (the first) or to the waiting read, and the connection
//  is parked while a chunk waits for its read (the back-pressure).
static enum MHD_Result
s_stream_data (s_req_t *req, const char *data, size_t *size)
{
    if (req->state == S_ANSWERED) {     //  answered before the end: the rest is not read
        *size = 0;
        return req->response ? MHD_queue_response (req->conn, req->status, req->response)
                             : MHD_NO;
    }
    if (zclock_usecs () - req->started > (int64_t) req->route->timeout_ms * 1000)
        return MHD_NO;                  //  past the request's deadline: cut off
    size_t left = *size;
    if (gw_bodies_feed (req->stream, data, &left) != 0) {
        if (req->state != S_RECEIVING)
            return MHD_NO;              //  the handler's read fails when the request ends
        *size = 0;
        s_error (req, 413, "too_large", "the body is too large", NULL);
        return MHD_queue_response (req->conn, req->status, req->response);
    }
    req->bytes_in -= left;              //  counted again when given again
    *size = left;
    if (gw_bodies_ready (req->stream)) {
        if (req->state == S_RECEIVING)
            s_dispatch (req);
        else
            s_stream_answer (req);
        if (req->state == S_ANSWERED) {
            *size = 0;
            return req->response ? MHD_queue_response (req->conn, req->status, req->response)
                                 : MHD_NO;
        }
        if (gw_bodies_ready (req->stream) && !req->suspended)
            s_suspend (req);            //  until the handler reads
    }
    return MHD_YES;
}

//  mesh.body.read from the handler of request `request_arg`.
static void
s_on_body_read (void *arg, void *request_arg, const unsigned char *rid, size_t rid_size,
                const char *id)
{
    gw_http_t *http = (gw_http_t *) arg;
    s_req_t *req = (s_req_t *) request_arg;
    if (!req->stream || !req->streaming
    ||  gw_bodies_wait (req->stream, rid, rid_size, id) != 0) {
        gw_broker_answer (http->broker, rid, rid_size, id, 409, NULL, 0);
        return;
    }
    if (gw_bodies_ready (req->stream))
        s_stream_answer (req);
    else
        s_resume (req);                 //  read on
}

//  The request ends (answered, or the client went away): a read still
//  waiting is answered 410, so that the handler stops at once.
static void
s_stream_gone (s_req_t *req)
{
    const unsigned char *rid;
    size_t rid_size;
    const char *id;
    if (req->stream && gw_bodies_waiting (req->stream, &rid, &rid_size, &id))
        gw_broker_answer (req->http->broker, rid, rid_size, id, 410, NULL, 0);
    gw_bodies_destroy (&req->stream);
}

//  ---------------------------------------------------------------------
//  libmicrohttpd callbacks

static void
s_make_request_id (s_req_t *req)
{
    const char *given = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t len = strlen (given);
        bool ok = len > 0 && len <= TL_HTTP_MAX_REQUEST_ID;
        for (size_t i = 0; ok && i < len; i++)
            ok = isalnum ((unsigned char) given [i]) || strchr ("-_.:", given [i]);
        if (ok) {
            memcpy (req->request_id, given, len + 1);
            return;
        }
    }
    //  Unique, not secret: a random prefix per process and a counter, so
    //  that a request costs no getrandom() call.
    static char prefix [17];
    static uint64_t counter;
    if (!prefix [0]) {
        unsigned char bytes [8];
        randombytes_buf (bytes, sizeof bytes);
        sodium_bin2hex (prefix, sizeof prefix, bytes, sizeof bytes);
    }
    snprintf (req->request_id, sizeof req->request_id, "%s%016" PRIx64, prefix, ++counter);
}

//  True when the request announces a body (Content-Length > 0 or chunked).
static bool
s_has_body (struct MHD_Connection *conn)
{
    const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Length");
    return (length && strcmp (length, "0") != 0)
        || MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Transfer-Encoding");
}

//  Counts `total` body bytes of this request against TL_HTTP_MAX_BUFFERED_BYTES,
//  the bound of the bodies all connections hold together. Returns 0, or
//  TL_EBUSY (nothing reserved) when that would pass the bound.
static int
s_reserve (s_req_t *req, size_t total)
{
    if (total <= req->reserved)
        return 0;
    size_t more = total - req->reserved;
    if (req->http->buffered + more > (size_t) TL_HTTP_MAX_BUFFERED_BYTES)
        return TL_EBUSY;
    req->http->buffered += more;
    req->reserved = total;
    return 0;
}

//  First call: route the request and check what the headers already tell.
static void
s_begin (s_req_t *req, const char *url, const char *method)
{
    gw_http_t *http = req->http;
    req->route_name = "unmatched";
    if (s_ops (req, url))
        return;
    if (req->ops) {
        s_error (req, 404, "not_found", "the ops port serves /healthz, /livez, /readyz "
                 "and /metrics", NULL);
        return;
    }
    if (strlen (url) > TL_HTTP_MAX_URL_LEN) {
        s_error (req, 414, "uri_too_long", "the path is too long", NULL);
        return;
    }
    char allow [128] = "";
    int status = 404;
    bool preflight = streq (method, "OPTIONS");
    req->route = gw_router_match (http->router, preflight ? "GET" : method, url,
                                  &req->params, allow, sizeof allow, &status);
    if (preflight) {
        //  CORS preflight, or a plain OPTIONS: both answer with what the
        //  path allows.
        if (req->route) {
            gw_params_reset (&req->params);
            req->route = NULL;
            gw_router_match (http->router, "OPTIONS", url, &req->params, allow,
                             sizeof allow, &status);
        }
        if (!*allow) {
            s_error (req, 404, "not_found", "no such path", NULL);
            return;
        }
        struct MHD_Response *response = MHD_create_response_from_buffer (
            0, (void *) "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (response, "Allow", allow);
        MHD_add_response_header (response, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header (response, "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id");
        MHD_add_response_header (response, "Access-Control-Max-Age", "600");
        s_respond (req, 204, response);
        return;
    }
    if (!req->route) {
        if (status == 405) {
            s_error (req, 405, "method_not_allowed", "the path does not allow this method", NULL);
            MHD_add_response_header (req->response, "Allow", allow);
        }
        else
            s_error (req, 404, "not_found", "no such path", NULL);
        return;
    }
    req->route_name = req->route->pattern;

    //  No credential at all on a route that needs a session: refused before
    //  anything else, and before its body is read.
    if (req->route->auth && !s_session_token (req)) {
        s_error (req, 401, "unauthenticated", "a session token is required", NULL);
        return;
    }

    //  Body limits and content type, from the headers alone.
    req->body_limit = req->route->body == GW_BODY_UPLOAD ? TL_HTTP_MAX_UPLOAD_BODY
                    : req->route->body == GW_BODY_JSON ? TL_HTTP_MAX_JSON_BODY
                    : req->route->body == GW_BODY_STREAM ? GW_BODIES_MAX : 0;
    const char *length = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Content-Length");
    if (length && strtoull (length, NULL, 10) > req->body_limit) {
        if (req->body_limit == 0)
            s_error (req, 400, "unexpected_body", "this method takes no body", NULL);
        else
            s_error (req, 413, "too_large", "the body is too large", NULL);
        return;
    }
    const char *type = MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, "Content-Type");
    if (s_has_body (req->conn) && req->route->body == GW_BODY_JSON
    &&  (!type || strncasecmp (type, "application/json", 16) != 0
               || (type [16] && type [16] != ';' && type [16] != ' '))) {
        s_error (req, 415, "unsupported_media_type", "send the body as application/json", NULL);
        return;
    }
    if (req->route->body == GW_BODY_STREAM) {
        //  One chunk at a time is held, whatever the body's size
        req->stream = s_reserve (req, GW_BODIES_CHUNK) == 0 ? gw_bodies_new () : NULL;
        if (!req->stream) {
            s_error (req, 503, "overloaded", "the gateway holds too many request bodies; retry later",
                     NULL);
            return;
        }
    }
    else
    if (req->body_limit) {
        //  The announced body counts against the bound of all connections
        //  together at once; a chunked one counts as it arrives.
        if (s_reserve (req, length ? (size_t) strtoull (length, NULL, 10) : 0) != 0) {
            s_error (req, 503, "overloaded", "the gateway holds too many request bodies; retry later",
                     NULL);
            return;
        }
        req->body = tl_buf_new (req->body_limit);
        if (!req->body) {
            s_error (req, 503, "unavailable", "out of memory", NULL);
            return;
        }
    }
    //  A body for a route that needs a session is read only for a caller
    //  the auth service knows.
    req->announced = length ? (size_t) strtoull (length, NULL, 10) : 0;
    if (s_wants_session (req) && req->announced)
        s_check_session (req, s_session_token (req));
}

//  A body refused while it streams in (chunked, past its bound): answered
//  at once, not after reading the rest. libmicrohttpd queues a response
//  only once the whole body is in, so the refusal (already built by
//  s_error: its status and `code`) is written on the socket as it is, and
//  the connection is closed, as nginx does with a 413. Returns MHD_NO.
static enum MHD_Result
s_refuse_mid_body (s_req_t *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info && info->connect_fd >= 0) {
        char body [160], head [512];
        bool large = req->status == 413;
        int body_len = snprintf (body, sizeof body, "{\"error\":{\"code\":\"%s\","
                                 "\"message\":\"%s\"}}",
                                 large ? "too_large" : "unexpected_body",
                                 large ? "the body is too large" : "this method takes no body");
        int head_len = snprintf (head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                                 "Content-Length: %d\r\nCache-Control: no-store\r\n"
                                 "X-Request-Id: %s\r\nConnection: close\r\n\r\n%s",
                                 req->status, large ? "Content Too Large" : "Bad Request",
                                 S_JSON_TYPE, body_len, req->request_id, body);
        if (head_len > 0 && (size_t) head_len < sizeof head)
            (void) send (info->connect_fd, head, (size_t) head_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    return MHD_NO;
}

//  Parks the connection until the broker calls back (s_resume).
static void
s_suspend (s_req_t *req)
{
    req->suspended = true;
    req->suspended_handle = zlistx_add_end (req->http->suspended, req);
    MHD_suspend_connection (req->conn);
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size,
          void **con_cls)
{
    gw_http_t *http = (gw_http_t *) cls;
    s_req_t *req = (s_req_t *) *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->http = http;
        req->conn = conn;
        const union MHD_ConnectionInfo *daemon =
            MHD_get_connection_info (conn, MHD_CONNECTION_INFO_DAEMON);
        req->ops = daemon && daemon->daemon == http->ops_daemon;
        //  The stream daemon's small pool was sized for this request's
        //  head: a next one on the connection could be larger
        req->close_after = daemon && daemon->daemon == http->stream_daemon;
        req->started = zclock_usecs ();
        snprintf (req->method, sizeof req->method, "%s", method);
        *con_cls = req;
        http->active++;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (info && info->socket_context)
            ((s_conn_t *) info->socket_context)->in_request = true;
        s_make_request_id (req);
        s_begin (req, url, method);
        //  A refusal of a request that announced a body is sent at once,
        //  without reading the body (libmicrohttpd then closes the
        //  connection). Anything else is answered on the next call, once
        //  the request is complete, so that the connection is kept alive.
        if (req->state == S_ANSWERED && s_has_body (conn))
            return MHD_queue_response (conn, req->status, req->response);
        if (req->state == S_AUTHENTICATING)
            s_suspend (req);            //  the body waits for the caller
        return MHD_YES;
    }
    if (*upload_data_size) {
        req->bytes_in += *upload_data_size;
        if (req->stream && req->state != S_AUTHENTICATING)
            return s_stream_data (req, upload_data, upload_data_size);
        if (req->state == S_RECEIVING) {
            if (zclock_usecs () - req->started > TL_HTTP_BODY_TIMEOUT_SEC * 1000000LL)
                return MHD_NO;          //  too slow: cut off
            size_t total = req->body ? tl_buf_size (req->body) + *upload_data_size : 0;
            int rc = !req->body || total > req->body_limit ? TL_ETOOBIG
                   : s_reserve (req, total);
            if (rc == 0)
                rc = tl_buf_append (req->body, upload_data, *upload_data_size);
            if (rc == TL_ETOOBIG)
                s_error (req, req->body_limit ? 413 : 400,
                         req->body_limit ? "too_large" : "unexpected_body",
                         req->body_limit ? "the body is too large" : "this method takes no body",
                         NULL);
            else
            if (rc == TL_EBUSY)
                s_error (req, 503, "overloaded",
                         "the gateway holds too many request bodies; retry later", NULL);
            else
            if (rc)
                s_error (req, 503, "unavailable", "out of memory", NULL);
            *upload_data_size = 0;
            if (rc == TL_ETOOBIG)
                return s_refuse_mid_body (req);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == S_RECEIVING && req->bytes_in < req->announced)
        return MHD_YES;                 //  resumed after the session check: the body comes next
    if (req->stream && req->state != S_AUTHENTICATING) {
        gw_bodies_end (req->stream);    //  the last chunk, to the read waiting for it
        s_stream_answer (req);
    }
    if (req->state == S_RECEIVING)
        s_dispatch (req);
    if (req->state == S_ANSWERED) {
        if (!req->response)
            return MHD_NO;
        return MHD_queue_response (conn, req->status, req->response);
    }
    s_suspend (req);
    return MHD_YES;
}

static void
s_access_log (s_req_t *req, struct MHD_Connection *conn, int64_t micros)
{
    char fields [1024];
    size_t pos = 0;
    char ip [INET6_ADDRSTRLEN] = "-";
    s_client_ip (req, ip);
    pos += (size_t) snprintf (fields, sizeof fields,
                     "\"msg\":\"access\",\"trace\":\"%s\",\"method\":\"%s\",\"route\":\"",
                     req->request_id, req->method);
    tl_log_escape (fields, sizeof fields - 200, &pos, req->route_name);
    snprintf (fields + pos, sizeof fields - pos,
              "\",\"status\":%d,\"ms\":%.3f,\"bytes_in\":%zu,\"ip\":\"%s\"",
              req->status, (double) micros / 1000.0, req->bytes_in, ip);
    tl_log_json (TL_LOG_INFO, fields);
}

//  Records a served call for analytics (gw_calls): started `micros` ago.
static void
s_record_call (s_req_t *req, int64_t micros)
{
    char ip [INET6_ADDRSTRLEN] = "";
    s_client_ip (req, ip);
    gw_calls_record (req->http->calls, req->method, req->route_name, req->status,
                     (double) micros / 1000.0, ip, zclock_time () * 1000 - micros);
}

void
gw_http_set_calls (gw_http_t *self, gw_calls_t *calls)
{
    self->calls = calls;
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    gw_http_t *http = (gw_http_t *) cls;
    s_req_t *req = (s_req_t *) *con_cls;
    if (!req)
        return;
    int64_t micros = zclock_usecs () - req->started;
    int status = req->status ? req->status : 499;   //  client went away
    req->status = status;
    gw_metrics_record (http->metrics, req->route_name, req->method, status,
                       (double) micros / 1e6);
    if (http->config.access_log)
        s_access_log (req, conn, micros);
    s_stream_gone (req);
    if (http->calls && req->route && !req->ops && !req->route->stream)
        s_record_call (req, micros);     //  not a stream: its time is its life
    if (req->in_broker)
        gw_broker_cancel (http->broker, req->handle);
    if (req->suspended_handle)
        zlistx_delete (http->suspended, req->suspended_handle);
    if (req->response)
        MHD_destroy_response (req->response);
    tl_msg_destroy (&req->request);
    tl_msg_destroy (&req->caller);
    tl_buf_destroy (&req->body);
    http->buffered -= req->reserved;
    gw_params_reset (&req->params);
    free (req);
    *con_cls = NULL;
    http->active--;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info && info->socket_context) {
        s_conn_t *c = (s_conn_t *) info->socket_context;
        c->in_request = false;
        c->waiting_since = zclock_usecs ();
    }
}

static void
s_connection (void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    gw_http_t *http = (gw_http_t *) cls;
    s_conn_t *c = (s_conn_t *) *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        c = calloc (1, sizeof *c);
        if (c) {
            c->conn = conn;
            c->waiting_since = zclock_usecs ();
            c->handle = zlistx_add_end (http->connections, c);
        }
        *socket_context = c;
    }
    else
    if (c) {
        zlistx_delete (http->connections, c->handle);
        free (c);
        *socket_context = NULL;
    }
}

//  Leaves percent-escapes in place: the router decodes path segments
//  itself (so that %2F stays inside its segment) and s_query_arg decodes
//  query values.
static size_t
s_no_unescape (void *cls, struct MHD_Connection *conn, char *text)
{
    return strlen (text);
}

static void
s_mhd_log (void *cls, const char *format, va_list args)
    __attribute__ ((format (printf, 2, 0)));

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    char text [512];
    vsnprintf (text, sizeof text, format, args);
    size_t len = strlen (text);
    while (len && text [len - 1] == '\n')
        text [--len] = 0;
    tl_log (TL_LOG_WARN, NULL, "http: %s", text);
}

//  ---------------------------------------------------------------------
//  Construction

static int s_epoll_fd (struct MHD_Daemon *daemon);

//  Parses `address` ("IPv4:port", from `variable`) into `addr`. Returns 0,
//  or -1 (logged).
static int
s_address (const char *address, const char *variable, struct sockaddr_in *addr)
{
    char host [64] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr (address, ':');
    if (colon && (size_t) (colon - address) < sizeof host) {
        memcpy (host, address, (size_t) (colon - address));
        host [colon - address] = 0;
        port = atoi (colon + 1);
    }
    *addr = (struct sockaddr_in) { 0 };
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    if (port <= 0 || port > 65535 || inet_pton (AF_INET, host, &addr->sin_addr) != 1) {
        tl_log (TL_LOG_ERROR, NULL, "%s must be IPv4:port, not %s", variable, address);
        return -1;
    }
    return 0;
}

//  Starts a libmicrohttpd daemon with the gateway's callbacks, whose
//  connections each have `pool` bytes of memory (the request head, the
//  reply's head and chunks) and which holds `limit` connections: listening
//  on `addr` (the ops port), or with no socket of its own when `addr` is
//  NULL (the public daemons, which s_accept hands connections to).
//  Returns NULL when it cannot start.
static struct MHD_Daemon *
s_daemon (gw_http_t *self, const struct sockaddr_in *addr, size_t pool, unsigned int limit)
{
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (!addr)
        flags |= MHD_USE_NO_LISTEN_SOCKET;
    return MHD_start_daemon (
        flags, addr ? ntohs (addr->sin_port) : 0, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            (unsigned int) (self->config.trust_proxy ? 0 : TL_HTTP_MAX_PER_IP),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) TL_HTTP_IDLE_TIMEOUT_SEC,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_connection, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_no_unescape, NULL,
        //  last: without an address the list ends here
        addr ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, (const struct sockaddr *) addr,
        MHD_OPTION_END);
}

//  The public port's socket: non-blocking, and with TCP_DEFER_ACCEPT, so
//  that a connection is usually accepted with its first bytes already
//  there to peek at. Returns the socket, or -1 (errno set).
static int
s_listen_socket (const struct sockaddr_in *addr)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1, defer = S_DEFER_ACCEPT_SEC;
    (void) setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    (void) setsockopt (fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    if (bind (fd, (const struct sockaddr *) addr, sizeof *addr) != 0 || listen (fd, 1024) != 0) {
        int error = errno;
        close (fd);
        errno = error;
        return -1;
    }
    return fd;
}

//  Whether `head` (`len` bytes, NUL-terminated: the first bytes a client
//  sent, peeked) is one whole request head, and nothing after it, of a GET
//  of a stream route, that the stream daemon's pool holds with
//  TL_HTTP_STREAM_REPLY_ROOM to spare. libmicrohttpd 0.9.75 reads the head
//  into its read buffer (half the pool at first; cut down to the head when
//  it answers) and takes from the pool's other end S_FIELD_BYTES for each
//  header line, query argument and cookie, and a copy of the Cookie header;
//  the reply's head echoes Origin and X-Request-Id, so those count twice
//  too. Counts are upper bounds: any '?', '&' or ';' is taken for a field.
//  Anything else (a head still arriving, more than one request, bare LF
//  line ends, a NUL) goes to the main daemon, which takes any head.
static bool
s_small_stream_head (gw_router_t *router, const char *head, size_t len)
{
    if (len < 5 || len > TL_HTTP_STREAM_HEAD_BYTES || strlen (head) != len
    ||  memcmp (head, "GET /", 5) != 0)
        return false;
    const char *end = (const char *) memmem (head, len, "\r\n\r\n", 4);
    if (!end || (size_t) (end + 4 - head) != len)
        return false;
    char path [TL_HTTP_STREAM_HEAD_BYTES + 1];
    size_t path_len = strcspn (head + 4, " ?\r\n");
    memcpy (path, head + 4, path_len);
    path [path_len] = 0;
    int status = 0;
    const gw_route_t *route = gw_router_match (router, "GET", path, NULL, NULL, 0, &status);
    if (!route || !route->stream)
        return false;
    size_t fields = 0, copied = 0;
    for (const char *c = head; *c; c++)
        if (*c == '\n' || *c == '?' || *c == '&' || *c == ';')
            fields++;
    for (const char *line = strstr (head, "\r\n"); line && line < end;
         line = strstr (line + 2, "\r\n"))
        if (strncasecmp (line + 2, "Cookie:", 7) == 0) {
            fields++;                   //  its first cookie
            copied += strcspn (line + 2, "\r\n") + 1 + 16;
        }
        else
        if (strncasecmp (line + 2, "Origin:", 7) == 0
        ||  strncasecmp (line + 2, "X-Request-Id:", 13) == 0)
            copied += strcspn (line + 2, "\r\n");
    return len + copied + fields * S_FIELD_BYTES + TL_HTTP_STREAM_REPLY_ROOM
        <= TL_HTTP_STREAM_POOL_BYTES;
}

//  Connections `daemon` holds (0 when NULL).
static size_t
s_connections (struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = daemon
        ? MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    return info ? info->num_connections : 0;
}

//  Connections both public daemons hold.
static size_t
s_public_connections (gw_http_t *self)
{
    return s_connections (self->daemon) + s_connections (self->stream_daemon);
}

//  Watches the public port for new connections (`on`), or stops (when
//  full, or out of descriptors: gw_http_tick watches again).
static void
s_listening (gw_http_t *self, bool on)
{
    if (self->listen_fd < 0 || self->listening == on)
        return;
    if (on) {
        struct epoll_event event = { .events = EPOLLIN, .data.fd = self->listen_fd };
        self->listening = epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->listen_fd, &event) == 0;
    }
    else {
        (void) epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->listen_fd, NULL);
        self->listening = false;
    }
}

//  Accepts the clients waiting on the public port (S_ACCEPT_BATCH at most)
//  and hands each to the stream daemon or the main one, by its first bytes
//  (s_small_stream_head; the main one when the stream daemon holds
//  TL_STREAMS_MAX, where gw_streams answers 503). At most
//  TL_HTTP_MAX_CONNECTIONS in all; the daemons' own limits (per address
//  too) apply as when they accepted themselves.
static void
s_accept (gw_http_t *self)
{
    for (int i = 0; i < S_ACCEPT_BATCH && self->listening; i++) {
        if (s_public_connections (self) >= TL_HTTP_MAX_CONNECTIONS) {
            s_listening (self, false);
            return;
        }
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        int fd = accept4 (self->listen_fd, (struct sockaddr *) &addr, &addr_len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                tl_log (TL_LOG_WARN, NULL, "http: accept: %s; paused", strerror (errno));
                s_listening (self, false);
            }
            return;
        }
        char head [TL_HTTP_STREAM_HEAD_BYTES + 2];
        ssize_t got = recv (fd, head, sizeof head - 1, MSG_PEEK | MSG_DONTWAIT);
        bool small = false;
        if (got > 0) {
            head [got] = 0;
            small = s_small_stream_head (self->router, head, (size_t) got)
                 && s_connections (self->stream_daemon) < TL_STREAMS_MAX;
        }
        //  Closes the socket itself when the daemon does not take it
        (void) MHD_add_connection (small ? self->stream_daemon : self->daemon, fd,
                                   (const struct sockaddr *) &addr, addr_len);
    }
}

//  A broadcast from a service (gw_broker_on_broadcast). auth.user.changed
//  {user_id}: what this gateway keeps of the user's sessions is stale.
static bool
s_on_broadcast (void *arg, const char *topic, const msgpack_object *body)
{
    gw_http_t *self = (gw_http_t *) arg;
    if (streq (topic, "auth.user.changed")) {
        char *user = tl_mp_strdup (tl_mp_get (body, "user_id"), TL_MAX_ID_LEN);
        if (!user)
            return false;
        gw_sessions_forget (self->sessions, user);
        free (user);
        gw_streams_on_broadcast (self->streams, topic, body);   //  re-checks their streams
        return true;
    }
    return gw_streams_on_broadcast (self->streams, topic, body);
}

gw_http_t *
gw_http_new (const gw_http_config_t *config, gw_router_t *router,
             gw_broker_t *broker, gw_metrics_t *metrics)
{
    gw_http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->router = router;
    self->broker = broker;
    self->metrics = metrics;
    self->suspended = zlistx_new ();
    self->connections = zlistx_new ();
    self->sessions = gw_sessions_new (TL_SESSION_CACHE_MAX, TL_SESSION_CACHE_TTL_MS);
    self->streams = gw_streams_new (broker);
    if (!self->suspended || !self->connections || !self->sessions || !self->streams) {
        gw_streams_destroy (&self->streams);
        zlistx_destroy (&self->suspended);
        zlistx_destroy (&self->connections);
        gw_sessions_destroy (&self->sessions);
        free (self);
        return NULL;
    }
    gw_broker_on_broadcast (broker, s_on_broadcast, self);
    gw_broker_on_body_read (broker, s_on_body_read, self, s_on_reply);
    if (config->cors_origins && *config->cors_origins) {
        size_t len = strlen (config->cors_origins);
        self->cors = malloc (len + 3);
        if (self->cors) {
            snprintf (self->cors, len + 3, ",%s,", config->cors_origins);
            for (char *c = self->cors; *c; c++)
                if (*c == ' ')
                    *c = ',';
        }
    }

    self->listen_fd = self->epoll_fd = -1;
    struct sockaddr_in addr, ops_addr;
    if (s_address (config->address, "TALLY_HTTP_ADDR", &addr) != 0
    ||  s_address (config->ops_address, "TALLY_OPS_ADDR", &ops_addr) != 0) {
        gw_http_destroy (&self);
        return NULL;
    }
    self->listen_fd = s_listen_socket (&addr);
    if (self->listen_fd < 0) {
        tl_log (TL_LOG_ERROR, NULL, "cannot listen on %s (TALLY_HTTP_ADDR): %s",
                config->address, strerror (errno));
        gw_http_destroy (&self);
        return NULL;
    }
    self->daemon = s_daemon (self, NULL, (size_t) TL_HTTP_MAX_HEADER_BYTES * 2,
                             TL_HTTP_MAX_CONNECTIONS);
    self->stream_daemon = s_daemon (self, NULL, TL_HTTP_STREAM_POOL_BYTES, TL_STREAMS_MAX);
    self->ops_daemon = s_daemon (self, &ops_addr, (size_t) TL_HTTP_MAX_HEADER_BYTES * 2,
                                 TL_HTTP_MAX_CONNECTIONS);
    if (!self->ops_daemon)
        tl_log (TL_LOG_ERROR, NULL, "cannot listen on %s (TALLY_OPS_ADDR)", config->ops_address);
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    bool ok = self->daemon && self->stream_daemon && self->ops_daemon && self->epoll_fd >= 0;
    struct MHD_Daemon *daemons [] = { self->daemon, self->stream_daemon };
    for (size_t i = 0; ok && i < 2; i++) {
        int fd = s_epoll_fd (daemons [i]);
        struct epoll_event event = { .events = EPOLLIN, .data.fd = fd };
        ok = fd >= 0 && epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0;
    }
    if (ok)
        s_listening (self, true);
    if (!ok || !self->listening) {
        if (self->ops_daemon)
            tl_log (TL_LOG_ERROR, NULL, "cannot start the HTTP daemons");
        gw_http_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_http_destroy (gw_http_t **self_p)
{
    assert (self_p);
    gw_http_t *self = *self_p;
    if (!self)
        return;
    if (self->streams)
        gw_streams_close_all (self->streams);       //  none may stay suspended
    if (self->daemon) {
        MHD_run (self->daemon);                     //  they end
        MHD_stop_daemon (self->daemon);
    }
    if (self->stream_daemon) {
        MHD_run (self->stream_daemon);
        MHD_stop_daemon (self->stream_daemon);
    }
    if (self->ops_daemon)
        MHD_stop_daemon (self->ops_daemon);
    if (self->listen_fd >= 0)
        close (self->listen_fd);
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    zlistx_destroy (&self->suspended);
    zlistx_destroy (&self->connections);
    gw_sessions_destroy (&self->sessions);
    gw_streams_destroy (&self->streams);
    free (self->cors);
    free (self);
    *self_p = NULL;
}

static int
s_epoll_fd (struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int
gw_http_fd (gw_http_t *self)
{
    return self->epoll_fd;
}

int
gw_http_ops_fd (gw_http_t *self)
{
    return s_epoll_fd (self->ops_daemon);
}

void
gw_http_run (gw_http_t *self)
{
    s_accept (self);
    MHD_run (self->daemon);
    MHD_run (self->stream_daemon);
    MHD_run (self->ops_daemon);
}

//  Milliseconds until `daemon` needs to run again, or -1.
static long
s_daemon_timeout (struct MHD_Daemon *daemon)
{
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    if (MHD_get_timeout (daemon, &timeout) != MHD_YES)
        return -1;
    return timeout > 60000 ? 60000 : (long) timeout;
}

long
gw_http_timeout (gw_http_t *self)
{
    long timeout = -1;
    struct MHD_Daemon *daemons [] = { self->daemon, self->stream_daemon, self->ops_daemon };
    for (size_t i = 0; i < 3; i++) {
        long next = s_daemon_timeout (daemons [i]);
        if (next >= 0 && (timeout < 0 || next < timeout))
            timeout = next;
    }
    return timeout;
}

void
gw_http_drain (gw_http_t *self, bool stop_accepting)
{
    self->draining = true;
    gw_streams_close_all (self->streams);           //  clients reconnect elsewhere
    if (stop_accepting && !self->quiesced) {
        s_listening (self, false);
        close (self->listen_fd);
        self->listen_fd = -1;
        self->quiesced = true;
    }
}

void
gw_http_tick (gw_http_t *self)
{
    gw_streams_tick (self->streams, zclock_mono ());
    if (!self->listening && self->listen_fd >= 0
    &&  s_public_connections (self) < TL_HTTP_MAX_CONNECTIONS)
        s_listening (self, true);       //  paused when full or out of descriptors
    //  A suspended connection is invisible to libmicrohttpd: look for
    //  clients that hung up, give up their requests and close them.
    s_req_t *req = (s_req_t *) zlistx_first (self->suspended);
    while (req) {
        s_req_t *next = (s_req_t *) zlistx_next (self->suspended);
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct pollfd pfd = { info ? info->connect_fd : -1, POLLRDHUP, 0 };
        if (pfd.fd >= 0 && poll (&pfd, 1, 0) == 1
        &&  (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            if (req->in_broker) {
                gw_broker_cancel (self->broker, req->handle);
                req->in_broker = false;
            }
            s_respond (req, 499, NULL);         //  nobody to answer: close
            s_resume (req);
        }
        req = next;
    }
    //  Headers that trickle in byte by byte reset libmicrohttpd's idle
    //  timer: bound the time to a complete request head ourselves.
    int64_t limit = zclock_usecs () - TL_HTTP_IDLE_TIMEOUT_SEC * 1000000LL;
    for (s_conn_t *c = (s_conn_t *) zlistx_first (self->connections); c;
         c = (s_conn_t *) zlistx_next (self->connections)) {
        if (!c->in_request && c->waiting_since < limit) {
            const union MHD_ConnectionInfo *info =
                MHD_get_connection_info (c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (info)
                shutdown (info->connect_fd, SHUT_RDWR);
            c->waiting_since = INT64_MAX;   //  once; libmicrohttpd closes it
        }
    }
}

size_t
gw_http_active (gw_http_t *self)
{
    return self->active;
}

void
gw_http_test (bool verbose)
{
    assert (s_etag_matches ("\"abc\"", "\"abc\""));
    assert (s_etag_matches ("W/\"abc\"", "\"abc\""));
    assert (s_etag_matches ("\"x\", \"abc\"", "\"abc\""));
    assert (s_etag_matches ("*", "\"abc\""));
    assert (!s_etag_matches ("\"abcd\"", "\"abc\""));
    assert (!s_etag_matches (NULL, "\"abc\""));
    char text [] = "a%20b+c%e2%82%ac";
    assert (s_query_decode (text) && streq (text, "a b c\xe2\x82\xac"));
    char bad [] = "%zz";
    assert (!s_query_decode (bad));
    char nul [] = "a%00";
    assert (!s_query_decode (nul));
    char notutf8 [] = "%ff";
    assert (!s_query_decode (notutf8));

    //  Which first bytes go to the stream daemon (small pools)
    gw_router_t *router = gw_router_new ();
    assert (router);
    const char *declaration = "{\"service\": \"notification\", \"methods\": ["
        "{\"name\": \"stream\", \"route\": \"GET /api/v1/n/stream\", \"stream\": true},"
        "{\"name\": \"list\", \"route\": \"GET /api/v1/n\"}]}";
    char errbuf [200];
    assert (gw_router_load (router, declaration, strlen (declaration), errbuf,
                            sizeof errbuf) == 0);
    const char *small = "GET /api/v1/n/stream?last_event_id=3 HTTP/1.1\r\nHost: t\r\n"
                        "Authorization: Bearer abc\r\nCookie: a=1; b=2\r\n\r\n";
    assert (s_small_stream_head (router, small, strlen (small)));
    //  A browser's EventSource request with a session cookie fits
    const char *browser = "GET /api/v1/n/stream HTTP/1.1\r\nHost: tally.example.com\r\n"
        "Connection: keep-alive\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
        "sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n"
        "sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36\r\nSec-Fetch-Site: same-origin\r\n"
        "Sec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n"
        "Referer: https://tally.example.com/events/12\r\n"
        "Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
        "Cookie: tally_session=Vq3n8dXr2b0yK7uQk1o5L9sJmB4wZc6tHfGpEaYiRxU\r\n\r\n";
    assert (s_small_stream_head (router, browser, strlen (browser)));
    //  Not a stream route, not GET, not whole, more after it, bare LF
    const char *list = "GET /api/v1/n HTTP/1.1\r\nHost: t\r\n\r\n";
    assert (!s_small_stream_head (router, list, strlen (list)));
    const char *post = "POST /api/v1/n/stream HTTP/1.1\r\nHost: t\r\n\r\n";
    assert (!s_small_stream_head (router, post, strlen (post)));
    assert (!s_small_stream_head (router, small, strlen (small) - 2));
    char twice [600];
    snprintf (twice, sizeof twice, "%s%s", small, small);
    assert (!s_small_stream_head (router, twice, strlen (twice)));
    const char *bare = "GET /api/v1/n/stream HTTP/1.1\nHost: t\n\n";
    assert (!s_small_stream_head (router, bare, strlen (bare)));
    //  The pool's bound: the head, a copy of its cookies, its fields and
    //  the reply's room. A head of the largest size with one field fits;
    //  so many fields that they would not, or a big cookie, do not.
    char head [TL_HTTP_STREAM_HEAD_BYTES + 64];
    const char *start = "GET /api/v1/n/stream HTTP/1.1\r\nX-Pads: ";
    size_t fill = TL_HTTP_STREAM_HEAD_BYTES - strlen (start) - 4;
    memcpy (head, start, strlen (start));
    memset (head + strlen (start), 'p', fill);
    memcpy (head + strlen (start) + fill, "\r\n\r\n", 5);
    assert (strlen (head) == TL_HTTP_STREAM_HEAD_BYTES);
    assert (s_small_stream_head (router, head, strlen (head)));
    memcpy (head, "GET /api/v1/n/stream HTTP/1.1\r\nCookie: ", strlen (start));
    assert (!s_small_stream_head (router, head, strlen (head)));
    for (size_t i = strlen (start); i < strlen (start) + 40; i += 2)
        head [i] = '&';
    memcpy (head, start, strlen (start));
    assert (!s_small_stream_head (router, head, strlen (head)));
    gw_router_destroy (&router);
    if (verbose)
        printf ("(http ok) ");
}
