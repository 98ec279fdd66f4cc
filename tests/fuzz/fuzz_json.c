//  fuzz_json.c — fuzz target for the gateway's JSON transcoder (tl_json).
//  An input is a request body: it is parsed (tl_json_parse), validated
//  against a fixed `fields` declaration, packed as MessagePack, unpacked
//  with msgpack-c, written back as JSON (tl_json_from_mp) and parsed again:
//  the second tree must equal the first. An input starting with the byte
//  0xC1 (never valid JSON, never valid MessagePack) is instead a reply body:
//  the rest is unpacked through tl_mp_unpack and written as JSON, which must
//  be clean UTF-8 text that jansson can read, and is also written straight
//  from the bytes (tl_json_from_mp_bytes), which must give the same code
//  and text, and refuse, never overread, what cannot be unpacked. Every input also checks
//  tl_json_utf8_valid against a second, independent UTF-8 decoder.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <msgpack.h>

#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "tl_limits.h"
#include "tl_mp.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static const char *s_fields =
    "{\"name\": {\"type\": \"string\", \"required\": true, \"max\": 100},"
    " \"description\": {\"type\": \"string\", \"max\": 1000},"
    " \"type\": {\"type\": \"string\", \"required\": true},"
    " \"choices\": {\"type\": \"array\", \"max\": 20},"
    " \"value\": {\"type\": \"number\"},"
    " \"count\": {\"type\": \"integer\"},"
    " \"hidden\": {\"type\": \"boolean\"},"
    " \"settings\": {\"type\": \"object\"}}";

//  A decoder written differently from tl_json_utf8_valid: decode each code
//  point, then check its range.

static bool
s_utf8_reference (const uint8_t *text, size_t size)
{
    static const uint32_t smallest [5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t index = 0;
    while (index < size) {
        uint8_t c = text [index];
        size_t length;
        uint32_t point;
        if (c < 0x80) {
            index++;
            continue;
        }
        else
        if ((c & 0xE0) == 0xC0) {
            length = 2;
            point = c & 0x1F;
        }
        else
        if ((c & 0xF0) == 0xE0) {
            length = 3;
            point = c & 0x0F;
        }
        else
        if ((c & 0xF8) == 0xF0) {
            length = 4;
            point = c & 0x07;
        }
        else
            return false;
        if (size - index < length)
            return false;
        for (size_t next = 1; next < length; next++) {
            if ((text [index + next] & 0xC0) != 0x80)
                return false;
            point = (point << 6) | (text [index + next] & 0x3F);
        }
        if (point < smallest [length] || point > 0x10FFFF
        ||  (point >= 0xD800 && point <= 0xDFFF))
            return false;
        index += length;
    }
    return true;
}

static void
s_check_error_text (const char *errbuf)
{
    s_check (errbuf [0]);
    for (const char *c = errbuf; *c; c++)
        s_check (*c >= 0x20 && *c < 0x7f);
}

//  A reply body: MessagePack in, JSON text out.

static void
s_reply (const uint8_t *data, size_t size)
{
    //  Straight from the bytes, whatever they are: a code, or JSON text
    tl_buf_t *streamed = tl_buf_new (TL_MAX_FRAME_BYTES);
    s_check (streamed);
    int streamed_rc = tl_json_from_mp_bytes ((const char *) data, size, streamed);
    s_check (streamed_rc == 0 || streamed_rc == TL_EINVAL || streamed_rc == TL_ETYPE
             || streamed_rc == TL_ETOOBIG);
    s_check ((streamed_rc == 0) == (tl_buf_size (streamed) > 0));
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 4096)) {
        tl_buf_destroy (&streamed);
        return;
    }
    msgpack_object obj;
    if (tl_mp_unpack ((const char *) data, size, &zone, &obj) == 0) {
        tl_buf_t *out = tl_buf_new (TL_MAX_FRAME_BYTES);
        s_check (out);
        int rc = tl_json_from_mp (&obj, out);
        s_check (rc == 0 || rc == TL_EINVAL || rc == TL_ETYPE || rc == TL_ETOOBIG);
        //  The tree and the bytes give the same code and the same text
        s_check (rc == streamed_rc);
        s_check (tl_buf_size (out) == tl_buf_size (streamed));
        s_check (memcmp (tl_buf_data (out), tl_buf_data (streamed), tl_buf_size (out)) == 0);
        if (rc == 0) {
            const char *text = tl_buf_data (out);
            size_t length = tl_buf_size (out);
            s_check (length > 0 && strlen (text) == length);
            s_check (tl_json_utf8_valid (text, length));
            for (size_t index = 0; index < length; index++)
                s_check ((unsigned char) text [index] >= 0x20);
            //  jansson reads it back, unless an integer is above INT64_MAX
            //  or a key holds "\u0000" (valid JSON that jansson refuses).
            json_error_t error;
            json_t *back = json_loadb (text, length,
                                       JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
            bool excused = !back
                && (json_error_code (&error) == json_error_numeric_overflow
                ||  json_error_code (&error) == json_error_null_byte_in_key);
            if (!back && !excused)
                fprintf (stderr, "%s\n%s\n", error.text, text);
            s_check (back || excused);
            json_decref (back);
        }
        else
            s_check (tl_buf_size (out) == 0);
        tl_buf_destroy (&out);
    }
    msgpack_zone_destroy (&zone);
    tl_buf_destroy (&streamed);
}

