//  up_data_url.c — strict base64 and data URLs (up_data_url.h).
#include "up_data_url.h"
#include "tl_error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  The value of a base64 character, or -1.
static int
s_value (unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t
up_base64_max (size_t len)
{
    return len / 4 * 3;
}

int
up_base64_decode (const char *text, size_t len, uint8_t *out, size_t out_size, size_t *used)
{
    assert (used);
    *used = 0;
    if (len % 4 != 0 || (len && !text))
        return TL_EINVAL;
    size_t pad = 0;
    if (len >= 1 && text [len - 1] == '=')
        pad++;
    if (len >= 2 && text [len - 2] == '=')
        pad++;
    size_t size = len / 4 * 3 - pad;
    if (size > out_size)
        return TL_ETOOBIG;
    size_t at = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v [4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char) text [i + k];
            if (c == '=' && last && k >= 4 - (int) pad) {
                v [k] = 0;
                continue;
            }
            v [k] = s_value (c);
            if (v [k] < 0)
                return TL_EINVAL;       //  alphabet, or '=' inside
        }
        uint32_t group = (uint32_t) v [0] << 18 | (uint32_t) v [1] << 12
                       | (uint32_t) v [2] << 6 | (uint32_t) v [3];
        if (last && pad == 2 && (v [1] & 0x0f))
            return TL_EINVAL;           //  unused bits set
        if (last && pad == 1 && (v [2] & 0x03))
            return TL_EINVAL;
        size_t bytes = last ? 3 - pad : 3;
        out [at++] = (uint8_t) (group >> 16);
        if (bytes > 1)
            out [at++] = (uint8_t) (group >> 8);
        if (bytes > 2)
            out [at++] = (uint8_t) group;
    }
    *used = at;
    return 0;
}

int
up_data_url_decode (const char *text, size_t len, size_t max, char *mime, size_t mime_size,
                    uint8_t **data_p, size_t *size_p)
{
    assert (mime && mime_size && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    *mime = 0;
    if (!text || len < 5 || strncasecmp (text, "data:", 5) != 0)
        return TL_EINVAL;
    const char *comma = memchr (text, ',', len);
    if (!comma)
        return TL_EINVAL;
    //  The head: "data:" [type] *(";" param) ";base64"
    const char *head = text + 5;
    size_t head_len = (size_t) (comma - head);
    if (head_len < 7 || strncasecmp (comma - 7, ";base64", 7) != 0)
        return TL_EINVAL;
    size_t type_len = 0;                //  within the head: `text` has no NUL
    while (type_len < head_len && head [type_len] != ';')
        type_len++;
    if (type_len >= mime_size)
        return TL_EINVAL;
    for (size_t i = 0; i < head_len; i++)
        if ((unsigned char) head [i] <= ' ' || (unsigned char) head [i] >= 0x7f)
            return TL_EINVAL;
    const char *b64 = comma + 1;
    size_t b64_len = len - (size_t) (b64 - text);
    if (b64_len == 0 || up_base64_max (b64_len) > max + 2)
        return b64_len ? TL_ETOOBIG : TL_EINVAL;
    uint8_t *data = malloc (up_base64_max (b64_len) + 1);
    if (!data)
        return TL_ENOMEM;
    size_t used = 0;
    int rc = up_base64_decode (b64, b64_len, data, up_base64_max (b64_len), &used);
    if (rc == 0 && used > max)
        rc = TL_ETOOBIG;
    if (rc) {
        free (data);
        return rc;
    }
    memcpy (mime, head, type_len);
    mime [type_len] = 0;
    *data_p = data;
    *size_p = used;
    return 0;
}

//  ---------------------------------------------------------------------
//  Self-test

static int
s_decode (const char *text, char *out, size_t size)
{
    size_t used = 0;
    int rc = up_base64_decode (text, strlen (text), (uint8_t *) out, size, &used);
    if (rc == 0)
        out [used] = 0;
    return rc;
}

static void
s_test_base64_decodes_rfc4648_vectors (void)
{
    const char *vectors [][2] = {
        { "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
        { "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" }, { "Zm9vYmFy", "foobar" },
    };
    char out [16];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors [0]; i++) {
        assert (s_decode (vectors [i][0], out, sizeof out - 1) == 0);
        assert (strcmp (out, vectors [i][1]) == 0);
    }
}

static void
s_test_base64_refuses_what_is_not_strict (void)
{
    const char *bad [] = {
        "Zg=", "Zg", "Z===", "Zm9v\n", " Zm9v", "Zm-v", "Zm_v", "Zg==Zg==", "Z=g=",
        "Zh==",             //  unused bits set
        "Zm9=",             //  likewise
        "=Zm9",
    };
    char out [16];
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert (s_decode (bad [i], out, sizeof out - 1) == TL_EINVAL);
    assert (s_decode ("Zm9vYmFy", out, 5) == TL_ETOOBIG);
}

static void
s_test_data_url_gives_type_and_bytes (void)
{
    const char *url = "data:image/png;base64,iVBORw0KGgo=";
    char mime [64];
    uint8_t *data = NULL;
    size_t size = 0;
    assert (up_data_url_decode (url, strlen (url), 100, mime, sizeof mime, &data, &size) == 0);
    assert (strcmp (mime, "image/png") == 0 && size == 8);
    assert (memcmp (data, "\x89PNG\r\n\x1a\n", 8) == 0);
    free (data);
    const char *untyped = "data:;base64,Zm9v";
    assert (up_data_url_decode (untyped, strlen (untyped), 100, mime, sizeof mime,
                                &data, &size) == 0);
    assert (*mime == 0 && size == 3);
    free (data);
}

static void
s_test_data_url_refusals (void)
{
    const char *bad [] = {
        "data:image/png,abc", "data:image/png;base64", "image/png;base64,Zm9v",
        "data:image/png;base64,", "data:image/png;base64,Zm9v=", "data:image/p ng;base64,Zm9v",
        "data:image/png;base64,Zm9v Zm9v",
    };
    char mime [64];
    uint8_t *data = NULL;
    size_t size = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert (up_data_url_decode (bad [i], strlen (bad [i]), 100, mime, sizeof mime,
                                    &data, &size) == TL_EINVAL);
        assert (!data && size == 0);
    }
    const char *big = "data:image/png;base64,Zm9vYmFy";
    assert (up_data_url_decode (big, strlen (big), 5, mime, sizeof mime, &data, &size)
            == TL_ETOOBIG && !data);
    assert (up_data_url_decode (big, strlen (big), 6, mime, sizeof mime, &data, &size) == 0);
    free (data);
    char small [4];
    assert (up_data_url_decode (big, strlen (big), 6, small, sizeof small, &data, &size)
            == TL_EINVAL && !data);
}

void
up_data_url_test (bool verbose)
{
    (void) verbose;
    s_test_base64_decodes_rfc4648_vectors ();
    s_test_base64_refuses_what_is_not_strict ();
    s_test_data_url_gives_type_and_bytes ();
    s_test_data_url_refusals ();
}
