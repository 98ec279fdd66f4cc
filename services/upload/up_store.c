//  up_store.c — the local-folder and S3 backends of up_store.h. The local
//  backend writes a temporary file and renames it, so that a reader never
//  sees half an object; the S3 backend is one libcurl request per call,
//  signed by libcurl's CURLOPT_AWS_SIGV4 with the payload's SHA-256.
#define _GNU_SOURCE
#include "up_store.h"
#include "upload_limits.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_log.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _up_store_t {
    bool s3;
    char *dir;                  //  local: the folder
    char *url;                  //  s3: "http://host:port/bucket", no trailing '/'
    char *userpwd;              //  s3: "access:secret"
    char *sigv4;                //  s3: "aws:amz:<region>:s3"
    CURL *curl;                 //  s3: reused for keep-alive
    bool bucket_checked;
};

static bool
s_key_ok (const char *key)
{
    size_t len = key ? strlen (key) : 0;
    if (len == 0 || len > UP_MAX_KEY_LEN || key [0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((key [i] >= '0' && key [i] <= '9') || (key [i] >= 'a' && key [i] <= 'z')
            || key [i] == '_' || key [i] == '.'))
            return false;
    return true;
}

up_store_t *
up_store_new_local (const char *dir)
{
    if (!dir || !*dir || strlen (dir) > UP_MAX_PATH_LEN - UP_MAX_KEY_LEN - 16)
        return NULL;
    if (mkdir (dir, 0700) && errno != EEXIST) {
        tl_log (TL_LOG_ERROR, NULL, "upload store: cannot make %s: %s", dir, strerror (errno));
        return NULL;
    }
    up_store_t *self = calloc (1, sizeof *self);
    if (self)
        self->dir = strdup (dir);
    if (self && !self->dir)
        up_store_destroy (&self);
    return self;
}

up_store_t *
up_store_new_s3 (const char *url, const char *access_key, const char *secret_key,
                 const char *region)
{
    if (!url || (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0)
    ||  strlen (url) > UP_S3_MAX_URL_LEN || !access_key || !*access_key
    ||  !secret_key || !*secret_key || !region || !*region || strlen (region) > 64)
        return NULL;
    const char *path = strchr (strstr (url, "://") + 3, '/');
    if (!path || strlen (path) < 2)
        return NULL;                    //  path-style needs the bucket
    up_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->s3 = true;
    self->url = strdup (url);
    size_t len = self->url ? strlen (self->url) : 0;
    while (len && self->url [len - 1] == '/')
        self->url [--len] = 0;
    if (asprintf (&self->userpwd, "%s:%s", access_key, secret_key) < 0)
        self->userpwd = NULL;
    if (asprintf (&self->sigv4, "aws:amz:%s:s3", region) < 0)
        self->sigv4 = NULL;
    self->curl = curl_easy_init ();
    if (!self->url || !self->userpwd || !self->sigv4 || !self->curl)
        up_store_destroy (&self);
    return self;
}

up_store_t *
up_store_new_env (void)
{
    const char *s3 = tl_env ("TALLY_S3_URL", NULL);
    if (s3 && *s3)
        return up_store_new_s3 (s3, tl_env ("TALLY_S3_ACCESS_KEY", NULL),
                                tl_env ("TALLY_S3_SECRET_KEY", NULL),
                                tl_env ("TALLY_S3_REGION", "us-east-1"));
    char dir [UP_MAX_PATH_LEN];
    snprintf (dir, sizeof dir, "%s/uploads", tl_env ("TALLY_DATA_DIR", "var"));
    mkdir (tl_env ("TALLY_DATA_DIR", "var"), 0700);
    return up_store_new_local (dir);
}

void
up_store_destroy (up_store_t **self_p)
{
    assert (self_p);
    up_store_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->dir);
    free (self->url);
    if (self->userpwd)
        sodium_memzero (self->userpwd, strlen (self->userpwd));
    free (self->userpwd);
    free (self->sigv4);
    free (self);
    *self_p = NULL;
}

bool
up_store_is_s3 (const up_store_t *self)
{
    return self && self->s3;
}

//  ---------------------------------------------------------------------
//  Local folder: <dir>/<first two characters>/<key>

static void
s_path (up_store_t *self, const char *key, char *path, size_t size, bool make_dir)
{
    snprintf (path, size, "%s/%.2s", self->dir, key);
    if (make_dir)
        mkdir (path, 0700);
    snprintf (path, size, "%s/%.2s/%s", self->dir, key, key);
}

static int
s_local_put (up_store_t *self, const char *key, const void *data, size_t size)
{
    char path [UP_MAX_PATH_LEN], tmp [UP_MAX_PATH_LEN + 32];
    s_path (self, key, path, sizeof path, true);
    unsigned char nonce [8];
    randombytes_buf (nonce, sizeof nonce);
    snprintf (tmp, sizeof tmp, "%s.tmp%02x%02x%02x%02x", path, nonce [0], nonce [1],
              nonce [2], nonce [3]);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return TL_EIO;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write (fd, (const char *) data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t) n;
    }
    bool ok = done == size && fsync (fd) == 0;
    ok = close (fd) == 0 && ok;
    if (!ok || rename (tmp, path) != 0) {
        unlink (tmp);
        return TL_EIO;
    }
    return 0;
}

