//  tl_valid.h — checks of the small values users type: email addresses,
//  user names, password lengths, time zones, local times and web URLs.
//  Each check is pure (no allocation, no state) and bounded by tl_limits.h;
//  services use them so that one rule holds everywhere (the auth service
//  and the mailer accept the same addresses).
#ifndef TL_VALID_H_INCLUDED
#define TL_VALID_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  True when `address` is a plain RFC 5322 addr-spec that mail can reach:
//  ASCII dot-atom local part (at most 64 bytes, no quoted forms), a domain
//  of at least two DNS labels (letters, digits, inner hyphens, 1..63 bytes
//  each), at most TL_MAX_EMAIL_LEN bytes. "a@b" and "a@b." are refused.
bool tl_valid_email (const char *address);

//  True for a user name: TL_USERNAME_MIN..TL_USERNAME_MAX characters of
//  ASCII letters, digits, '_', '.' and '-'.
bool tl_valid_username (const char *name);

//  Counts the characters (code points) of `size` bytes of UTF-8. Returns
//  the count, or -1 when the bytes are not valid UTF-8 or hold a NUL.
long tl_valid_utf8_chars (const char *text, size_t size);

//  True when `name` is a zone of the system's IANA time zone database
//  ("Europe/Paris", "UTC"): a relative path of [A-Za-z0-9_+-] segments
//  (no "." or ".." segment), at most TL_MAX_TIMEZONE_LEN bytes, naming a
//  TZif file under $TZDIR or /usr/share/zoneinfo.
bool tl_valid_timezone (const char *name);

//  True for a local time of day "HH:MM", 00:00 to 23:59.
bool tl_valid_local_time (const char *text);

//  True for an absolute http or https URL with a host and no fragment (it
//  would never reach the server), at most TL_MAX_URL_LEN bytes of visible
//  ASCII (libcurl's URL parser decides). The one rule for webhook URLs:
//  the auth service checks settings with it, the mailer what it posts to.
bool tl_valid_http_url (const char *url);

//  True for the text form of a UUID (8-4-4-4-12 hex digits, any case):
//  ids from clients are checked before PostgreSQL sees them, so that a
//  malformed one is a 404 or a 400, never a database error.
bool tl_valid_uuid (const char *text);

//  A new random (version 4) UUID in its lower-case text form, into `out`:
//  for ids a service makes before it inserts the row (so that it can name
//  the row to another service first). Needs sodium_init, as every service has.
void tl_valid_uuid_new (char out [37]);

//  An Idempotency-Key: 1 to TL_MAX_IDEM_KEY_LEN visible ASCII characters
//  (no space or control).
bool tl_valid_idempotency_key (const char *key);

//  Self-test.
void tl_valid_test (bool verbose);

#endif
