//  an_jwt.c — HS256 JWTs of the FMD export (see an_jwt.h).
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "an_jwt.h"
#include "analytics_monitor_limits.h"
#include "tl_error.h"

//  The value of a base64url character, or -1.

static int
s_b64_value (unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long
an_jwt_base64url_decode (const char *in, size_t len, unsigned char *out, size_t size)
{
    if (len % 4 == 1)
        return TL_EINVAL;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > size)
        return TL_ETOOBIG;
    size_t pos = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_b64_value ((unsigned char) in [i]);
        if (v < 0)
            return TL_EINVAL;
        acc = (acc << 6) | (unsigned int) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out [pos++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)                   //  trailing bits must be zero
        return TL_EINVAL;
    return (long) pos;
}

//  Encodes `len` bytes as unpadded base64url into `out` (room for
//  len * 4 / 3 + 4 bytes, NUL-terminated).

static void
s_b64_encode (const unsigned char *in, size_t len, char *out)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t pos = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in [i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out [pos++] = alphabet [(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out [pos++] = alphabet [(acc << (6 - bits)) & 63];
    out [pos] = 0;
}

//  HMAC-SHA256 of `len` bytes with a key of any length.

static void
s_hmac (const char *key, size_t key_len, const char *msg, size_t len,
        unsigned char mac [crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, (const unsigned char *) key, key_len);
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) msg, len);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_memzero (&state, sizeof state);
}

//  Decodes a base64url part holding a JSON object. Returns it (the
//  caller's) or NULL.

static json_t *
s_json_part (const char *part, size_t len)
{
    unsigned char *raw = (unsigned char *) malloc (len / 4 * 3 + 3);
    if (!raw)
        return NULL;
    long size = an_jwt_base64url_decode (part, len, raw, len / 4 * 3 + 3);
    json_t *obj = size >= 0 ? json_loadb ((const char *) raw, (size_t) size,
                                          JSON_REJECT_DUPLICATES, NULL) : NULL;
    free (raw);
    if (obj && !json_is_object (obj))
        json_decref (obj);
    else
        return obj;
    return NULL;
}

//  Trims white space and one pair of double quotes around a token.

static void
s_trim (const char **token, size_t *len)
{
    while (*len && strchr (" \t\r\n", (*token) [0]))
        (*token)++, (*len)--;
    while (*len && strchr (" \t\r\n", (*token) [*len - 1]))
        (*len)--;
    if (*len >= 2 && (*token) [0] == '"' && (*token) [*len - 1] == '"')
        (*token)++, *len -= 2;
}

