//  mail_webhook.c — one JSON POST to a user's webhook (see mail_webhook.h).
//  The private-address guard, the protocols and the redirect and proxy
//  policy are the platform's outbound guard (tl_fetch_guard_install).
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <jansson.h>

#include "mail_webhook.h"
#include "tl_valid.h"
#include "mail_limits.h"
#include "tl_error.h"
#include "tl_fetch.h"

//  What one POST saw.
typedef struct {
    bool reply_too_big;             //  we hung up on a long reply
    size_t reply_size;
    char quote [MAIL_WEBHOOK_MAX_REPLY_QUOTE + 1];
} s_post_t;


//  curl write callback: keeps the start of the reply, hangs up on a long one.

static size_t
s_write (char *data, size_t size, size_t count, void *arg)
{
    s_post_t *post = (s_post_t *) arg;
    size_t bytes = size * count;
    if (post->reply_size < MAIL_WEBHOOK_MAX_REPLY_QUOTE) {
        size_t room = MAIL_WEBHOOK_MAX_REPLY_QUOTE - post->reply_size;
        size_t keep = bytes < room? bytes: room;
        memcpy (post->quote + post->reply_size, data, keep);
        post->quote [post->reply_size + keep] = 0;
    }
    post->reply_size += bytes;
    if (post->reply_size > MAIL_WEBHOOK_MAX_REPLY) {
        post->reply_too_big = true;
        return 0;                   //  curl stops with CURLE_WRITE_ERROR
    }
    return bytes;
}


//  --------------------------------------------------------------------------
//  Checks a webhook URL.

int
mail_webhook_check_url (const char *url)
{
    return tl_valid_http_url (url) ? 0 : TL_EINVAL;
}


//  Maps an HTTP status to a Tally code.

static int
s_classify_status (long status)
{
    if (status >= 200 && status <= 299)
        return 0;
    if (status >= 500 && status <= 599)
        return TL_ERETRY;
    if (status == 408 || status == 425 || status == 429)
        return TL_ERETRY;           //  timeout, too early, too many requests
    return TL_EINVAL;               //  other 4xx, 3xx not followed, 1xx
}


//  Maps curl's result to a Tally code when no HTTP status decides: what
//  tl_fetch calls a timeout or a connection's failure is worth a retry.

static int
s_classify_curl (CURLcode code)
{
    int rc = tl_fetch_curl_code (code);
    return rc == TL_ETIMEDOUT || rc == TL_EIO ? TL_ERETRY : rc;
}


//  --------------------------------------------------------------------------
//  POSTs one JSON body.

int
mail_webhook_post (const char *url, const char *json, size_t size,
                   const char *idempotency_key, int flags,
                   char *errbuf, size_t errsize)
{
    if (errbuf && errsize)
        errbuf [0] = 0;
    int rc = mail_webhook_check_url (url);
    if (rc) {
        tl_error_format (errbuf, errsize, "webhook URL must be http(s) with a host");
        return rc;
    }
    if (!tl_valid_idempotency_key (idempotency_key)) {
        tl_error_format (errbuf, errsize, "bad Idempotency-Key");
        return TL_EINVAL;
    }
    if (!json || size == 0 || size > MAIL_WEBHOOK_MAX_BODY) {
        tl_error_format (errbuf, errsize, "webhook body size out of bounds");
        return TL_EINVAL;
    }
    json_error_t error;
    json_t *parsed = json_loadb (json, size, 0, &error);
    if (!parsed) {
        tl_error_format (errbuf, errsize, "webhook body is not JSON: %s", error.text);
        return TL_EINVAL;
    }
    json_decref (parsed);

    CURL *curl = curl_easy_init ();
    if (!curl)
        return TL_ENOMEM;
    char key_header [sizeof ("Idempotency-Key: ") + TL_MAX_IDEM_KEY_LEN];
    snprintf (key_header, sizeof key_header, "Idempotency-Key: %s", idempotency_key);
    struct curl_slist *headers = NULL;
    const char *lines [] = {
        "Content-Type: application/json", key_header,
        "Expect:",                  //  no 100-continue round trip
        NULL
    };
    for (const char **line = lines; *line; line++) {
        struct curl_slist *list = curl_slist_append (headers, *line);
        if (!list) {
            curl_slist_free_all (headers);
            curl_easy_cleanup (curl);
            return TL_ENOMEM;
        }
        headers = list;
    }
    s_post_t post = { 0 };
    tl_fetch_guard_t guard = {
        .flags = (flags & MAIL_WEBHOOK_ALLOW_PRIVATE) ? TL_FETCH_ALLOW_PRIVATE : 0
    };
    char curl_error [CURL_ERROR_SIZE] = "";
    CURLcode code = tl_fetch_guard_install (curl, &guard) ? CURLE_FAILED_INIT : CURLE_OK;
    #define S_SETOPT(option, value) \
        if (code == CURLE_OK) code = curl_easy_setopt (curl, option, value)
    S_SETOPT (CURLOPT_URL, url);
    S_SETOPT (CURLOPT_POST, 1L);
    S_SETOPT (CURLOPT_POSTFIELDS, json);
    S_SETOPT (CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) size);
    S_SETOPT (CURLOPT_HTTPHEADER, headers);
    S_SETOPT (CURLOPT_USERAGENT, "tally-mailer/1");
    S_SETOPT (CURLOPT_CONNECTTIMEOUT, (long) MAIL_WEBHOOK_CONNECT_TIMEOUT_SEC);
    S_SETOPT (CURLOPT_TIMEOUT, (long) MAIL_WEBHOOK_TIMEOUT_SEC);
    S_SETOPT (CURLOPT_NOSIGNAL, 1L);
    S_SETOPT (CURLOPT_WRITEFUNCTION, s_write);
    S_SETOPT (CURLOPT_WRITEDATA, &post);
    S_SETOPT (CURLOPT_ERRORBUFFER, curl_error);
    #undef S_SETOPT
    if (code != CURLE_OK) {
        tl_error_format (errbuf, errsize, "curl_easy_setopt: %s", curl_easy_strerror (code));
        curl_slist_free_all (headers);
        curl_easy_cleanup (curl);
        return TL_ECONFIG;
    }
    code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);

    if (guard.blocked && code != CURLE_OK) {
        tl_error_format (errbuf, errsize, "webhook host resolves to a private address");
        return TL_EINVAL;
    }
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && post.reply_too_big)) {
        rc = s_classify_status (status);
        if (rc)
            tl_error_format (errbuf, errsize, "webhook answered HTTP %ld: %s",
                             status, post.quote);
        return rc;
    }
    rc = s_classify_curl (code);
    tl_error_format (errbuf, errsize, "webhook: %s",
                     *curl_error? curl_error: curl_easy_strerror (code));
    return rc;
}