static int
s_local_get (up_store_t *self, const char *key, size_t max, void **data_p, size_t *size_p)
{
    char path [UP_MAX_PATH_LEN];
    s_path (self, key, path, sizeof path, false);
    int fd = open (path, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? TL_ENOTFOUND : TL_EIO;
    struct stat st;
    if (fstat (fd, &st) != 0 || st.st_size < 0) {
        close (fd);
        return TL_EIO;
    }
    if ((size_t) st.st_size > max) {
        close (fd);
        return TL_ETOOBIG;
    }
    size_t size = (size_t) st.st_size;
    char *data = malloc (size ? size : 1);
    size_t done = 0;
    while (data && done < size) {
        ssize_t n = read (fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t) n;
    }
    close (fd);
    if (!data)
        return TL_ENOMEM;
    if (done != size) {
        free (data);
        return TL_EIO;
    }
    *data_p = data;
    *size_p = size;
    return 0;
}

static int
s_local_delete (up_store_t *self, const char *key)
{
    char path [UP_MAX_PATH_LEN];
    s_path (self, key, path, sizeof path, false);
    return unlink (path) == 0 || errno == ENOENT ? 0 : TL_EIO;
}

//  ---------------------------------------------------------------------
//  S3: PUT, GET, DELETE <url>/<key>, signed with SigV4

typedef struct {
    char *data;
    size_t size, max;
    bool too_big;
} s_sink_t;

static size_t
s_write (char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_sink_t *sink = (s_sink_t *) arg;
    size_t n = size * nmemb;
    if (sink->size + n > sink->max) {
        sink->too_big = true;
        return 0;                       //  libcurl stops the transfer
    }
    char *grown = realloc (sink->data, sink->size + n + 1);
    if (!grown)
        return 0;
    sink->data = grown;
    memcpy (sink->data + sink->size, ptr, n);
    sink->size += n;
    return n;
}

//  One signed request: `method` on `key` (NULL: the bucket itself) with
//  `body` (PUT) or into `sink` (GET). Returns the HTTP status, or a
//  negative code when nothing was answered.
static long
s_s3 (up_store_t *self, const char *method, const char *key, const void *body, size_t size,
      const char *content_type, s_sink_t *sink)
{
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    char url [UP_S3_MAX_URL_LEN + UP_MAX_KEY_LEN + 8];
    snprintf (url, sizeof url, "%s/%s", self->url, key ? key : "");
    if (!key)
        url [strlen (url) - 1] = 0;     //  the bucket: no trailing '/'
    //  The payload's hash signs the body too (S3 wants it in a header).
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, body ? body : (const void *) "", body ? size : 0);
    char header [64 + crypto_hash_sha256_BYTES * 2];
    strcpy (header, "x-amz-content-sha256: ");
    sodium_bin2hex (header + strlen (header), crypto_hash_sha256_BYTES * 2 + 1, hash,
                    sizeof hash);
    struct curl_slist *headers = curl_slist_append (NULL, header);
    char type [160];
    if (content_type) {
        snprintf (type, sizeof type, "Content-Type: %s", content_type);
        headers = curl_slist_append (headers, type);
    }
    headers = curl_slist_append (headers, "Expect:");
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_AWS_SIGV4, self->sigv4);
    curl_easy_setopt (curl, CURLOPT_USERPWD, self->userpwd);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) UP_S3_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) size);
    }
    if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    s_sink_t discard = { NULL, 0, 64 * 1024, false };
    s_sink_t *into = sink ? sink : &discard;
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, into);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    if (status >= 300 && status != 404)
        tl_log (TL_LOG_WARN, NULL, "upload store: %s %s: HTTP %ld %.200s", method,
                key ? key : "(bucket)", status, discard.data ? discard.data : "");
    free (discard.data);
    if (code != CURLE_OK && !(sink && sink->too_big)) {
        tl_log (TL_LOG_WARN, NULL, "upload store: %s %s: %s", method,
                key ? key : "(bucket)", curl_easy_strerror (code));
        return TL_EUNAVAIL;
    }
    return status;
}

//  Makes the bucket once, when the store says it does not have it.
static void
s_s3_bucket (up_store_t *self)
{
    if (self->bucket_checked)
        return;
    long status = s_s3 (self, "HEAD", NULL, NULL, 0, NULL, NULL);
    if (status == 404)
        status = s_s3 (self, "PUT", NULL, "", 0, NULL, NULL);
    if (status >= 200 && status < 300)
        self->bucket_checked = true;
}

static int
s_s3_put (up_store_t *self, const char *key, const void *data, size_t size,
          const char *content_type)
{
    s_s3_bucket (self);
    long status = s_s3 (self, "PUT", key, data ? data : "", size, content_type, NULL);
    if (status < 0)
        return (int) status;
    return status >= 200 && status < 300 ? 0 : TL_EUNAVAIL;
}

