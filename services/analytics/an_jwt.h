//  an_jwt.h — the one JWT check API monitoring needs: a compact JWS signed
//  HS256 (RFC 7515/7519), as flask-monitoring-dashboard signs its exports
//  with its security token, verified with libsodium's HMAC-SHA256 and
//  compared in constant time. Base64url is decoded strictly (no padding,
//  no other alphabet, no stray bits). Only HS256 is accepted: a header
//  naming another algorithm ("none" above all) is refused.
#ifndef AN_JWT_H_INCLUDED
#define AN_JWT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Decodes `len` bytes of unpadded base64url into `out` (room for `size`
//  bytes). Returns the decoded length, or TL_EINVAL (a byte outside the
//  alphabet, a length of 4n+1, non-zero trailing bits) or TL_ETOOBIG
//  (`out` too small).
long an_jwt_base64url_decode (const char *in, size_t len, unsigned char *out, size_t size);

//  Verifies `token` (`len` bytes; surrounding white space and one pair of
//  JSON double quotes are allowed) with `key` (`key_len` bytes) and
//  returns its claim "data" (a string), a copy the caller frees, in
//  *data_p. Returns 0; TL_EINVAL when it is no HS256 JWT with a string
//  claim "data" (three parts, base64url, JSON objects, "alg": "HS256");
//  TL_EPROTO when it is one but its signature does not verify with `key`;
//  TL_ETOOBIG past AN_JWT_MAX_BYTES; TL_ENOMEM. Nothing is returned
//  unless the signature verified.
int an_jwt_verify_data (const char *token, size_t len, const char *key, size_t key_len,
                        char **data_p);

//  Signs {"data": data} with `key` as an HS256 JWT (for the export Tally
//  serves of itself, and the tests). Returns the token (the caller's) or
//  NULL when memory runs out or `data` is not UTF-8.
char *an_jwt_sign_data (const char *data, const char *key, size_t key_len);

//  Self-test.
void an_jwt_test (bool verbose);

#endif
