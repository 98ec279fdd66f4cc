//  mail_smtp.h — sends one built message (mail_mime) to an SMTP server
//  with libcurl, and says whether a failure is worth a retry.
//  The URL is smtp://host:port (STARTTLS when the server offers it) or
//  smtps://host:port (TLS from the first byte); user:password in the URL
//  are the AUTH credentials, and with credentials TLS is always required,
//  so a password never crosses the network in clear.
//  The program must call curl_global_init (CURL_GLOBAL_DEFAULT) once,
//  before it starts threads; mail_smtp_send is then thread-safe.
#ifndef MAIL_SMTP_H_INCLUDED
#define MAIL_SMTP_H_INCLUDED

#include <stdbool.h>
#include "mail_limits.h"
#include <stddef.h>

//  Checks an SMTP URL as mail_smtp_send will: smtp or smtps, a host, at
//  most MAIL_MAX_URL_LEN bytes. Returns 0 or TL_ECONFIG. For start-up.
int mail_smtp_check_url (const char *url);

//  Sends `message` (`size` bytes, CRLF lines, as mail_mime_build writes
//  it) from `from` to the `nto` addresses of `to` (envelope addresses,
//  each a valid addr-spec), with MAIL_SMTP_CONNECT_TIMEOUT_SEC to connect
//  and MAIL_SMTP_TIMEOUT_SEC for the whole conversation. Returns:
//    0            the server accepted the message (250 after DATA);
//    TL_ERETRY    a temporary failure: refused or lost connection,
//                 timeout, DNS failure, an SMTP 4xx answer;
//    TL_EINVAL    a permanent failure of this message: an SMTP 5xx answer
//                 (e.g. 550 no such user), or a bad address or size;
//    TL_ECONFIG   the URL, the credentials (AUTH refused) or TLS (required
//                 but not offered, certificate not trusted) are wrong: no
//                 message can go until the configuration is fixed;
//    TL_ENOMEM.
//  On failure `errbuf` (when not NULL) says why, quoting the server's
//  answer (e.g. "RCPT failed: 550 (550 no such user)").
int mail_smtp_send (const char *url, const char *from, const char *const *to,
                    size_t nto, const char *message, size_t size,
                    char *errbuf, size_t errsize);

//  Self-test, run by ctest: a real SMTP server (Python aiosmtpd).
void mail_smtp_test (bool verbose);

#endif
