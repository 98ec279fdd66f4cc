//  mail_smtp.c — SMTP delivery with libcurl (see mail_smtp.h).
//  curl drives the conversation (EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO,
//  DATA with dot-stuffing); this file picks the options, feeds the message,
//  keeps the server's last error answer (seen through the debug callback)
//  and turns curl's result and the SMTP reply code into a Tally code.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <sodium.h>

#include "mail_mime.h"
#include "mail_smtp.h"
#include "tl_valid.h"
#include "mail_limits.h"
#include "tl_error.h"

#define S_REPLY_MAX     256         //  bytes of a server answer we quote

//  The message being uploaded.
typedef struct {
    const char *data;
    size_t size;
    size_t sent;
} s_upload_t;

//  The last 4xx/5xx answer of the server.
typedef struct {
    char line [S_REPLY_MAX];
    long code;
} s_reply_t;


//  curl read callback: hands out the next piece of the message.

static size_t
s_read (char *buffer, size_t size, size_t count, void *arg)
{
    s_upload_t *upload = (s_upload_t *) arg;
    size_t room = size * count;
    size_t left = upload->size - upload->sent;
    size_t chunk = left < room? left: room;
    memcpy (buffer, upload->data + upload->sent, chunk);
    upload->sent += chunk;
    return chunk;
}


//  curl debug callback: keeps the last server line that starts with a
//  4xx or 5xx code. Everything else curl would log is dropped.

static int
s_debug (CURL *curl, curl_infotype type, char *data, size_t size, void *arg)
{
    if (type != CURLINFO_HEADER_IN)
        return 0;
    s_reply_t *reply = (s_reply_t *) arg;
    const char *end = data + size;
    for (const char *line = data; line < end;) {
        const char *eol = (const char *) memchr (line, '\n', (size_t) (end - line));
        size_t length = (size_t) ((eol? eol: end) - line);
        if (length >= 3 && (line [0] == '4' || line [0] == '5')
        &&  line [1] >= '0' && line [1] <= '9' && line [2] >= '0' && line [2] <= '9') {
            while (length > 0 && (line [length - 1] == '\r' || line [length - 1] == '\n'))
                length--;
            if (length >= sizeof reply->line)
                length = sizeof reply->line - 1;
            memcpy (reply->line, line, length);
            reply->line [length] = 0;
            reply->code = (line [0] - '0') * 100 + (line [1] - '0') * 10 + (line [2] - '0');
        }
        line = eol? eol + 1: end;
    }
    return 0;
}


//  Parses `url`: sets *tls_implicit for smtps and *has_password when the
//  URL carries one. Returns 0 or TL_ECONFIG.