static int
s_s3_get (up_store_t *self, const char *key, size_t max, void **data_p, size_t *size_p)
{
    s_sink_t sink = { NULL, 0, max, false };
    long status = s_s3 (self, "GET", key, NULL, 0, NULL, &sink);
    if (sink.too_big) {
        free (sink.data);
        return TL_ETOOBIG;
    }
    if (status != 200) {
        free (sink.data);
        return status == 404 ? TL_ENOTFOUND : status < 0 ? (int) status : TL_EUNAVAIL;
    }
    *data_p = sink.data ? sink.data : malloc (1);
    *size_p = sink.size;
    return *data_p ? 0 : TL_ENOMEM;
}

static int
s_s3_delete (up_store_t *self, const char *key)
{
    long status = s_s3 (self, "DELETE", key, NULL, 0, NULL, NULL);
    if (status < 0)
        return (int) status;
    return (status >= 200 && status < 300) || status == 404 ? 0 : TL_EUNAVAIL;
}

//  ---------------------------------------------------------------------

int
up_store_put (up_store_t *self, const char *key, const void *data, size_t size,
              const char *content_type)
{
    assert (self);
    if (!s_key_ok (key))
        return TL_EINVAL;
    return self->s3 ? s_s3_put (self, key, data, size, content_type)
                    : s_local_put (self, key, data, size);
}

int
up_store_get (up_store_t *self, const char *key, size_t max, void **data_p, size_t *size_p)
{
    assert (self && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (!s_key_ok (key))
        return TL_EINVAL;
    return self->s3 ? s_s3_get (self, key, max, data_p, size_p)
                    : s_local_get (self, key, max, data_p, size_p);
}

int
up_store_delete (up_store_t *self, const char *key)
{
    assert (self);
    if (!s_key_ok (key))
        return TL_EINVAL;
    return self->s3 ? s_s3_delete (self, key) : s_local_delete (self, key);
}

//  ---------------------------------------------------------------------
//  Self-test (the local backend)

static void
s_test_local_put_get_delete (void)
{
    char dir [] = "/tmp/up_store_test_XXXXXX";
    assert (mkdtemp (dir));
    char sub [64];
    snprintf (sub, sizeof sub, "%s/uploads", dir);
    up_store_t *store = up_store_new_local (sub);
    assert (store && !up_store_is_s3 (store));
    const char *key = "ab12cd.thumb";
    assert (up_store_put (store, key, "hello", 5, "image/png") == 0);
    assert (up_store_put (store, key, "hello", 5, "image/png") == 0);     //  again: same
    void *data = NULL;
    size_t size = 0;
    assert (up_store_get (store, key, 100, &data, &size) == 0);
    assert (size == 5 && memcmp (data, "hello", 5) == 0);
    free (data);
    assert (up_store_get (store, key, 4, &data, &size) == TL_ETOOBIG && !data);
    assert (up_store_get (store, "ab12ce", 100, &data, &size) == TL_ENOTFOUND);
    assert (up_store_delete (store, key) == 0);
    assert (up_store_delete (store, key) == 0);
    assert (up_store_get (store, key, 100, &data, &size) == TL_ENOTFOUND);
    up_store_destroy (&store);
    up_store_destroy (&store);
    char path [128];
    snprintf (path, sizeof path, "%s/ab", sub);
    rmdir (path);
    rmdir (sub);
    assert (rmdir (dir) == 0);          //  nothing left behind
}

static void
s_test_keys_are_checked (void)
{
    up_store_t *store = up_store_new_local ("/tmp");
    assert (store);
    void *data = NULL;
    size_t size = 0;
    assert (up_store_put (store, "../etc", "x", 1, NULL) == TL_EINVAL);
    assert (up_store_put (store, "A", "x", 1, NULL) == TL_EINVAL);
    assert (up_store_get (store, ".x", 10, &data, &size) == TL_EINVAL);
    assert (up_store_delete (store, "") == TL_EINVAL);
    up_store_destroy (&store);
}

static void
s_test_s3_needs_a_bucket_and_credentials (void)
{
    assert (!up_store_new_s3 ("http://127.0.0.1:1", "k", "s", "r"));
    assert (!up_store_new_s3 ("http://127.0.0.1:1/b", "", "s", "r"));
    assert (!up_store_new_s3 ("ftp://127.0.0.1:1/b", "k", "s", "r"));
    up_store_t *store = up_store_new_s3 ("http://127.0.0.1:1/bucket/", "k", "s", "us-east-1");
    assert (store && up_store_is_s3 (store));
    //  nothing listens on port 1
    assert (up_store_put (store, "ab", "x", 1, NULL) == TL_EUNAVAIL);
    up_store_destroy (&store);
}

void
up_store_test (bool verbose)
{
    (void) verbose;
    s_test_local_put_get_delete ();
    s_test_keys_are_checked ();
    s_test_s3_needs_a_bucket_and_credentials ();
}
