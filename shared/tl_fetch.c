//  tl_fetch.c — guarded outbound HTTP (see tl_fetch.h).
//  The private-address guard is curl's open-socket callback: it sees every
//  address curl is about to connect to (after DNS, for each happy-eyeballs
//  attempt) and refuses the private ones before a socket exists.
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>

#include "tl_error.h"
#include "tl_fetch.h"
#include "tl_valid.h"

struct _tl_fetch_t {
    char *url;
    long timeout_ms;
    size_t max_size;
    int flags;
    char if_none_match [TL_FETCH_MAX_VALIDATOR_LEN + 1];
    char if_modified_since [TL_FETCH_MAX_VALIDATOR_LEN + 1];
    //  The last reply
    long status;
    char *body;
    size_t size, room;
    bool too_big;
    char etag [TL_FETCH_MAX_VALIDATOR_LEN + 1];
    char last_modified [TL_FETCH_MAX_VALIDATOR_LEN + 1];
    //  A streamed GET (tl_fetch_stream): the sink of a 2xx body, the
    //  bytes seen, and the sink's code when it stopped the transfer
    tl_fetch_sink_fn *sink;
    void *sink_arg;
    void *curl;
    int streaming;              //  -1 not yet known, 0 kept, 1 to the sink
    size_t seen;
    int sink_rc;
};


//  --------------------------------------------------------------------------
//  The guard

bool
tl_fetch_private_ipv4 (uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127
        || (a & 0xffc00000) == 0x64400000       //  100.64.0.0/10
        || (a & 0xffff0000) == 0xa9fe0000       //  169.254.0.0/16
        || (a & 0xfff00000) == 0xac100000       //  172.16.0.0/12
        || (a & 0xffffff00) == 0xc0000000       //  192.0.0.0/24
        || (a & 0xffffff00) == 0xc0000200       //  192.0.2.0/24
        || (a & 0xffff0000) == 0xc0a80000       //  192.168.0.0/16
        || (a & 0xfffe0000) == 0xc6120000       //  198.18.0.0/15
        || (a & 0xffffff00) == 0xc6336400       //  198.51.100.0/24
        || (a & 0xffffff00) == 0xcb007100       //  203.0.113.0/24
        || (a >> 28) >= 0xe;                    //  224/4, 240/4
}

bool
tl_fetch_private_ipv6 (const unsigned char *b)
{
    static const unsigned char zeros [12] = { 0 };
    static const unsigned char mapped [12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char nat64 [12] = { 0, 0x64, 0xff, 0x9b };
    if (memcmp (b, zeros, 12) == 0 || memcmp (b, mapped, 12) == 0
    ||  memcmp (b, nat64, 12) == 0) {
        uint32_t v4 = ((uint32_t) b [12] << 24) | ((uint32_t) b [13] << 16)
                    | ((uint32_t) b [14] << 8) | b [15];
        return tl_fetch_private_ipv4 (v4);      //  also ::, ::1
    }
    return (b [0] & 0xfe) == 0xfc                           //  fc00::/7
        || (b [0] == 0xfe && (b [1] & 0xc0) == 0x80)        //  fe80::/10
        || (b [0] == 0xfe && (b [1] & 0xc0) == 0xc0)        //  fec0::/10
        ||  b [0] == 0xff                                   //  multicast
        || (b [0] == 0x20 && b [1] == 0x01 && b [2] == 0x0d && b [3] == 0xb8)
        || (b [0] == 0x01 && b [1] == 0x00 && !b [2] && !b [3]
            && !b [4] && !b [5] && !b [6] && !b [7]);      //  100::/64
}

//  curl open-socket callback: refuses private addresses unless allowed.

static curl_socket_t
s_open_socket (void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
    (void) purpose;
    tl_fetch_guard_t *guard = (tl_fetch_guard_t *) arg;
    if (!(guard->flags & TL_FETCH_ALLOW_PRIVATE)) {
        bool private_address = true;
        if (address->family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *) &address->addr;
            private_address = tl_fetch_private_ipv4 (ntohl (in->sin_addr.s_addr));
        }
        else
        if (address->family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &address->addr;
            private_address = tl_fetch_private_ipv6 (in6->sin6_addr.s6_addr);
        }
        if (private_address) {
            guard->blocked = true;
            return CURL_SOCKET_BAD;
        }
    }
    return socket (address->family, address->socktype, address->protocol);
}

