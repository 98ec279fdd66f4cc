//  fuzz_upload.c — fuzz target for the upload service's readers of
//  untrusted bytes (services/upload): the type and header-size sniffing
//  (up_sniff), the strict base64 and data-URL reader (up_data_url) and the
//  multipart/form-data reader (up_multipart). The first byte picks the
//  reader (its value modulo 3); the rest is its input. For multipart, the
//  input's first line is the Content-Type header and the rest the body.
//  Checks: a sniffed image has both sides non-zero and a known type; a
//  decoded data URL encodes back to exactly its base64 text (strict means
//  one text per bytes); a multipart file lies inside the body.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_error.h"
#include "up_data_url.h"
#include "up_multipart.h"
#include "up_sniff.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static void
s_sniff (const uint8_t *data, size_t size)
{
    up_info_t info;
    int rc = up_sniff (data, size, &info);
    s_check (rc == 0 || rc == TL_ETYPE || rc == TL_EINVAL);
    if (rc == 0)
        s_check (info.type != UP_TYPE_NONE && info.width > 0 && info.height > 0
                 && up_sniff_mime (info.type));
    if (rc == TL_ETYPE)
        s_check (info.type == UP_TYPE_NONE);
    if (rc)
        s_check (info.width == 0 && info.height == 0);
}

static void
s_base64 (const uint8_t *bytes, size_t size, char *out)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t at = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t group = (uint32_t) bytes [i] << 16
                       | (i + 1 < size ? (uint32_t) bytes [i + 1] << 8 : 0)
                       | (i + 2 < size ? bytes [i + 2] : 0);
        out [at++] = alphabet [(group >> 18) & 63];
        out [at++] = alphabet [(group >> 12) & 63];
        out [at++] = i + 1 < size ? alphabet [(group >> 6) & 63] : '=';
        out [at++] = i + 2 < size ? alphabet [group & 63] : '=';
    }
    out [at] = 0;
}

static void
s_data_url (const uint8_t *data, size_t size)
{
    char mime [128];
    uint8_t *bytes = NULL;
    size_t length = 0;
    int rc = up_data_url_decode ((const char *) data, size, 1 << 16, mime, sizeof mime,
                                 &bytes, &length);
    s_check (rc == 0 || rc == TL_EINVAL || rc == TL_ETOOBIG);
    if (rc) {
        s_check (!bytes && length == 0);
        return;
    }
    s_check (length <= (1 << 16) && strlen (mime) < sizeof mime);
    char *again = malloc ((length + 2) / 3 * 4 + 1);
    s_check (again);
    s_base64 (bytes, length, again);
    const char *comma = memchr (data, ',', size);
    s_check (comma);
    size_t text = size - (size_t) (comma + 1 - (const char *) data);
    s_check (strlen (again) == text && memcmp (again, comma + 1, text) == 0);
    free (again);
    free (bytes);
}

static void
s_multipart (const uint8_t *data, size_t size)
{
    const uint8_t *eol = memchr (data, '\n', size);
    size_t head = eol ? (size_t) (eol - data) : size;
    if (head > 200)
        return;
    char type [201];
    memcpy (type, data, head);
    type [head] = 0;
    if (strlen (type) != head)
        return;                         //  a NUL in the header line
    const uint8_t *body = eol ? eol + 1 : data + size;
    size_t body_size = size - (size_t) (body - data);
    up_part_t file;
    int rc = up_multipart_file (type, body, body_size, &file);
    s_check (rc == 0 || rc == TL_EINVAL || rc == TL_ENOTFOUND || rc == TL_EEXIST);
    if (rc == 0) {
        s_check (file.data >= body && file.data + file.size <= body + body_size);
        s_check (strlen (file.content_type) < sizeof file.content_type);
    }
    else
        s_check (file.data == NULL && file.size == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    //  a copy of exactly the input's size, so that a read past it is seen
    size_t rest = size - 1;
    uint8_t *input = malloc (rest ? rest : 1);
    if (!input)
        return 0;
    memcpy (input, data + 1, rest);
    switch (data [0] % 3) {
        case 0: s_sniff (input, rest); break;
        case 1: s_data_url (input, rest); break;
        default: s_multipart (input, rest); break;
    }
    free (input);
    return 0;
}