static int
s_parse_url (const char *url, bool *tls_implicit, bool *has_password)
{
    if (!url || strlen (url) > MAIL_MAX_URL_LEN)
        return TL_ECONFIG;
    CURLU *parsed = curl_url ();
    if (!parsed)
        return TL_ENOMEM;
    int rc = TL_ECONFIG;
    char *scheme = NULL;
    char *host = NULL;
    char *password = NULL;
    if (curl_url_set (parsed, CURLUPART_URL, url, 0) == CURLUE_OK
    &&  curl_url_get (parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
    &&  curl_url_get (parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK
    &&  *host
    &&  (strcmp (scheme, "smtp") == 0 || strcmp (scheme, "smtps") == 0)) {
        *tls_implicit = strcmp (scheme, "smtps") == 0;
        *has_password = curl_url_get (parsed, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK
                     && password && *password;
        rc = 0;
    }
    curl_free (scheme);
    curl_free (host);
    curl_free (password);
    curl_url_cleanup (parsed);
    return rc;
}


//  --------------------------------------------------------------------------
//  Checks an SMTP URL.

int
mail_smtp_check_url (const char *url)
{
    bool tls_implicit, has_password;
    return s_parse_url (url, &tls_implicit, &has_password) == 0? 0: TL_ECONFIG;
}


//  Maps curl's result and the last SMTP reply code to a Tally code.

static int
s_classify (CURLcode code, long reply)
{
    switch (code) {
        case CURLE_OK:
            return 0;
        //  The configuration is wrong: every message would fail alike.
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_LOGIN_DENIED:
        case CURLE_AUTH_ERROR:
        case CURLE_USE_SSL_FAILED:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
            return TL_ECONFIG;
        case CURLE_OUT_OF_MEMORY:
            return TL_ENOMEM;
        default:
            break;
    }
    //  The server answered with a failure code: its first digit decides.
    if (reply >= 500 && reply <= 599)
        return TL_EINVAL;
    if (reply >= 400 && reply <= 499)
        return TL_ERETRY;
    //  Connection refused, lost, timed out, name not resolved, TLS
    //  handshake broken, an odd answer: all may pass.
    return TL_ERETRY;
}


//  --------------------------------------------------------------------------
//  Sends one message.

int
mail_smtp_send (const char *url, const char *from, const char *const *to,
                size_t nto, const char *message, size_t size,
                char *errbuf, size_t errsize)
{
    assert (message || size == 0);
    if (errbuf && errsize)
        errbuf [0] = 0;
    bool tls_implicit = false;
    bool has_password = false;
    int rc = s_parse_url (url, &tls_implicit, &has_password);
    if (rc) {
        tl_error_format (errbuf, errsize, "bad SMTP URL (smtp:// or smtps:// with a host)");
        return rc;
    }
    if (!tl_valid_email (from)) {
        tl_error_format (errbuf, errsize, "bad sender address");
        return TL_EINVAL;
    }
    if (!to || nto == 0 || nto > MAIL_MAX_RECIPIENTS) {
        tl_error_format (errbuf, errsize, "need 1 to %d recipients", MAIL_MAX_RECIPIENTS);
        return TL_EINVAL;
    }
    for (size_t i = 0; i < nto; i++)
        if (!tl_valid_email (to [i])) {
            tl_error_format (errbuf, errsize, "bad recipient address #%zu", i + 1);
            return TL_EINVAL;
        }
    if (size == 0 || size > MAIL_MAX_MESSAGE_BYTES) {
        tl_error_format (errbuf, errsize, "message size %zu out of bounds", size);
        return TL_EINVAL;
    }

    CURL *curl = curl_easy_init ();
    if (!curl)
        return TL_ENOMEM;
    struct curl_slist *rcpt = NULL;
    char mail_from [MAIL_MAX_ADDRESS_LEN + 3];
    snprintf (mail_from, sizeof mail_from, "<%s>", from);
    for (size_t i = 0; i < nto; i++) {
        char address [MAIL_MAX_ADDRESS_LEN + 3];
        snprintf (address, sizeof address, "<%s>", to [i]);
        struct curl_slist *list = curl_slist_append (rcpt, address);
        if (!list) {
            curl_slist_free_all (rcpt);
            curl_easy_cleanup (curl);
            return TL_ENOMEM;
        }
        rcpt = list;
    }
    s_upload_t upload = { message, size, 0 };
    s_reply_t reply = { "", 0 };
    char curl_error [CURL_ERROR_SIZE] = "";

    //  With a password in the URL, TLS is required: STARTTLS stripped by
    //  a man in the middle must fail the send, not leak the password.
    long use_ssl = tls_implicit || has_password? (long) CURLUSESSL_ALL: (long) CURLUSESSL_TRY;
    CURLcode code = CURLE_OK;
    #define S_SETOPT(option, value) \
        if (code == CURLE_OK) code = curl_easy_setopt (curl, option, value)
    S_SETOPT (CURLOPT_URL, url);
    S_SETOPT (CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    S_SETOPT (CURLOPT_USE_SSL, use_ssl);
    S_SETOPT (CURLOPT_MAIL_FROM, mail_from);
    S_SETOPT (CURLOPT_MAIL_RCPT, rcpt);
    S_SETOPT (CURLOPT_UPLOAD, 1L);
    S_SETOPT (CURLOPT_READFUNCTION, s_read);
    S_SETOPT (CURLOPT_READDATA, &upload);
    S_SETOPT (CURLOPT_INFILESIZE_LARGE, (curl_off_t) size);
    S_SETOPT (CURLOPT_CONNECTTIMEOUT, (long) MAIL_SMTP_CONNECT_TIMEOUT_SEC);
    S_SETOPT (CURLOPT_TIMEOUT, (long) MAIL_SMTP_TIMEOUT_SEC);
    S_SETOPT (CURLOPT_NOSIGNAL, 1L);
    S_SETOPT (CURLOPT_ERRORBUFFER, curl_error);
    //  The debug callback only runs in verbose mode; it prints nothing.
    S_SETOPT (CURLOPT_DEBUGFUNCTION, s_debug);
    S_SETOPT (CURLOPT_DEBUGDATA, &reply);
    S_SETOPT (CURLOPT_VERBOSE, 1L);
    #undef S_SETOPT
    if (code != CURLE_OK) {
        //  An option this libcurl does not know: a build problem.
        tl_error_format (errbuf, errsize, "curl_easy_setopt: %s", curl_easy_strerror (code));
        curl_slist_free_all (rcpt);
        curl_easy_cleanup (curl);
        return TL_ECONFIG;
    }
    code = curl_easy_perform (curl);
    long response = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &response);
    curl_slist_free_all (rcpt);
    curl_easy_cleanup (curl);

    //  CURLINFO_RESPONSE_CODE is the failing command's answer; should it
    //  be missing or not a failure, the last 4xx/5xx line seen stands in.
    long failure = response >= 400? response: reply.code;
    rc = s_classify (code, code == CURLE_OK? response: failure);
    if (rc) {
        const char *what = *curl_error? curl_error: curl_easy_strerror (code);
        if (*reply.line)
            tl_error_format (errbuf, errsize, "%s (%s)", what, reply.line);
        else
            tl_error_format (errbuf, errsize, "%s", what);
    }
    return rc;
}


//  --------------------------------------------------------------------------
//  Self-test

//  The SMTP server: aiosmtpd with a handler that answers as argv [2] says
//  and writes each accepted message (its DATA, exactly) to msg-N and its
//  envelope to env-N.
static const char *s_test_server =
    "import asyncio, os, socket, sys\n"
    "from aiosmtpd.smtp import SMTP\n"
    "folder, mode = sys.argv[1], sys.argv[2]\n"
    "count = 0\n"
    "def put(name, data):\n"
    "    path = os.path.join(folder, name)\n"
    "    with open(path + '.tmp', 'wb') as f:\n"
    "        f.write(data)\n"
    "    os.rename(path + '.tmp', path)\n"
    "class Handler:\n"
    "    async def handle_RCPT(self, server, session, envelope, address, options):\n"
    "        if mode == 'rcpt550':\n"
    "            return '550 no such user'\n"
    "        if mode == 'rcpt451':\n"
    "            return '451 try later'\n"
    "        envelope.rcpt_tos.append(address)\n"
    "        return '250 OK'\n"
    "    async def handle_DATA(self, server, session, envelope):\n"
    "        global count\n"
    "        if mode == 'data552':\n"
    "            return '552 message too big'\n"
    "        if mode == 'data452':\n"
    "            return '452 mailbox full, try later'\n"
    "        count += 1\n"
    "        put('env-%d' % count, ('%s\\n%s\\n' % (envelope.mail_from,\n"
    "            ' '.join(envelope.rcpt_tos))).encode())\n"
    "        put('msg-%d' % count, envelope.original_content)\n"
    "        return '250 Message accepted for delivery'\n"
    "async def main():\n"
    "    sock = socket.socket()\n"
    "    sock.bind(('127.0.0.1', 0))\n"
    "    sock.listen(8)\n"
    "    loop = asyncio.get_running_loop()\n"
    "    await loop.create_server(lambda: SMTP(Handler(), decode_data=False,\n"
    "        ident='tally-test'), sock=sock)\n"
    "    put('port', str(sock.getsockname()[1]).encode())\n"
    "    await asyncio.Event().wait()\n"
    "asyncio.run(main())\n";

#include "mail_testsrv.h"

//  Sends `message` to a server in `mode`; returns mail_smtp_send's code.

static int
s_test_send_to (const char *mode, const char *message, size_t size,
                char *errbuf, size_t errsize, bool verbose)
{
    mail_testsrv_t *server = mail_testsrv_new (s_test_server, mode);
    assert (server);
    char url [64];
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", mail_testsrv_port (server));
    const char *to [] = { "ana@example.com" };
    int rc = mail_smtp_send (url, "tally@example.com", to, 1, message, size,
                             errbuf, errsize);
    if (verbose)
        printf ("\n  %s: %s [%s]", mode, tl_strerror (rc), errbuf);
    assert (mail_testsrv_read (server, "msg-1", NULL) == NULL);
    mail_testsrv_destroy (&server);
    return rc;
}

void
mail_smtp_test (bool verbose)
{
    assert (sodium_init () >= 0);
    assert (curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK);

    //  The classification table, including outcomes a test server cannot
    //  easily produce.
    assert (s_classify (CURLE_OK, 250) == 0);
    assert (s_classify (CURLE_COULDNT_CONNECT, 0) == TL_ERETRY);
    assert (s_classify (CURLE_OPERATION_TIMEDOUT, 0) == TL_ERETRY);
    assert (s_classify (CURLE_OPERATION_TIMEDOUT, 250) == TL_ERETRY);
    assert (s_classify (CURLE_COULDNT_RESOLVE_HOST, 0) == TL_ERETRY);
    assert (s_classify (CURLE_GOT_NOTHING, 0) == TL_ERETRY);
    assert (s_classify (CURLE_SEND_ERROR, 550) == TL_EINVAL);
    assert (s_classify (CURLE_SEND_ERROR, 451) == TL_ERETRY);
    assert (s_classify (CURLE_WEIRD_SERVER_REPLY, 554) == TL_EINVAL);
    assert (s_classify (CURLE_WEIRD_SERVER_REPLY, 421) == TL_ERETRY);
    assert (s_classify (CURLE_LOGIN_DENIED, 535) == TL_ECONFIG);
    assert (s_classify (CURLE_USE_SSL_FAILED, 0) == TL_ECONFIG);
    assert (s_classify (CURLE_PEER_FAILED_VERIFICATION, 0) == TL_ECONFIG);

    //  URLs and arguments are checked before any connection.
    assert (mail_smtp_check_url ("smtp://localhost:25") == 0);
    assert (mail_smtp_check_url ("smtps://user:p%40ss@mail.example.com:465") == 0);
    assert (mail_smtp_check_url ("http://mail.example.com") == TL_ECONFIG);
    assert (mail_smtp_check_url ("file:///etc/passwd") == TL_ECONFIG);
    assert (mail_smtp_check_url ("smtp://") == TL_ECONFIG);
    assert (mail_smtp_check_url ("not a url") == TL_ECONFIG);
    assert (mail_smtp_check_url (NULL) == TL_ECONFIG);
    char errbuf [256];
    const char *to [] = { "ana@example.com", "bo@example.org" };
    const char *bad_to [] = { "ana@example.com>\r\nRCPT TO:<x@y.com" };
    assert (mail_smtp_send ("smtp://127.0.0.1:1", "tally@example.com", bad_to, 1,
                            "x\r\n", 3, errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_smtp_send ("smtp://127.0.0.1:1", "tally@example.com\r\n", to, 1,
                            "x\r\n", 3, errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_smtp_send ("smtp://127.0.0.1:1", "tally@example.com", to, 0,
                            "x\r\n", 3, errbuf, sizeof errbuf) == TL_EINVAL);
    assert (mail_smtp_send ("ftp://127.0.0.1:1", "tally@example.com", to, 1,
                            "x\r\n", 3, errbuf, sizeof errbuf) == TL_ECONFIG);

    //  A closed port: connection refused is temporary.
    char url [64];
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", mail_testsrv_closed_port ());
    assert (mail_smtp_send (url, "tally@example.com", to, 1, "x\r\n", 3,
                            errbuf, sizeof errbuf) == TL_ERETRY);
    if (verbose)
        printf ("\n  closed port: [%s]", errbuf);

    if (!mail_testsrv_python_has ("aiosmtpd")) {
        printf ("skipped (no aiosmtpd for /usr/bin/python3) ");
        curl_global_cleanup ();
        return;
    }

    //  A real message with an attachment, and a line that needs
    //  dot-stuffing, arrives byte for byte.
    mail_mime_t *mime = mail_mime_new ();
    assert (mime);
    assert (mail_mime_set_from (mime, "tally@example.com", "Tally") == 0);
    assert (mail_mime_add_to (mime, to [0]) == 0);
    assert (mail_mime_add_to (mime, to [1]) == 0);
    assert (mail_mime_set_subject (mime, "Your report \xe2\x80\x94 March") == 0);
    mail_mime_set_date (mime, 1711929600);
    assert (mail_mime_set_message_id (mime, "7f1c0d2e-smtp-test") == 0);
    assert (mail_mime_set_text (mime, "Hello,\n.\n..leading dots\nbye\n") == 0);
    assert (mail_mime_set_html (mime, "<p>Hello</p>\n") == 0);
    unsigned char bytes [1000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (unsigned char) (i * 7);
    assert (mail_mime_add_attachment (mime, "report.pdf", "application/pdf",
                                      bytes, sizeof bytes) == 0);
    char *message = NULL;
    size_t size = 0;
    assert (mail_mime_build_str (mime, &message, &size) == 0);
    size_t nto = 0;
    const char *const *recipients = mail_mime_to (mime, &nto);

    mail_testsrv_t *server = mail_testsrv_new (s_test_server, "accept");
    assert (server);
    snprintf (url, sizeof url, "smtp://127.0.0.1:%d", mail_testsrv_port (server));
    int rc = mail_smtp_send (url, mail_mime_from (mime), recipients, nto,
                             message, size, errbuf, sizeof errbuf);
    if (verbose)
        printf ("\n  accept: %s [%s]", tl_strerror (rc), errbuf);
    assert (rc == 0);
    size_t received_size = 0;
    char *received = mail_testsrv_read (server, "msg-1", &received_size);
    assert (received);
    assert (received_size == size && memcmp (received, message, size) == 0);
    free (received);
    char *envelope = mail_testsrv_read (server, "env-1", NULL);
    assert (envelope);
    assert (strcmp (envelope, "tally@example.com\nana@example.com bo@example.org\n") == 0);
    free (envelope);

    //  With a password in an smtp:// URL, TLS is required: this server
    //  offers no STARTTLS, so nothing is sent and the configuration is wrong.
    snprintf (url, sizeof url, "smtp://user:secret@127.0.0.1:%d",
              mail_testsrv_port (server));
    rc = mail_smtp_send (url, "tally@example.com", to, 1, message, size,
                         errbuf, sizeof errbuf);
    if (verbose)
        printf ("\n  password without TLS: %s [%s]", tl_strerror (rc), errbuf);
    assert (rc == TL_ECONFIG);
    assert (mail_testsrv_read (server, "msg-2", NULL) == NULL);
    mail_testsrv_destroy (&server);

    //  The server's refusals: 5xx is permanent, 4xx temporary, and the
    //  answer is quoted.
    rc = s_test_send_to ("rcpt550", message, size, errbuf, sizeof errbuf, verbose);
    assert (rc == TL_EINVAL);
    assert (strstr (errbuf, "550 no such user"));
    rc = s_test_send_to ("rcpt451", message, size, errbuf, sizeof errbuf, verbose);
    assert (rc == TL_ERETRY);
    assert (strstr (errbuf, "451 try later"));
    rc = s_test_send_to ("data552", message, size, errbuf, sizeof errbuf, verbose);
    assert (rc == TL_EINVAL);
    assert (strstr (errbuf, "552 message too big"));
    rc = s_test_send_to ("data452", message, size, errbuf, sizeof errbuf, verbose);
    assert (rc == TL_ERETRY);
    assert (strstr (errbuf, "452 mailbox full"));

    free (message);
    mail_mime_destroy (&mime);
    curl_global_cleanup ();
}
