//  auth_token.h — the secrets the auth service hands out: session tokens
//  and mailed codes. Each is AUTH_TOKEN_BYTES random bytes from libsodium
//  in base64url (no padding), given to the user once and stored only as
//  its BLAKE2b-256 hash, so that a copy of the database opens no account.
//  Needs sodium_init () before use.
#ifndef AUTH_TOKEN_H_INCLUDED
#define AUTH_TOKEN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "auth_limits.h"

#define AUTH_TOKEN_HASH_BYTES 32

//  Writes a fresh random token (AUTH_TOKEN_TEXT_LEN characters and a NUL)
//  into `text`.
void auth_token_new (char text [AUTH_TOKEN_TEXT_LEN + 1]);

//  True when `text` has the shape of a token: exactly AUTH_TOKEN_TEXT_LEN
//  base64url characters. Anything else is refused before any lookup.
bool auth_token_valid (const char *text);

//  Hashes a token's text (BLAKE2b-256) into `hash`: the only form stored.
//  Returns 0, or TL_EINVAL when `text` is not a valid token.
int auth_token_hash (const char *text, unsigned char hash [AUTH_TOKEN_HASH_BYTES]);

//  Writes the hash as 64 lower-case hex digits and a NUL (for SQL params).
//  Returns 0 or TL_EINVAL as auth_token_hash.
int auth_token_hash_hex (const char *text, char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1]);

//  Constant-time comparison of two hashes.
bool auth_token_hash_equal (const unsigned char a [AUTH_TOKEN_HASH_BYTES],
                            const unsigned char b [AUTH_TOKEN_HASH_BYTES]);

//  Self-test.
void auth_token_test (bool verbose);

#endif