//  --------------------------------------------------------------------------
//  Self-test

//  The HTTP server: answers POST /status/NNN with NNN (a Location for 3xx)
//  and a small JSON body; writes each request to req-N as method, path,
//  Content-Type, Idempotency-Key, Expect, one per line, then the body.
static const char *s_test_server =
    "import http.server, os, sys\n"
    "folder = sys.argv[1]\n"
    "count = 0\n"
    "def put(name, data):\n"
    "    path = os.path.join(folder, name)\n"
    "    with open(path + '.tmp', 'wb') as f:\n"
    "        f.write(data)\n"
    "    os.rename(path + '.tmp', path)\n"
    "class Handler(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def do_POST(self):\n"
    "        global count\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
    "        count += 1\n"
    "        head = [self.command, self.path, self.headers.get('Content-Type', ''),\n"
    "                self.headers.get('Idempotency-Key', ''), self.headers.get('Expect', '')]\n"
    "        put('req-%d' % count, ('\\n'.join(head) + '\\n').encode() + body)\n"
    "        status = int(self.path.rsplit('/', 1)[1])\n"
    "        reply = b'{\"answer\": %d}' % status\n"
    "        self.send_response(status)\n"
    "        if 300 <= status < 400:\n"
    "            self.send_header('Location', '/status/200')\n"
    "        self.send_header('Content-Type', 'application/json')\n"
    "        self.send_header('Content-Length', str(len(reply)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(reply)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "server = http.server.HTTPServer(('127.0.0.1', 0), Handler)\n"
    "put('port', str(server.server_address[1]).encode())\n"
    "server.serve_forever()\n";

#include "mail_testsrv.h"