int
tl_fetch_guard_install (void *handle, tl_fetch_guard_t *guard)
{
    CURL *curl = (CURL *) handle;
    guard->blocked = false;
    CURLcode code = curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (code == CURLE_OK)
        code = curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (code == CURLE_OK)
        code = curl_easy_setopt (curl, CURLOPT_PROXY, "");     //  ignore http_proxy & co.
    if (code == CURLE_OK)
        code = curl_easy_setopt (curl, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
    if (code == CURLE_OK)
        code = curl_easy_setopt (curl, CURLOPT_OPENSOCKETDATA, guard);
    return code == CURLE_OK ? 0 : TL_ECONFIG;
}


//  --------------------------------------------------------------------------
//  A GET

tl_fetch_t *
tl_fetch_new (const char *url)
{
    if (!tl_valid_http_url (url))
        return NULL;
    tl_fetch_t *self = (tl_fetch_t *) calloc (1, sizeof (tl_fetch_t));
    if (self)
        self->url = strdup (url);
    if (!self || !self->url) {
        free (self);
        return NULL;
    }
    self->timeout_ms = TL_FETCH_TIMEOUT_MS_DEFAULT;
    self->max_size = TL_FETCH_MAX_BODY_DEFAULT;
    return self;
}

void
tl_fetch_destroy (tl_fetch_t **self_p)
{
    if (self_p && *self_p) {
        tl_fetch_t *self = *self_p;
        free (self->url);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

int
tl_fetch_set_timeout_ms (tl_fetch_t *self, long timeout_ms)
{
    if (timeout_ms < 1 || timeout_ms > TL_FETCH_MAX_TIMEOUT_MS)
        return TL_EINVAL;
    self->timeout_ms = timeout_ms;
    return 0;
}

int
tl_fetch_set_max_size (tl_fetch_t *self, size_t max_size)
{
    if (max_size == 0 || max_size > TL_FETCH_MAX_STREAM)
        return TL_EINVAL;
    self->max_size = max_size;
    return 0;
}

void
tl_fetch_set_flags (tl_fetch_t *self, int flags)
{
    self->flags = flags;
}

//  Copies a validator into `out` when it is NULL (cleared) or printable
//  ASCII of at most TL_FETCH_MAX_VALIDATOR_LEN bytes. Returns 0 or TL_EINVAL.

static int
s_set_validator (char out [TL_FETCH_MAX_VALIDATOR_LEN + 1], const char *value)
{
    if (!value) {
        out [0] = 0;
        return 0;
    }
    size_t len = strnlen (value, TL_FETCH_MAX_VALIDATOR_LEN + 1);
    if (len == 0 || len > TL_FETCH_MAX_VALIDATOR_LEN)
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++)
        if (value [i] < 0x20 || value [i] > 0x7e)
            return TL_EINVAL;
    memcpy (out, value, len + 1);
    return 0;
}

int
tl_fetch_set_if_none_match (tl_fetch_t *self, const char *etag)
{
    return s_set_validator (self->if_none_match, etag);
}

int
tl_fetch_set_if_modified_since (tl_fetch_t *self, const char *http_date)
{
    return s_set_validator (self->if_modified_since, http_date);
}

//  Appends `bytes` to the kept body; 0 past the cap (too_big) or when
//  memory runs out, else `bytes`.

static size_t
s_keep (tl_fetch_t *self, const char *data, size_t bytes)
{
    size_t cap = self->max_size < (size_t) TL_FETCH_MAX_KEPT
               ? self->max_size : (size_t) TL_FETCH_MAX_KEPT;
    if (bytes > cap - self->size) {
        self->too_big = true;
        return 0;                   //  curl stops with CURLE_WRITE_ERROR
    }
    if (self->size + bytes + 1 > self->room) {
        size_t room = self->room ? self->room : 4096;
        while (room < self->size + bytes + 1)
            room *= 2;
        char *body = (char *) realloc (self->body, room);
        if (!body)
            return 0;
        self->body = body;
        self->room = room;
    }
    memcpy (self->body + self->size, data, bytes);
    self->size += bytes;
    self->body [self->size] = 0;
    return bytes;
}

//  curl write callback: keeps the body, hangs up past the cap. A streamed
//  GET hands a 2xx body to the sink instead, and keeps only the first
//  TL_FETCH_STREAM_KEEP bytes of any other (the rest is read and dropped).

static size_t
s_write (char *data, size_t size, size_t count, void *arg)
{
    tl_fetch_t *self = (tl_fetch_t *) arg;
    size_t bytes = size * count;
    if (!self->sink)
        return s_keep (self, data, bytes);
    if (bytes > self->max_size - self->seen) {
        self->too_big = true;
        return 0;
    }
    self->seen += bytes;
    if (self->streaming < 0) {
        long status = 0;
        curl_easy_getinfo ((CURL *) self->curl, CURLINFO_RESPONSE_CODE, &status);
        self->streaming = status >= 200 && status < 300;
    }
    if (self->streaming) {
        int rc = self->sink (self->sink_arg, data, bytes);
        if (rc)
            self->sink_rc = rc;
        return rc ? 0 : bytes;
    }
    size_t kept = self->size < TL_FETCH_STREAM_KEEP ? TL_FETCH_STREAM_KEEP - self->size : 0;
    if (kept > bytes)
        kept = bytes;
    return kept && s_keep (self, data, kept) != kept ? 0 : bytes;
}

//  curl header callback: keeps ETag and Last-Modified.

static size_t
s_header (char *data, size_t size, size_t count, void *arg)
{
    tl_fetch_t *self = (tl_fetch_t *) arg;
    size_t bytes = size * count;
    struct { const char *name; char *out; } wanted [] = {
        { "etag:", self->etag }, { "last-modified:", self->last_modified }
    };
    for (size_t i = 0; i < 2; i++) {
        size_t name_len = strlen (wanted [i].name);
        if (bytes <= name_len || strncasecmp (data, wanted [i].name, name_len) != 0)
            continue;
        const char *value = data + name_len;
        size_t len = bytes - name_len;
        while (len && (*value == ' ' || *value == '\t'))
            value++, len--;
        while (len && (value [len - 1] == '\r' || value [len - 1] == '\n'
                       || value [len - 1] == ' '))
            len--;
        if (len <= TL_FETCH_MAX_VALIDATOR_LEN) {
            memcpy (wanted [i].out, value, len);
            wanted [i].out [len] = 0;
        }
    }
    return bytes;
}

int
tl_fetch_curl_code (int code)
{
    switch ((CURLcode) code) {
        case CURLE_OK:
            return 0;
        case CURLE_OUT_OF_MEMORY:
            return TL_ENOMEM;
        case CURLE_OPERATION_TIMEDOUT:
            return TL_ETIMEDOUT;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_TOO_MANY_REDIRECTS:
            return TL_EINVAL;
        default:
            return TL_EIO;          //  refused or lost connections, DNS, TLS
    }
}

//  Sets the options of one GET on `curl`. Returns 0 or TL_ECONFIG.

static int
s_setup (tl_fetch_t *self, CURL *curl, tl_fetch_guard_t *guard,
         struct curl_slist *headers, char *curl_error)
{
    if (tl_fetch_guard_install (curl, guard))
        return TL_ECONFIG;
    CURLcode code = CURLE_OK;
    #define S_SETOPT(option, value) \
        if (code == CURLE_OK) code = curl_easy_setopt (curl, option, value)
    S_SETOPT (CURLOPT_URL, self->url);
    S_SETOPT (CURLOPT_HTTPGET, 1L);
    S_SETOPT (CURLOPT_HTTPHEADER, headers);
    S_SETOPT (CURLOPT_USERAGENT, "tally/1");
    S_SETOPT (CURLOPT_TIMEOUT_MS, self->timeout_ms);
    S_SETOPT (CURLOPT_CONNECTTIMEOUT_MS, self->timeout_ms);
    S_SETOPT (CURLOPT_NOSIGNAL, 1L);
    S_SETOPT (CURLOPT_ACCEPT_ENCODING, "");
    S_SETOPT (CURLOPT_WRITEFUNCTION, s_write);
    S_SETOPT (CURLOPT_WRITEDATA, self);
    S_SETOPT (CURLOPT_HEADERFUNCTION, s_header);
    S_SETOPT (CURLOPT_HEADERDATA, self);
    S_SETOPT (CURLOPT_ERRORBUFFER, curl_error);
    #undef S_SETOPT
    return code == CURLE_OK ? 0 : TL_ECONFIG;
}

//  The conditional headers, or NULL with *rc set when memory ran out.

static struct curl_slist *
s_headers (tl_fetch_t *self, int *rc)
{
    struct curl_slist *headers = NULL;
    char line [TL_FETCH_MAX_VALIDATOR_LEN + 32];
    *rc = 0;
    if (*self->if_none_match) {
        snprintf (line, sizeof line, "If-None-Match: %s", self->if_none_match);
        headers = curl_slist_append (headers, line);
        if (!headers)
            *rc = TL_ENOMEM;
    }
    if (*self->if_modified_since && *rc == 0) {
        snprintf (line, sizeof line, "If-Modified-Since: %s", self->if_modified_since);
        struct curl_slist *list = curl_slist_append (headers, line);
        if (!list) {
            curl_slist_free_all (headers);
            headers = NULL;
            *rc = TL_ENOMEM;
        }
        else
            headers = list;
    }
    return headers;
}

int
tl_fetch_get (tl_fetch_t *self, char *errbuf, size_t errsize)
{
    return tl_fetch_stream (self, NULL, NULL, errbuf, errsize);
}

int
tl_fetch_stream (tl_fetch_t *self, tl_fetch_sink_fn *sink, void *arg,
                 char *errbuf, size_t errsize)
{
    if (errbuf && errsize)
        errbuf [0] = 0;
    self->sink = sink;
    self->sink_arg = arg;
    self->streaming = -1;
    self->seen = 0;
    self->sink_rc = 0;
    self->status = 0;
    self->size = 0;
    self->too_big = false;
    self->etag [0] = self->last_modified [0] = 0;
    if (self->body)
        self->body [0] = 0;
    int rc;
    struct curl_slist *headers = s_headers (self, &rc);
    CURL *curl = rc ? NULL : curl_easy_init ();
    if (!curl) {
        curl_slist_free_all (headers);
        return TL_ENOMEM;
    }
    tl_fetch_guard_t guard = { .flags = self->flags };
    char curl_error [CURL_ERROR_SIZE] = "";
    self->curl = curl;
    rc = s_setup (self, curl, &guard, headers, curl_error);
    CURLcode code = rc ? CURLE_OK : curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &self->status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    self->curl = NULL;
    self->sink = NULL;
    if (self->sink_rc) {
        tl_error_format (errbuf, errsize, "the reader stopped the transfer: %s",
                         tl_strerror (self->sink_rc));
        return self->sink_rc;
    }
    if (rc) {
        tl_error_format (errbuf, errsize, "curl refused an option");
        return rc;
    }
    if (guard.blocked && code != CURLE_OK) {
        tl_error_format (errbuf, errsize, "the host resolves to a private address");
        return TL_EINVAL;
    }
    if (self->too_big) {
        tl_error_format (errbuf, errsize, "the reply is longer than %zu bytes", self->max_size);
        return TL_ETOOBIG;
    }
    if (code == CURLE_WRITE_ERROR)
        return TL_ENOMEM;
    rc = tl_fetch_curl_code (code);
    if (rc)
        tl_error_format (errbuf, errsize, "%s", *curl_error ? curl_error
                                                            : curl_easy_strerror (code));
    return rc;
}

long
tl_fetch_status (tl_fetch_t *self)
{
    return self->status;
}

const char *
tl_fetch_body (tl_fetch_t *self, size_t *size)
{
    if (size)
        *size = self->size;
    return self->body ? self->body : "";
}

const char *
tl_fetch_etag (tl_fetch_t *self)
{
    return self->etag;
}

const char *
tl_fetch_last_modified (tl_fetch_t *self)
{
    return self->last_modified;
}


//  --------------------------------------------------------------------------
//  Self-test

//  The test server: answers each connection by the path of its request.
//  /ok: 200 "hello" with an ETag and Last-Modified; /cond: 304 when the
//  request carries If-None-Match: "v1", else 200; /big: 200 with 5000
//  bytes; /slow: 200 after 1.5 s; /moved: 302 to /ok.
typedef struct {
    int listener;
    int port;
    int requests;
    bool saw_if_modified_since;
} s_server_t;

static void
s_server_answer (s_server_t *server, int fd)
{
    char request [4096];
    size_t got = 0;
    while (got < sizeof request - 1) {
        ssize_t n = recv (fd, request + got, sizeof request - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t) n;
        request [got] = 0;
        if (strstr (request, "\r\n\r\n"))
            break;
    }
    request [got] = 0;
    server->requests++;
    if (strstr (request, "If-Modified-Since: Sat, 01 Jan 2022"))
        server->saw_if_modified_since = true;
    char reply [8192];
    int len = 0;
    if (strncmp (request, "GET /ok ", 8) == 0)
        len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\n"
                        "Last-Modified: Sat, 01 Jan 2022 00:00:00 GMT\r\n"
                        "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
    else
    if (strncmp (request, "GET /cond ", 10) == 0 && strstr (request, "If-None-Match: \"v1\""))
        len = snprintf (reply, sizeof reply, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                        "Connection: close\r\n\r\n");
    else
    if (strncmp (request, "GET /big ", 9) == 0) {
        len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n"
                        "Connection: close\r\n\r\n");
        memset (reply + len, 'x', 5000);
        len += 5000;
    }
    else
    if (strncmp (request, "GET /slow ", 10) == 0) {
        usleep (1500 * 1000);
        len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                        "Connection: close\r\n\r\nok");
    }
    else
    if (strncmp (request, "GET /stream ", 12) == 0) {
        //  200 with 60 000 bytes, sent in pieces: the sink sees them all
        len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n"
                        "ETag: \"s1\"\r\nConnection: close\r\n\r\n");
        ssize_t sent = send (fd, reply, (size_t) len, MSG_NOSIGNAL);
        memset (reply, 'y', 6000);
        for (int i = 0; i < 10 && sent > 0; i++)
            sent = send (fd, reply, 6000, MSG_NOSIGNAL);
        return;
    }
    else
    if (strncmp (request, "GET /gone ", 10) == 0)
        len = snprintf (reply, sizeof reply, "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n"
                        "Connection: close\r\n\r\nnope");
    else
    if (strncmp (request, "GET /moved ", 11) == 0)
        len = snprintf (reply, sizeof reply, "HTTP/1.1 302 Found\r\nLocation: /ok\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n");
    else
        len = snprintf (reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
                        "Connection: close\r\n\r\nelse");
    ssize_t sent = send (fd, reply, (size_t) len, MSG_NOSIGNAL);
    (void) sent;
}