int
an_jwt_verify_data (const char *token, size_t len, const char *key, size_t key_len,
                    char **data_p)
{
    *data_p = NULL;
    if (!token)
        return TL_EINVAL;
    if (len > AN_JWT_MAX_BYTES)
        return TL_ETOOBIG;
    s_trim (&token, &len);
    const char *dot1 = memchr (token, '.', len);
    const char *dot2 = dot1 ? memchr (dot1 + 1, '.', len - (size_t) (dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr (dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
        return TL_EINVAL;
    //  The header must say HS256
    json_t *header = s_json_part (token, (size_t) (dot1 - token));
    const char *alg = json_string_value (json_object_get (header, "alg"));
    bool hs256 = alg && strcmp (alg, "HS256") == 0;
    json_decref (header);
    if (!hs256)
        return TL_EINVAL;
    //  The signature: exactly 32 bytes, compared in constant time
    unsigned char given [crypto_auth_hmacsha256_BYTES + 3];
    long sig_len = an_jwt_base64url_decode (dot2 + 1, len - (size_t) (dot2 + 1 - token),
                                            given, sizeof given);
    if (sig_len != crypto_auth_hmacsha256_BYTES)
        return TL_EINVAL;
    unsigned char mac [crypto_auth_hmacsha256_BYTES];
    s_hmac (key, key_len, token, (size_t) (dot2 - token), mac);
    if (sodium_memcmp (mac, given, sizeof mac) != 0)
        return TL_EPROTO;
    //  The claims
    json_t *claims = s_json_part (dot1 + 1, (size_t) (dot2 - dot1 - 1));
    json_t *data = json_object_get (claims, "data");
    int rc = TL_EINVAL;
    if (json_is_string (data)) {
        size_t data_len = json_string_length (data);
        *data_p = (char *) malloc (data_len + 1);
        rc = *data_p ? 0 : TL_ENOMEM;
        if (*data_p) {
            memcpy (*data_p, json_string_value (data), data_len);
            (*data_p) [data_len] = 0;
        }
    }
    json_decref (claims);
    return rc;
}

char *
an_jwt_sign_data (const char *data, const char *key, size_t key_len)
{
    static const char header [] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";   //  {"alg":"HS256","typ":"JWT"}
    json_t *claims = json_pack ("{s:s}", "data", data);
    char *payload = claims ? json_dumps (claims, JSON_COMPACT) : NULL;
    json_decref (claims);
    if (!payload)
        return NULL;
    size_t payload_len = strlen (payload);
    size_t size = sizeof header + payload_len / 3 * 4 + 8 + 1 + 48;
    char *token = (char *) malloc (size);
    if (token) {
        memcpy (token, header, sizeof header - 1);
        token [sizeof header - 1] = '.';
        s_b64_encode ((const unsigned char *) payload, payload_len, token + sizeof header);
        unsigned char mac [crypto_auth_hmacsha256_BYTES];
        size_t signed_len = strlen (token);
        s_hmac (key, key_len, token, signed_len, mac);
        token [signed_len] = '.';
        s_b64_encode (mac, sizeof mac, token + signed_len + 1);
    }
    free (payload);
    return token;
}


//  --------------------------------------------------------------------------
//  Self-test

//  Tokens made by PyJWT 2.6 (jwt.encode ({"data": ...}, key, "HS256"))
#define S_PYJWT_A \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkYXRhIjoiW3tcImVuZHBvaW50XCI6IFwiYVwiLCBc" \
    "ImV4ZWN1dGlvbl90aW1lXCI6IDEuNX1dIn0.fs38HHTsaJ7Z7hiLbMVkK2vf-_3zxoWfJGOxPqQB2Xw"
#define S_PYJWT_B \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkYXRhIjoiW10ifQ.B-pWhr_Kk1_yUUaO9rWFvcLcee4XAGIzJTB9cQ8MVM8"

static int
s_verify (const char *token, const char *key, char **data)
{
    return an_jwt_verify_data (token, strlen (token), key, strlen (key), data);
}

static void
s_test_base64url (void)
{
    unsigned char out [16];
    assert (an_jwt_base64url_decode ("", 0, out, sizeof out) == 0);
    assert (an_jwt_base64url_decode ("YQ", 2, out, sizeof out) == 1 && out [0] == 'a');
    assert (an_jwt_base64url_decode ("YWI", 3, out, sizeof out) == 2);
    assert (an_jwt_base64url_decode ("YWJj", 4, out, sizeof out) == 3);
    assert (memcmp (out, "abc", 3) == 0);
    assert (an_jwt_base64url_decode ("-_8", 3, out, sizeof out) == 2);
    assert (out [0] == 0xfb && out [1] == 0xff);
    assert (an_jwt_base64url_decode ("YQ==", 4, out, sizeof out) == TL_EINVAL);  //  padding
    assert (an_jwt_base64url_decode ("+/8", 3, out, sizeof out) == TL_EINVAL);   //  base64
    assert (an_jwt_base64url_decode ("YWJjZ", 5, out, sizeof out) == TL_EINVAL); //  4n+1
    assert (an_jwt_base64url_decode ("YR", 2, out, sizeof out) == TL_EINVAL);    //  stray bits
    assert (an_jwt_base64url_decode ("YWJj", 4, out, 2) == TL_ETOOBIG);
}

static void
s_test_pyjwt (void)
{
    char *data = NULL;
    assert (s_verify (S_PYJWT_A, "secret-token", &data) == 0);
    assert (strcmp (data, "[{\"endpoint\": \"a\", \"execution_time\": 1.5}]") == 0);
    free (data);
    assert (s_verify ("  \"" S_PYJWT_B "\"\n", "k", &data) == 0);
    assert (strcmp (data, "[]") == 0);
    free (data);
    //  Another key, a changed payload or signature
    assert (s_verify (S_PYJWT_A, "secret-tokem", &data) == TL_EPROTO && !data);
    assert (s_verify (S_PYJWT_B, "", &data) == TL_EPROTO && !data);
    char token [] = S_PYJWT_B;
    token [40] = token [40] == 'a' ? 'b' : 'a';
    assert (s_verify (token, "k", &data) == TL_EPROTO);
    strcpy (token, S_PYJWT_B);
    token [strlen (token) - 2] = 'A';
    assert (s_verify (token, "k", &data) == TL_EPROTO);
}

static void
s_test_refused (void)
{
    char *data = NULL;
    const char *bad [] = {
        "", "abc", "a.b", "a.b.c.d", "..", S_PYJWT_B ".x",
        //  alg none, and alg HS512
        "eyJhbGciOiJub25lIn0.eyJkYXRhIjoiW10ifQ.",
        "eyJhbGciOiJIUzUxMiJ9.eyJkYXRhIjoiW10ifQ.B-pWhr_Kk1_yUUaO9rWFvcLcee4XAGIzJTB9cQ8MVM8",
        //  a signature cut short
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkYXRhIjoiW10ifQ.B-pWhr_Kk1_yUUaO9rWFvcLcee4X",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert (s_verify (bad [i], "k", &data) == TL_EINVAL);
        assert (data == NULL);
    }
    //  Right signatures over claims without a string "data"
    const char *claims [] = { "eyJkYXRhIjoxfQ", "eyJ4IjoiW10ifQ", "W10" };  //  {"data":1} {"x":"[]"} []
    for (size_t i = 0; i < sizeof claims / sizeof claims [0]; i++) {
        char token [256], mac_text [64];
        snprintf (token, sizeof token, "eyJhbGciOiJIUzI1NiJ9.%s", claims [i]);
        unsigned char mac [crypto_auth_hmacsha256_BYTES];
        s_hmac ("k", 1, token, strlen (token), mac);
        s_b64_encode (mac, sizeof mac, mac_text);
        strcat (token, ".");
        strcat (token, mac_text);
        assert (s_verify (token, "k", &data) == TL_EINVAL && !data);
    }
}

static void
s_test_round_trip (void)
{
    const char *texts [] = { "", "[]", "é \"quoted\" \\ \n", "[{\"endpoint\":\"x\"}]" };
    for (size_t i = 0; i < sizeof texts / sizeof texts [0]; i++) {
        char *token = an_jwt_sign_data (texts [i], "a long secret key of more than 64 bytes, "
                                        "so HMAC hashes it first ......", 75);
        assert (token);
        char *data = NULL;
        assert (an_jwt_verify_data (token, strlen (token), "a long secret key of more "
                "than 64 bytes, so HMAC hashes it first ......", 75, &data) == 0);
        assert (strcmp (data, texts [i]) == 0);
        free (data);
        free (token);
    }
    //  Signing agrees with PyJWT byte for byte (jansson writes {"data":"[]"})
    char *token = an_jwt_sign_data ("[]", "k", 1);
    assert (token && strcmp (token, S_PYJWT_B) == 0);
    free (token);
}

void
an_jwt_test (bool verbose)
{
    (void) verbose;
    assert (sodium_init () >= 0);
    s_test_base64url ();
    s_test_pyjwt ();
    s_test_refused ();
    s_test_round_trip ();
}
