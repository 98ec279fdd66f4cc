//  mail_webhook.h — reminder webhooks: one JSON POST with libcurl to a URL
//  a user chose, and whether a failure is worth a retry.
//  Because the URL comes from a user, the request refuses to reach private
//  networks (loopback, RFC 1918, link-local, CGNAT, unique-local IPv6,
//  ...): the check is made on each address curl is about to connect to,
//  after name resolution, so a DNS name pointing inside is refused too.
//  Redirects are never followed; proxies from the environment are not used.
//  (That guard is the platform's, tl_fetch_guard_install in tl_fetch.h.)
//  The program must call curl_global_init (CURL_GLOBAL_DEFAULT) once,
//  before it starts threads; mail_webhook_post is then thread-safe.
#ifndef MAIL_WEBHOOK_H_INCLUDED
#define MAIL_WEBHOOK_H_INCLUDED

#include <stdbool.h>
#include "mail_limits.h"
#include <stddef.h>

//  Flags of mail_webhook_post.
#define MAIL_WEBHOOK_ALLOW_PRIVATE  1   //  let the POST reach private addresses
                                        //  (tests, a trusted internal hook)

//  Checks a webhook URL: http or https, a host, no fragment, at most
//  MAIL_MAX_URL_LEN bytes. Returns 0 or TL_EINVAL. Does not resolve names.
int mail_webhook_check_url (const char *url);

//  POSTs `json` (`size` bytes, a JSON text, at most MAIL_WEBHOOK_MAX_BODY)
//  to `url` with Content-Type: application/json and Idempotency-Key:
//  `idempotency_key` (1..TL_MAX_IDEM_KEY_LEN visible ASCII characters; the
//  same key for every retry of one reminder), within
//  MAIL_WEBHOOK_CONNECT_TIMEOUT_SEC to connect and MAIL_WEBHOOK_TIMEOUT_SEC
//  in all. `flags` is 0 or MAIL_WEBHOOK_ALLOW_PRIVATE. Returns:
//    0            the endpoint answered 2xx;
//    TL_ERETRY    5xx, 408, 425 or 429, a timeout, a refused or lost
//                 connection, a name that does not resolve (yet);
//    TL_EINVAL    any other 4xx, a 3xx (redirects are not followed), a
//                 bad URL, key or body, a private address;
//    TL_ENOMEM.
//  On failure `errbuf` (when not NULL) says why, with the HTTP status and
//  the start of the reply body when there was one.
int mail_webhook_post (const char *url, const char *json, size_t size,
                       const char *idempotency_key, int flags,
                       char *errbuf, size_t errsize);

//  Self-test, run by ctest: a real HTTP server (Python http.server).
void mail_webhook_test (bool verbose);

#endif