void
mail_webhook_test (bool verbose)
{
    assert (curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK);

    //  (Which addresses count as private: tl_fetch_test.)

    //  Statuses and curl results.
    assert (s_classify_status (200) == 0);
    assert (s_classify_status (204) == 0);
    assert (s_classify_status (500) == TL_ERETRY);
    assert (s_classify_status (503) == TL_ERETRY);
    assert (s_classify_status (429) == TL_ERETRY);
    assert (s_classify_status (400) == TL_EINVAL);
    assert (s_classify_status (404) == TL_EINVAL);
    assert (s_classify_status (301) == TL_EINVAL);
    assert (s_classify_curl (CURLE_OPERATION_TIMEDOUT) == TL_ERETRY);
    assert (s_classify_curl (CURLE_COULDNT_CONNECT) == TL_ERETRY);
    assert (s_classify_curl (CURLE_COULDNT_RESOLVE_HOST) == TL_ERETRY);
    assert (s_classify_curl (CURLE_UNSUPPORTED_PROTOCOL) == TL_EINVAL);

    //  URLs, keys and bodies are checked before any connection.
    assert (mail_webhook_check_url ("https://hooks.example.com/tally?x=1") == 0);
    assert (mail_webhook_check_url ("http://hooks.example.com:8080/") == 0);
    assert (mail_webhook_check_url ("ftp://hooks.example.com/") == TL_EINVAL);
    assert (mail_webhook_check_url ("file:///etc/passwd") == TL_EINVAL);
    assert (mail_webhook_check_url ("gopher://example.com/") == TL_EINVAL);
    assert (mail_webhook_check_url ("https://") == TL_EINVAL);
    assert (mail_webhook_check_url ("https://example.com/#frag") == TL_EINVAL);
    assert (mail_webhook_check_url ("hooks.example.com") == TL_EINVAL);
    assert (mail_webhook_check_url (NULL) == TL_EINVAL);
    char errbuf [512];
    const char *json = "{\"type\":\"daily_reminder\",\"date\":\"2024-03-01\"}";
    size_t size = strlen (json);
    assert (mail_webhook_post ("ftp://example.com/", json, size, "k1", 0,
                               errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_webhook_post ("http://example.com/", json, size, "k1\r\nX-Evil: 1", 0,
                               errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_webhook_post ("http://example.com/", json, size, "", 0,
                               errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_webhook_post ("http://example.com/", "{not json", 9, "k1", 0,
                               errbuf, sizeof errbuf) == TL_EINVAL);

    //  A closed port: connection refused is temporary.
    char url [128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/status/200", mail_testsrv_closed_port ());
    assert (mail_webhook_post (url, json, size, "k1", MAIL_WEBHOOK_ALLOW_PRIVATE,
                               errbuf, sizeof errbuf) == TL_ERETRY);
    if (verbose)
        printf ("\n  closed port: [%s]", errbuf);

    if (!mail_testsrv_python_has ("http.server")) {
        printf ("skipped (no /usr/bin/python3) ");
        curl_global_cleanup ();
        return;
    }
    mail_testsrv_t *server = mail_testsrv_new (s_test_server, "http");
    assert (server);
    int port = mail_testsrv_port (server);

    //  Private addresses are refused unless allowed: nothing reaches the
    //  server, by IP or by name.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/status/200", port);
    int rc = mail_webhook_post (url, json, size, "k1", 0, errbuf, sizeof errbuf);
    assert (rc == TL_EINVAL);
    assert (strstr (errbuf, "private"));
    snprintf (url, sizeof url, "http://localhost:%d/status/200", port);
    assert (mail_webhook_post (url, json, size, "k1", 0, errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_testsrv_read (server, "req-1", NULL) == NULL);

    //  2xx: the request carries the JSON body, its type and the key.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/status/200", port);
    rc = mail_webhook_post (url, json, size, "reminder-42-2024-03-01",
                            MAIL_WEBHOOK_ALLOW_PRIVATE, errbuf, sizeof errbuf);
    if (verbose)
        printf ("\n  200: %s [%s]", tl_strerror (rc), errbuf);
    assert (rc == 0);
    char *request = mail_testsrv_read (server, "req-1", NULL);
    assert (request);
    char expected [512];
    snprintf (expected, sizeof expected, "POST\n/status/200\napplication/json\n"
              "reminder-42-2024-03-01\n\n%s", json);
    assert (strcmp (request, expected) == 0);
    free (request);

    //  The other answers, one request each.
    struct {
        int status;
        int rc;
    } cases [] = {
        { 204, 0 }, { 500, TL_ERETRY }, { 503, TL_ERETRY }, { 429, TL_ERETRY },
        { 400, TL_EINVAL }, { 404, TL_EINVAL }, { 302, TL_EINVAL }
    };
    int requests = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        snprintf (url, sizeof url, "http://127.0.0.1:%d/status/%d", port, cases [i].status);
        rc = mail_webhook_post (url, json, size, "k2", MAIL_WEBHOOK_ALLOW_PRIVATE,
                                errbuf, sizeof errbuf);
        if (verbose)
            printf ("\n  %d: %s [%s]", cases [i].status, tl_strerror (rc), errbuf);
        assert (rc == cases [i].rc);
        requests++;
        char name [32];
        snprintf (name, sizeof name, "req-%d", requests);
        request = mail_testsrv_read (server, name, NULL);
        assert (request);
        free (request);
        if (rc) {
            char status [16];
            snprintf (status, sizeof status, "HTTP %d", cases [i].status);
            assert (strstr (errbuf, status));
            assert (strstr (errbuf, "answer"));
        }
    }
    //  The 302 was not followed: no request after it.
    char name [32];
    snprintf (name, sizeof name, "req-%d", requests + 1);
    assert (mail_testsrv_read (server, name, NULL) == NULL);
    mail_testsrv_destroy (&server);
    curl_global_cleanup ();
}
