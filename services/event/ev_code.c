//  ev_code.c — the codes of role invites (ev_code.h).
#include "ev_code.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void
ev_code_new (char text [EV_CODE_TEXT_LEN + 1])
{
    unsigned char bytes [EV_CODE_BYTES];
    randombytes_buf (bytes, sizeof bytes);
    sodium_bin2base64 (text, EV_CODE_TEXT_LEN + 1, bytes, sizeof bytes,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (bytes, sizeof bytes);
}

bool
ev_code_valid (const char *text)
{
    if (!text)
        return false;
    size_t size = 0;
    for (; text [size] && size <= EV_CODE_TEXT_LEN; size++) {
        char c = text [size];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_'))
            return false;
    }
    return size == EV_CODE_TEXT_LEN;
}

int
ev_code_hash_hex (const char *text, char hex [EV_CODE_HASH_BYTES * 2 + 1])
{
    if (!ev_code_valid (text))
        return -1;
    unsigned char hash [EV_CODE_HASH_BYTES];
    crypto_generichash (hash, sizeof hash, (const unsigned char *) text, EV_CODE_TEXT_LEN,
                        NULL, 0);
    sodium_bin2hex (hex, EV_CODE_HASH_BYTES * 2 + 1, hash, sizeof hash);
    return 0;
}

bool
ev_code_hex_equal (const char *a, const char *b)
{
    if (!a || !b || strlen (a) != EV_CODE_HASH_BYTES * 2 || strlen (b) != EV_CODE_HASH_BYTES * 2)
        return false;
    return sodium_memcmp (a, b, EV_CODE_HASH_BYTES * 2) == 0;
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_test_codes_are_random_base64url_of_256_bits (void)
{
    char one [EV_CODE_TEXT_LEN + 1], two [EV_CODE_TEXT_LEN + 1];
    ev_code_new (one);
    ev_code_new (two);
    assert (strlen (one) == EV_CODE_TEXT_LEN && ev_code_valid (one) && ev_code_valid (two));
    assert (strcmp (one, two) != 0);
    assert (EV_CODE_BYTES * 8 == 256 && (EV_CODE_BYTES * 8 + 5) / 6 == EV_CODE_TEXT_LEN);
}

static void
s_test_only_codes_hash (void)
{
    char code [EV_CODE_TEXT_LEN + 1], hex [EV_CODE_HASH_BYTES * 2 + 1], again [sizeof hex];
    ev_code_new (code);
    assert (ev_code_hash_hex (code, hex) == 0 && strlen (hex) == 64);
    assert (ev_code_hash_hex (code, again) == 0 && ev_code_hex_equal (hex, again));
    code [0] = code [0] == 'A' ? 'B' : 'A';
    assert (ev_code_hash_hex (code, again) == 0 && !ev_code_hex_equal (hex, again));
    assert (ev_code_hash_hex ("short", hex) == -1);
    assert (ev_code_hash_hex (NULL, hex) == -1);
    char bad [EV_CODE_TEXT_LEN + 1];
    memset (bad, 'a', EV_CODE_TEXT_LEN);
    bad [EV_CODE_TEXT_LEN] = 0;
    bad [10] = '+';                     //  base64, not base64url
    assert (!ev_code_valid (bad));
    bad [10] = 'a';
    assert (ev_code_valid (bad));
    char longer [EV_CODE_TEXT_LEN + 2];
    memset (longer, 'a', sizeof longer - 1);
    longer [sizeof longer - 1] = 0;
    assert (!ev_code_valid (longer));
    assert (!ev_code_hex_equal (hex, "00"));
}

void
ev_code_test (bool verbose)
{
    if (verbose)
        printf (" * ev_code: ");
    assert (sodium_init () >= 0);
    s_test_codes_are_random_base64url_of_256_bits ();
    s_test_only_codes_hash ();
    if (verbose)
        printf ("OK\n");
}