//  A request body: JSON in, MessagePack out, and back.

static void
s_request (const uint8_t *data, size_t size, const json_t *fields)
{
    char errbuf [256];
    int err = 1;
    json_t *root = tl_json_parse ((const char *) data, size, errbuf,
                                  sizeof (errbuf), &err);
    if (!root) {
        s_check (err == TL_EINVAL || err == TL_ETOOBIG || err == TL_ENOMEM);
        s_check_error_text (errbuf);
        return;
    }
    s_check (err == 0);

    json_t *errors = (json_t *) 1;
    int rc = tl_json_validate (root, fields, &errors);
    s_check (rc == 0 || rc == TL_EINVAL);
    s_check ((rc == 0) == (errors == NULL));
    s_check (rc == 0 || json_object_size (errors) > 0);
    json_decref (errors);

    tl_buf_t *mp = tl_buf_new (TL_MAX_FRAME_BYTES);
    s_check (mp);
    msgpack_packer pk;
    msgpack_packer_init (&pk, mp, tl_buf_mp_write);
    s_check (tl_json_pack (root, &pk) == 0);

    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&result, tl_buf_data (mp),
                                                     tl_buf_size (mp), &offset);
    s_check (ret == MSGPACK_UNPACK_SUCCESS);
    s_check (offset == tl_buf_size (mp));

    tl_buf_t *out = tl_buf_new (TL_MAX_FRAME_BYTES);
    s_check (out);
    rc = tl_json_from_mp (&result.data, out);
    if (rc)
        fprintf (stderr, "from_mp: %d\n", rc);
    s_check (rc == 0);
    json_t *back = tl_json_parse (tl_buf_data (out), tl_buf_size (out),
                                  errbuf, sizeof (errbuf), &err);
    if (!back)
        fprintf (stderr, "reparse: %s\n%s\n", errbuf, tl_buf_data (out));
    s_check (back);
    s_check (json_equal (root, back));
    json_decref (back);
    tl_buf_destroy (&out);
    msgpack_unpacked_destroy (&result);
    tl_buf_destroy (&mp);
    json_decref (root);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static json_t *fields = NULL;
    if (!fields) {
        fields = json_loads (s_fields, 0, NULL);
        s_check (fields);
    }
    s_check (tl_json_utf8_valid ((const char *) data, size)
             == s_utf8_reference (data, size));
    if (size > 0 && data [0] == 0xC1)
        s_reply (data + 1, size - 1);
    else
        s_request (data, size, fields);
    return 0;
}
