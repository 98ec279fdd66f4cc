//  auth_token.c — session tokens and mailed codes (see auth_token.h).
#include "auth_token.h"
#include "tl_error.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void
auth_token_new (char text [AUTH_TOKEN_TEXT_LEN + 1])
{
    unsigned char bytes [AUTH_TOKEN_BYTES];
    randombytes_buf (bytes, sizeof bytes);
    sodium_bin2base64 (text, AUTH_TOKEN_TEXT_LEN + 1, bytes, sizeof bytes,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (bytes, sizeof bytes);
}

bool
auth_token_valid (const char *text)
{
    if (!text)
        return false;
    size_t size = 0;
    for (; text [size] && size <= AUTH_TOKEN_TEXT_LEN; size++) {
        char c = text [size];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_'))
            return false;
    }
    return size == AUTH_TOKEN_TEXT_LEN;
}

int
auth_token_hash (const char *text, unsigned char hash [AUTH_TOKEN_HASH_BYTES])
{
    if (!auth_token_valid (text))
        return TL_EINVAL;
    crypto_generichash (hash, AUTH_TOKEN_HASH_BYTES, (const unsigned char *) text,
                        AUTH_TOKEN_TEXT_LEN, NULL, 0);
    return 0;
}

int
auth_token_hash_hex (const char *text, char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1])
{
    unsigned char hash [AUTH_TOKEN_HASH_BYTES];
    int rc = auth_token_hash (text, hash);
    if (rc == 0)
        sodium_bin2hex (hex, AUTH_TOKEN_HASH_BYTES * 2 + 1, hash, sizeof hash);
    return rc;
}

bool
auth_token_hash_equal (const unsigned char a [AUTH_TOKEN_HASH_BYTES],
                       const unsigned char b [AUTH_TOKEN_HASH_BYTES])
{
    return sodium_memcmp (a, b, AUTH_TOKEN_HASH_BYTES) == 0;
}

//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type.

void
auth_token_test (bool verbose)
{
    assert (sodium_init () >= 0);
    //  Shape: 43 base64url characters, all different
    char one [AUTH_TOKEN_TEXT_LEN + 1], two [AUTH_TOKEN_TEXT_LEN + 1];
    auth_token_new (one);
    auth_token_new (two);
    assert (strlen (one) == AUTH_TOKEN_TEXT_LEN && auth_token_valid (one));
    assert (strcmp (one, two) != 0);
    //  256 bits: 43 characters of 6 bits carry 258, the last holds 4 of them
    assert (AUTH_TOKEN_BYTES * 8 == 256 && (AUTH_TOKEN_BYTES * 8 + 5) / 6 == AUTH_TOKEN_TEXT_LEN);
    unsigned char raw [AUTH_TOKEN_BYTES + 1];
    size_t raw_size = 0;
    assert (sodium_base642bin (raw, sizeof raw, one, strlen (one), NULL, &raw_size, NULL,
                               sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
    assert (raw_size == AUTH_TOKEN_BYTES);
    //  Randomness, roughly: 1000 tokens, no repeats, every character used
    int seen [128] = { 0 };
    char previous [AUTH_TOKEN_TEXT_LEN + 1] = "";
    for (int i = 0; i < 1000; i++) {
        char token [AUTH_TOKEN_TEXT_LEN + 1];
        auth_token_new (token);
        assert (strcmp (token, previous) != 0);
        for (int c = 0; c < AUTH_TOKEN_TEXT_LEN - 1; c++)
            seen [(int) token [c]]++;
        strcpy (previous, token);
    }
    int used = 0;
    for (int c = 0; c < 128; c++)
        used += seen [c] > 0;
    assert (used == 64);

    //  Refused shapes
    assert (!auth_token_valid (NULL));
    assert (!auth_token_valid (""));
    char bad [AUTH_TOKEN_TEXT_LEN + 2];
    strcpy (bad, one);
    bad [AUTH_TOKEN_TEXT_LEN - 1] = 0;
    assert (!auth_token_valid (bad));                   //  short
    strcpy (bad, one);
    strcat (bad, "A");
    assert (!auth_token_valid (bad));                   //  long
    strcpy (bad, one);
    bad [5] = '+';
    assert (!auth_token_valid (bad));                   //  not url-safe
    bad [5] = '=';
    assert (!auth_token_valid (bad));
    bad [5] = ' ';
    assert (!auth_token_valid (bad));

    //  Hashes: stable, different per token, equal only to themselves
    unsigned char h1 [AUTH_TOKEN_HASH_BYTES], h1b [AUTH_TOKEN_HASH_BYTES],
                  h2 [AUTH_TOKEN_HASH_BYTES];
    assert (auth_token_hash (one, h1) == 0);
    assert (auth_token_hash (one, h1b) == 0);
    assert (auth_token_hash (two, h2) == 0);
    assert (auth_token_hash_equal (h1, h1b));
    assert (!auth_token_hash_equal (h1, h2));
    h1b [31] ^= 1;
    assert (!auth_token_hash_equal (h1, h1b));
    assert (auth_token_hash ("short", h1) == TL_EINVAL);
    //  The stored form is BLAKE2b-256 of the text, and never the text
    unsigned char expect [32];
    crypto_generichash (expect, 32, (const unsigned char *) one, strlen (one), NULL, 0);
    assert (auth_token_hash (one, h1) == 0 && memcmp (expect, h1, 32) == 0);
    char hex [AUTH_TOKEN_HASH_BYTES * 2 + 1];
    assert (auth_token_hash_hex (one, hex) == 0 && strlen (hex) == 64);
    assert (strstr (hex, one) == NULL);
    char expect_hex [65];
    sodium_bin2hex (expect_hex, sizeof expect_hex, expect, 32);
    assert (strcmp (hex, expect_hex) == 0);
    assert (auth_token_hash_hex ("x", hex) == TL_EINVAL);
    if (verbose)
        printf ("(auth_token: shape, randomness, hashes) ");
}