static void *
s_server_run (void *arg)
{
    s_server_t *server = (s_server_t *) arg;
    while (true) {
        int fd = accept (server->listener, NULL, NULL);
        if (fd < 0)
            break;
        s_server_answer (server, fd);
        close (fd);
    }
    return NULL;
}

static void
s_test_guard_ranges (void)
{
    const char *inside [] = { "0.0.0.0", "10.1.2.3", "127.0.0.1", "127.8.9.1",
        "100.64.0.1", "169.254.169.254", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "192.0.2.7", "198.18.0.1", "224.0.0.1", "255.255.255.255",
        "::", "::1", "fe80::1", "fd00::1", "fc00::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "::127.0.0.1" };
    const char *outside [] = { "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255",
        "100.128.0.1", "193.0.2.1", "2606:4700::1111", "2001:4860:4860::8888",
        "::ffff:8.8.8.8", "64:ff9b::808:808" };
    for (size_t i = 0; i < sizeof inside / sizeof inside [0] + sizeof outside / sizeof outside [0]; i++) {
        bool want = i < sizeof inside / sizeof inside [0];
        const char *text = want ? inside [i] : outside [i - sizeof inside / sizeof inside [0]];
        unsigned char bytes [16];
        bool is_private;
        if (inet_pton (AF_INET, text, bytes) == 1)
            is_private = tl_fetch_private_ipv4 (((uint32_t) bytes [0] << 24)
                | ((uint32_t) bytes [1] << 16) | ((uint32_t) bytes [2] << 8) | bytes [3]);
        else {
            assert (inet_pton (AF_INET6, text, bytes) == 1);
            is_private = tl_fetch_private_ipv6 (bytes);
        }
        assert (is_private == want);
    }
}

static void
s_test_settings (void)
{
    assert (tl_fetch_new ("ftp://example.com/") == NULL);
    assert (tl_fetch_new ("example.com") == NULL);
    assert (tl_fetch_new (NULL) == NULL);
    tl_fetch_t *fetch = tl_fetch_new ("http://example.com/x");
    assert (fetch);
    assert (tl_fetch_set_timeout_ms (fetch, 0) == TL_EINVAL);
    assert (tl_fetch_set_timeout_ms (fetch, TL_FETCH_MAX_TIMEOUT_MS + 1) == TL_EINVAL);
    assert (tl_fetch_set_max_size (fetch, 0) == TL_EINVAL);
    assert (tl_fetch_set_if_none_match (fetch, "\"a\"\r\nX-Evil: 1") == TL_EINVAL);
    assert (tl_fetch_set_if_none_match (fetch, "") == TL_EINVAL);
    assert (tl_fetch_set_if_none_match (fetch, NULL) == 0);
    assert (tl_fetch_status (fetch) == 0);
    assert (strcmp (tl_fetch_body (fetch, NULL), "") == 0);
    tl_fetch_destroy (&fetch);
    tl_fetch_destroy (&fetch);
    assert (fetch == NULL);
}

//  GETs `path` of the test server with `flags`; returns the fetch (the
//  caller's) and the code in *rc.
static tl_fetch_t *
s_test_get (s_server_t *server, const char *host, const char *path, int flags, int *rc,
            char *errbuf, size_t errsize)
{
    char url [128];
    snprintf (url, sizeof url, "http://%s:%d%s", host, server->port, path);
    tl_fetch_t *fetch = tl_fetch_new (url);
    assert (fetch);
    tl_fetch_set_flags (fetch, flags);
    assert (tl_fetch_set_timeout_ms (fetch, 700) == 0);
    *rc = tl_fetch_get (fetch, errbuf, errsize);
    return fetch;
}

//  Private addresses are refused unless allowed, by IP and by name:
//  nothing reaches the server.
static void
s_test_private_refused (s_server_t *server)
{
    char errbuf [256];
    int rc;
    tl_fetch_t *fetch = s_test_get (server, "127.0.0.1", "/ok", 0, &rc, errbuf, sizeof errbuf);
    assert (rc == TL_EINVAL && strstr (errbuf, "private"));
    tl_fetch_destroy (&fetch);
    fetch = s_test_get (server, "localhost", "/ok", 0, &rc, errbuf, sizeof errbuf);
    assert (rc == TL_EINVAL);
    tl_fetch_destroy (&fetch);
    assert (server->requests == 0);
}

//  200 with body, ETag and Last-Modified; a conditional GET sends the
//  validators.
static void
s_test_ok_and_conditional (s_server_t *server)
{
    char errbuf [256];
    int rc;
    size_t size;
    tl_fetch_t *fetch = s_test_get (server, "127.0.0.1", "/ok", TL_FETCH_ALLOW_PRIVATE, &rc,
                                    errbuf, sizeof errbuf);
    assert (rc == 0 && tl_fetch_status (fetch) == 200);
    assert (strcmp (tl_fetch_body (fetch, &size), "hello") == 0 && size == 5);
    assert (strcmp (tl_fetch_etag (fetch), "\"v1\"") == 0);
    assert (strcmp (tl_fetch_last_modified (fetch), "Sat, 01 Jan 2022 00:00:00 GMT") == 0);
    tl_fetch_destroy (&fetch);
    fetch = s_test_get (server, "127.0.0.1", "/cond", TL_FETCH_ALLOW_PRIVATE, &rc,
                        errbuf, sizeof errbuf);
    assert (rc == 0 && tl_fetch_status (fetch) == 200);
    assert (tl_fetch_set_if_none_match (fetch, "\"v1\"") == 0);
    assert (tl_fetch_set_if_modified_since (fetch, "Sat, 01 Jan 2022 00:00:00 GMT") == 0);
    assert (tl_fetch_get (fetch, errbuf, sizeof errbuf) == 0);
    assert (tl_fetch_status (fetch) == 304 && server->saw_if_modified_since);
    tl_fetch_destroy (&fetch);
}

//  The size cap, a redirect not followed, the timeout.
static void
s_test_bounds (s_server_t *server, bool verbose)
{
    char errbuf [256];
    int rc;
    tl_fetch_t *fetch = s_test_get (server, "127.0.0.1", "/big", TL_FETCH_ALLOW_PRIVATE, &rc,
                                    errbuf, sizeof errbuf);
    assert (rc == 0 && tl_fetch_status (fetch) == 200);
    assert (tl_fetch_set_max_size (fetch, 4999) == 0);
    assert (tl_fetch_get (fetch, errbuf, sizeof errbuf) == TL_ETOOBIG);
    tl_fetch_destroy (&fetch);
    int before = server->requests;
    fetch = s_test_get (server, "127.0.0.1", "/moved", TL_FETCH_ALLOW_PRIVATE, &rc,
                        errbuf, sizeof errbuf);
    assert (rc == 0 && tl_fetch_status (fetch) == 302 && server->requests == before + 1);
    tl_fetch_destroy (&fetch);
    fetch = s_test_get (server, "127.0.0.1", "/slow", TL_FETCH_ALLOW_PRIVATE, &rc,
                        errbuf, sizeof errbuf);
    if (verbose)
        printf ("\n  slow: %s [%s]", tl_strerror (rc), errbuf);
    assert (rc == TL_ETIMEDOUT);
    tl_fetch_destroy (&fetch);
}

//  A sink for the self-test: counts bytes and calls, checks they are the
//  body's, and stops after `stop_after` bytes when set.
typedef struct {
    size_t bytes, calls, stop_after;
    bool other;
} s_sink_t;

static int
s_test_sink (void *arg, const char *data, size_t size)
{
    s_sink_t *sink = (s_sink_t *) arg;
    for (size_t i = 0; i < size; i++)
        sink->other |= data [i] != 'y' && data [i] != 'x' && data [i] != 'h';
    sink->bytes += size;
    sink->calls++;
    return sink->stop_after && sink->bytes >= sink->stop_after ? TL_EPROTO : 0;
}

//  Streamed GETs: a 2xx body goes to the sink whole and is not kept; a
//  304 or 404 reaches no sink and keeps its body; the cap counts the
//  streamed bytes; a sink's code stops the transfer and is returned.
static void
s_test_stream (s_server_t *server)
{
    char errbuf [256];
    char url [128];
    size_t size;
    snprintf (url, sizeof url, "http://127.0.0.1:%d/stream", server->port);
    tl_fetch_t *fetch = tl_fetch_new (url);
    assert (fetch);
    tl_fetch_set_flags (fetch, TL_FETCH_ALLOW_PRIVATE);
    assert (tl_fetch_set_max_size (fetch, TL_FETCH_MAX_STREAM) == 0);
    assert (tl_fetch_set_max_size (fetch, TL_FETCH_MAX_STREAM + 1) == TL_EINVAL);
    s_sink_t sink = { 0 };
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == 0);
    assert (tl_fetch_status (fetch) == 200 && sink.bytes == 60000 && !sink.other);
    assert (tl_fetch_body (fetch, &size) [0] == 0 && size == 0);
    assert (strcmp (tl_fetch_etag (fetch), "\"s1\"") == 0);
    //  The cap counts streamed bytes
    sink = (s_sink_t) { 0 };
    assert (tl_fetch_set_max_size (fetch, 59999) == 0);
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == TL_ETOOBIG);
    assert (sink.bytes < 60000);
    //  The sink stops it
    sink = (s_sink_t) { .stop_after = 1 };
    assert (tl_fetch_set_max_size (fetch, 100000) == 0);
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == TL_EPROTO);
    assert (sink.calls == 1 && strstr (errbuf, "stopped"));
    //  A plain GET after a streamed one keeps its body again
    assert (tl_fetch_get (fetch, errbuf, sizeof errbuf) == 0);
    assert (tl_fetch_body (fetch, &size) [0] == 'y' && size == 60000);
    tl_fetch_destroy (&fetch);

    //  304 to a conditional streamed GET: no sink call
    snprintf (url, sizeof url, "http://127.0.0.1:%d/cond", server->port);
    fetch = tl_fetch_new (url);
    tl_fetch_set_flags (fetch, TL_FETCH_ALLOW_PRIVATE);
    assert (tl_fetch_set_if_none_match (fetch, "\"v1\"") == 0);
    sink = (s_sink_t) { 0 };
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == 0);
    assert (tl_fetch_status (fetch) == 304 && sink.calls == 0);
    tl_fetch_destroy (&fetch);

    //  404: its body kept, not streamed
    snprintf (url, sizeof url, "http://127.0.0.1:%d/gone", server->port);
    fetch = tl_fetch_new (url);
    tl_fetch_set_flags (fetch, TL_FETCH_ALLOW_PRIVATE);
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == 0);
    assert (tl_fetch_status (fetch) == 404 && sink.calls == 0);
    assert (strcmp (tl_fetch_body (fetch, &size), "nope") == 0 && size == 4);
    tl_fetch_destroy (&fetch);

    //  A private address is refused to a streamed GET too
    snprintf (url, sizeof url, "http://127.0.0.1:%d/stream", server->port);
    fetch = tl_fetch_new (url);
    int before = server->requests;
    assert (tl_fetch_stream (fetch, s_test_sink, &sink, errbuf, sizeof errbuf) == TL_EINVAL);
    assert (server->requests == before && sink.calls == 0);
    tl_fetch_destroy (&fetch);
}

void
tl_fetch_test (bool verbose)
{
    assert (curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK);
    s_test_guard_ranges ();
    s_test_settings ();

    s_server_t server = { 0 };
    server.listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (server.listener >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (server.listener, (struct sockaddr *) &addr, sizeof addr) == 0);
    socklen_t addr_len = sizeof addr;
    assert (getsockname (server.listener, (struct sockaddr *) &addr, &addr_len) == 0);
    server.port = ntohs (addr.sin_port);
    assert (listen (server.listener, 16) == 0);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_server_run, &server) == 0);
    s_test_private_refused (&server);
    s_test_ok_and_conditional (&server);
    s_test_bounds (&server, verbose);
    s_test_stream (&server);
    shutdown (server.listener, SHUT_RDWR);
    close (server.listener);
    pthread_join (thread, NULL);

    //  A closed port: the connection is refused
    char errbuf [256];
    int rc;
    tl_fetch_t *fetch = s_test_get (&server, "127.0.0.1", "/ok", TL_FETCH_ALLOW_PRIVATE, &rc,
                                    errbuf, sizeof errbuf);
    assert (rc == TL_EIO);
    tl_fetch_destroy (&fetch);
    curl_global_cleanup ();
}
