//  ev_code.h — the codes of role invites: EV_CODE_BYTES (32: 256 bits)
//  random bytes from libsodium in base64url without padding, mailed once
//  and stored only as their BLAKE2b-256 hash, compared in constant time.
//  (The auth service's tokens follow the same recipe in its own class: a
//  service never includes another's headers.) Needs sodium_init ().
#ifndef EV_CODE_H_INCLUDED
#define EV_CODE_H_INCLUDED

#include <stdbool.h>

#define EV_CODE_BYTES       32
#define EV_CODE_TEXT_LEN    43          //  base64url of 32 bytes, no padding
#define EV_CODE_HASH_BYTES  32

//  Writes a fresh random code (EV_CODE_TEXT_LEN characters and a NUL).
void ev_code_new (char text [EV_CODE_TEXT_LEN + 1]);

//  True when `text` has the shape of a code (exactly EV_CODE_TEXT_LEN
//  base64url characters); anything else is refused before any lookup.
bool ev_code_valid (const char *text);

//  Writes the hash of a code as 64 lower-case hex digits and a NUL (for SQL
//  params). Returns 0, or -1 when `text` is not a valid code.
int ev_code_hash_hex (const char *text, char hex [EV_CODE_HASH_BYTES * 2 + 1]);

//  Constant-time comparison of two hashes in hex.
bool ev_code_hex_equal (const char *a, const char *b);

//  Self-test, run by ctest.
void ev_code_test (bool verbose);

#endif
