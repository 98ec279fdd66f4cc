//  tl_fetch.h — guarded outbound HTTP: one GET with libcurl to a URL a user
//  chose (a remote dashboard, a CSV source), its body kept or streamed to
//  the caller as it arrives (tl_fetch_stream: a 100 MiB CSV is never held),
//  and the private-address guard that every outbound request to such a URL
//  goes through (the mailer's webhook POST installs it too).
//  The guard refuses private networks (loopback, RFC 1918, link-local,
//  CGNAT, unique-local IPv6, documentation and reserved blocks, ...): it
//  checks each address curl is about to connect to, after name resolution
//  (curl's open-socket callback), so a DNS name pointing inside is refused
//  too. Redirects are never followed (a 3xx is answered as it is); proxies
//  from the environment are not used; only http and https.
//  The program calls curl_global_init (CURL_GLOBAL_DEFAULT) once before it
//  starts threads (tl_service_new does); a tl_fetch_t belongs to one thread.
#ifndef TL_FETCH_H_INCLUDED
#define TL_FETCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Flags of the guard and of tl_fetch_set_flags.
#define TL_FETCH_ALLOW_PRIVATE  1       //  let requests reach private addresses
                                        //  (tests, trusted internal peers)

//  Bounds of a GET (tl_fetch_set_* may lower them).
#define TL_FETCH_TIMEOUT_MS_DEFAULT     5000
#define TL_FETCH_MAX_BODY_DEFAULT       (16L * 1024 * 1024)
#define TL_FETCH_MAX_KEPT               (8 * TL_FETCH_MAX_BODY_DEFAULT) //  a body kept
#define TL_FETCH_MAX_STREAM             (1024L * 1024 * 1024)   //  a body streamed
#define TL_FETCH_MAX_VALIDATOR_LEN      256     //  an ETag or Last-Modified kept
#define TL_FETCH_MAX_TIMEOUT_MS         600000  //  a streamed 100 MiB file takes time

//  --- The guard, for any curl easy handle --------------------------------

//  What the guard saw on one request: set `flags` before installing it.
typedef struct {
    int flags;                  //  0 or TL_FETCH_ALLOW_PRIVATE
    bool blocked;               //  an address was refused as private
} tl_fetch_guard_t;

//  Installs the guard on `curl` (a CURL *): only http and https, no
//  redirects followed, no proxy, and the private-address check on every
//  connection through `guard` (which must outlive the request). Returns 0,
//  or TL_ECONFIG when curl refused an option.
int tl_fetch_guard_install (void *curl, tl_fetch_guard_t *guard);

//  True when the IPv4 address `address` (host byte order) is not on the
//  public internet.
bool tl_fetch_private_ipv4 (uint32_t address);

//  True when the 16-byte IPv6 address is not on the public internet (an
//  embedded IPv4 address, mapped, compatible or NAT64, judged as IPv4).
bool tl_fetch_private_ipv6 (const unsigned char *address);

//  Maps a CURLcode to a Tally code: 0; TL_ENOMEM; TL_ETIMEDOUT; TL_EINVAL
//  for what asking again will not mend (a bad URL or protocol, a
//  certificate that does not verify, redirects); TL_EIO for the rest
//  (refused or lost connections, names that do not resolve).
int tl_fetch_curl_code (int code);

//  --- A GET ---------------------------------------------------------------

typedef struct _tl_fetch_t tl_fetch_t;

//  Prepares a GET of `url` (tl_valid_http_url). Returns NULL for a bad URL
//  or when memory runs out.
tl_fetch_t *tl_fetch_new (const char *url);

//  Destroys the fetch and its reply, and nulls the caller's reference.
//  Safe on NULL.
void tl_fetch_destroy (tl_fetch_t **self_p);

//  Settings, before tl_fetch_get: the time for the whole request (connect
//  included; 1..TL_FETCH_MAX_TIMEOUT_MS), the largest body (bytes, at
//  most TL_FETCH_MAX_STREAM, which only tl_fetch_stream can reach: a body
//  tl_fetch_get keeps is also bounded by TL_FETCH_MAX_KEPT; a longer one
//  fails the GET), the guard's flags, and the validators of a conditional
//  GET (If-None-Match, If-Modified-Since: printable ASCII, at most
//  TL_FETCH_MAX_VALIDATOR_LEN bytes; NULL clears). Setters return 0 or
//  TL_EINVAL (the setting is unchanged).
int tl_fetch_set_timeout_ms (tl_fetch_t *self, long timeout_ms);
int tl_fetch_set_max_size (tl_fetch_t *self, size_t max_size);
void tl_fetch_set_flags (tl_fetch_t *self, int flags);
int tl_fetch_set_if_none_match (tl_fetch_t *self, const char *etag);
int tl_fetch_set_if_modified_since (tl_fetch_t *self, const char *http_date);

//  Sends the GET and reads the reply. Returns 0 when the server answered
//  (any status, tl_fetch_status; a 3xx is not followed), or:
//    TL_ETIMEDOUT  no whole answer within the timeout;
//    TL_EIO        the name did not resolve, the connection was refused
//                  or lost, TLS failed;
//    TL_EINVAL     the host is a private address (without the flag);
//    TL_ETOOBIG    the body passed the size cap;
//    TL_ENOMEM, TL_ECONFIG.
//  `errbuf` (may be NULL) then says why in one printable line. A fetch may
//  be sent again; each call replaces the last reply.
int tl_fetch_get (tl_fetch_t *self, char *errbuf, size_t errsize);

//  Receives `size` bytes of a 2xx reply's body as they arrive
//  (tl_fetch_stream). Returns 0 to read on, or a negative TL_E* code that
//  stops the transfer.
typedef int (tl_fetch_sink_fn) (void *arg, const char *data, size_t size);

//  Sends the GET as tl_fetch_get does, but hands the body of a 2xx reply
//  to `sink` as it arrives instead of keeping it: memory holds one chunk
//  of curl's, whatever the size (the size cap still counts every byte, so
//  a body past it fails with TL_ETOOBIG after the sink has seen its
//  beginning). The body of any other status (304, 404...) is kept, its
//  first TL_FETCH_STREAM_KEEP bytes only (tl_fetch_body). Returns as
//  tl_fetch_get, or the sink's own code when it stopped the transfer.
int tl_fetch_stream (tl_fetch_t *self, tl_fetch_sink_fn *sink, void *arg,
                     char *errbuf, size_t errsize);
#define TL_FETCH_STREAM_KEEP            4096

//  The last reply: its HTTP status (0 before one), its body (NUL-
//  terminated after `size` bytes, "" when empty; borrowed until the next
//  tl_fetch_get or destroy), and its ETag and Last-Modified headers
//  (borrowed; "" when absent or too long).
long tl_fetch_status (tl_fetch_t *self);
const char *tl_fetch_body (tl_fetch_t *self, size_t *size);
const char *tl_fetch_etag (tl_fetch_t *self);
const char *tl_fetch_last_modified (tl_fetch_t *self);

//  Self-test, run by ctest: a small HTTP server on a thread of its own.
void tl_fetch_test (bool verbose);

#endif
