//  tl_json.c — JSON ⇄ MessagePack transcoding and `fields` validation
//  (see tl_json.h). Every walk over a tree checks its depth before it
//  recurses, so the C stack is bounded by the limits in tl_limits.h, not by
//  what a client or a service sent.
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"
#include "tl_json.h"

#define s_streq(a,b) (strcmp ((a), (b)) == 0)



//  Returns 0 when containers in `value` nest at most `max_depth` deep
//  (`depth` counts the containers above `value`), else TL_ETOOBIG.

static int
s_check_depth (const json_t *value, int depth)
{
    if (json_is_array (value)) {
        if (depth >= TL_JSON_MAX_DEPTH)
            return TL_ETOOBIG;
        size_t index;
        const json_t *item;
        json_array_foreach (value, index, item)
            if (s_check_depth (item, depth + 1))
                return TL_ETOOBIG;
    }
    else
    if (json_is_object (value)) {
        if (depth >= TL_JSON_MAX_DEPTH)
            return TL_ETOOBIG;
        const char *key;
        json_t *item;
        json_object_foreach ((json_t *) value, key, item)
            if (s_check_depth (item, depth + 1))
                return TL_ETOOBIG;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Parses JSON text into a jansson tree, bounded in depth.

json_t *
tl_json_parse (const char *json, size_t len,
               char *errbuf, size_t errsize, int *err)
{
    int code = 0;
    json_t *root = NULL;
    if (!json || len == 0) {
        code = TL_EINVAL;
        tl_error_format (errbuf, errsize, "invalid JSON: empty body");
    }
    else {
        //  Not JSON_ALLOW_NUL: "\u0000" is refused, and so is a raw NUL
        //  byte (a control character in a string, or no token at all).
        //  jansson itself stops at JSON_PARSER_MAX_DEPTH (2048) levels.
        json_error_t error;
        root = json_loadb (json, len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
        if (!root) {
            switch (json_error_code (&error)) {
                case json_error_out_of_memory:
                    code = TL_ENOMEM;
                    tl_error_format (errbuf, errsize, "out of memory");
                    break;
                case json_error_stack_overflow:
                    code = TL_ETOOBIG;
                    tl_error_format (errbuf, errsize,
                                 "JSON nested deeper than %d levels",
                                 TL_JSON_MAX_DEPTH);
                    break;
                default:
                    code = TL_EINVAL;
                    tl_error_format (errbuf, errsize,
                                 "invalid JSON at line %d, column %d: %s",
                                 error.line, error.column, error.text);
            }
        }
        else
        if (s_check_depth (root, 0)) {
            json_decref (root);
            root = NULL;
            code = TL_ETOOBIG;
            tl_error_format (errbuf, errsize, "JSON nested deeper than %d levels",
                         TL_JSON_MAX_DEPTH);
        }
    }
    if (err)
        *err = code;
    return root;
}


//  Packs one value at `depth` containers down. Returns 0 or a negative code.

static int
s_pack (const json_t *value, msgpack_packer *pk, int depth)
{
    int rc = 0;
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            if (depth >= TL_JSON_MAX_DEPTH)
                return TL_ETOOBIG;
            rc = msgpack_pack_map (pk, json_object_size (value));
            const char *key;
            size_t key_len;
            json_t *item;
            json_object_keylen_foreach ((json_t *) value, key, key_len, item) {
                if (rc)
                    break;
                rc = msgpack_pack_str_with_body (pk, key, key_len);
                if (rc == 0)
                    rc = s_pack (item, pk, depth + 1);
            }
            break;
        }
        case JSON_ARRAY: {
            if (depth >= TL_JSON_MAX_DEPTH)
                return TL_ETOOBIG;
            rc = msgpack_pack_array (pk, json_array_size (value));
            size_t index;
            const json_t *item;
            json_array_foreach (value, index, item) {
                if (rc)
                    break;
                rc = s_pack (item, pk, depth + 1);
            }
            break;
        }
        case JSON_STRING:
            rc = msgpack_pack_str_with_body (pk, json_string_value (value),
                                             json_string_length (value));
            break;
        case JSON_INTEGER:
            rc = msgpack_pack_int64 (pk, (int64_t) json_integer_value (value));
            break;
        case JSON_REAL:
            rc = msgpack_pack_double (pk, json_real_value (value));
            break;
        case JSON_TRUE:
            rc = msgpack_pack_true (pk);
            break;
        case JSON_FALSE:
            rc = msgpack_pack_false (pk);
            break;
        case JSON_NULL:
            rc = msgpack_pack_nil (pk);
            break;
    }
    //  A write callback may return any non-zero value on failure.
    return rc == 0? 0: rc < 0? rc: TL_EIO;
}


//  --------------------------------------------------------------------------
//  Packs a jansson tree as MessagePack.

int
tl_json_pack (const json_t *value, msgpack_packer *pk)
{
    assert (value);
    assert (pk);
    return s_pack (value, pk, 0);
}


//  --------------------------------------------------------------------------
//  Parses JSON text and packs it as MessagePack.

int
tl_json_to_mp (const char *json, size_t len, msgpack_packer *pk,
               char *errbuf, size_t errsize)
{
    assert (pk);
    int rc;
    json_t *root = tl_json_parse (json, len, errbuf, errsize, &rc);
    if (!root)
        return rc;
    rc = tl_json_pack (root, pk);
    if (rc == TL_ETOOBIG)
        tl_error_format (errbuf, errsize, "JSON too big");
    else
    if (rc)
        tl_error_format (errbuf, errsize, "cannot pack JSON (error %d)", rc);
    json_decref (root);
    return rc;
}


//  --------------------------------------------------------------------------
//  Strict UTF-8 check (RFC 3629, table 3-7 of the Unicode standard).

bool
tl_json_utf8_valid (const char *data, size_t size)
{
    const unsigned char *byte = (const unsigned char *) data;
    size_t index = 0;
    while (index < size) {
        //  ASCII eight bytes at a time
        uint64_t word;
        while (size - index >= 8
           &&  (memcpy (&word, byte + index, 8), (word & 0x8080808080808080ULL) == 0))
            index += 8;
        if (index == size)
            break;
        unsigned char c = byte [index];
        if (c < 0x80) {
            index++;
            continue;
        }
        size_t length;
        unsigned char low = 0x80, high = 0xBF;  //  range of the 2nd byte
        if (c >= 0xC2 && c <= 0xDF)
            length = 2;
        else
        if (c >= 0xE0 && c <= 0xEF) {
            length = 3;
            if (c == 0xE0)
                low = 0xA0;             //  no overlongs
            else
            if (c == 0xED)
                high = 0x9F;            //  no surrogates
        }
        else
        if (c >= 0xF0 && c <= 0xF4) {
            length = 4;
            if (c == 0xF0)
                low = 0x90;             //  no overlongs
            else
            if (c == 0xF4)
                high = 0x8F;            //  nothing above U+10FFFF
        }
        else
            return false;               //  80..C1, F5..FF
        if (length > size - index)
            return false;
        if (byte [index + 1] < low || byte [index + 1] > high)
            return false;
        for (size_t next = 2; next < length; next++)
            if ((byte [index + next] & 0xC0) != 0x80)
                return false;
        index += length;
    }
    return true;
}


//  Appends a str as a JSON string: RFC 8259 escapes, plus U+2028 and
//  U+2029 (line terminators in JavaScript source).

static int
s_write_str (tl_buf_t *out, const char *text, size_t size)
{
    if (size == 0)
        return tl_buf_append (out, "\"\"", 2);    //  msgpack-c may give NULL
    if (!tl_json_utf8_valid (text, size))
        return TL_EINVAL;
    const unsigned char *byte = (const unsigned char *) text;
    //  Most strings need no escape: written in one piece. Eight bytes at
    //  a time while none is a control, a quote, a backslash or 0xE2 (the
    //  lead byte of U+2028/9): the classic "has a zero byte" and "has a
    //  byte less than n" word tests, exact for whether any byte is one
    size_t plain = 0;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (uint64_t word; size - plain >= 8; plain += 8) {
        memcpy (&word, byte + plain, 8);
        uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\'),
                 lead = word ^ (ones * 0xE2);
        uint64_t special = ((word - ones * 0x20) & ~word)
                         | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)
                         | ((lead - ones) & ~lead);
        if (special & highs)
            break;
    }
    while (plain < size && byte [plain] >= 0x20 && byte [plain] != '"'
       &&  byte [plain] != '\\' && byte [plain] != 0xE2)
        plain++;
    if (plain == size) {
        char *room = size <= SIZE_MAX - 2 ? tl_buf_extend (out, size + 2) : NULL;
        if (!room)
            return size + 2 > tl_buf_max (out) - tl_buf_size (out) ? TL_ETOOBIG : TL_ENOMEM;
        room [0] = '"';
        memcpy (room + 1, text, size);
        room [size + 1] = '"';
        return 0;
    }
    int rc = tl_buf_append (out, "\"", 1);
    size_t start = 0;           //  first byte not yet written
    for (size_t index = 0; rc == 0 && index < size; index++) {
        unsigned char c = byte [index];
        //  Most bytes are written as they are: ASCII that is not a quote,
        //  a backslash or a control, and UTF-8 other than U+2028/9
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0xE2)
            continue;
        char escape [8];
        const char *replace = NULL;
        size_t skip = 1;
        if (c == '"')
            replace = "\\\"";
        else
        if (c == '\\')
            replace = "\\\\";
        else
        if (c < 0x20) {
            switch (c) {
                case '\b': replace = "\\b"; break;
                case '\f': replace = "\\f"; break;
                case '\n': replace = "\\n"; break;
                case '\r': replace = "\\r"; break;
                case '\t': replace = "\\t"; break;
                default:
                    snprintf (escape, sizeof (escape), "\\u%04X", c);
                    replace = escape;
            }
        }
        else
        if (size - index >= 3 && byte [index + 1] == 0x80
        &&  (byte [index + 2] == 0xA8 || byte [index + 2] == 0xA9)) {
            replace = byte [index + 2] == 0xA8? "\\u2028": "\\u2029";
            skip = 3;
        }
        if (replace) {
            rc = tl_buf_append (out, text + start, index - start);
            if (rc == 0)
                rc = tl_buf_append (out, replace, strlen (replace));
            index += skip - 1;
            start = index + 1;
        }
    }
    if (rc == 0)
        rc = tl_buf_append (out, text + start, size - start);
    if (rc == 0)
        rc = tl_buf_append (out, "\"", 1);
    return rc;
}


//  Appends a finite float with the fewest digits that read back to the
//  same value (as a float32 when `single`), always as a JSON real.

//  The fast way for what people mostly write (2.5, -12.34): a value that
//  is exactly the nearest double to a decimal of at most 6 decimals and 15
//  significant digits, at least 1e-4 in magnitude. Writes that decimal,
//  which is what the "%.15g" below would write (rounding to 15 digits
//  lands on it; trailing zeros are not written), without printf and
//  strtod. Returns false for any other value.
static bool
s_real_short (double value, char text [48])
{
    static const double scale [] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };
    double magnitude = fabs (value);
    if (!(magnitude >= 1e-4 && magnitude < 1e15))
        return false;
    for (int decimals = 0; decimals <= 6; decimals++) {
        double scaled = magnitude * scale [decimals];
        if (scaled >= 1e15)
            return false;
        uint64_t digits = (uint64_t) (scaled + 0.5);
        //  m / 10^k rounds as strtod ("m e-k") does: both are exact operands
        if ((double) digits / scale [decimals] != magnitude)
            continue;
        char reversed [24];
        int count = 0;
        for (int i = 0; i < decimals; i++, digits /= 10)
            reversed [count++] = (char) ('0' + digits % 10);
        if (decimals == 0)
            reversed [count++] = '0';       //  "12.0": a real, never an integer
        reversed [count++] = '.';
        do
            reversed [count++] = (char) ('0' + digits % 10);
        while (digits /= 10);
        char *c = text;
        if (value < 0)
            *c++ = '-';
        while (count)
            *c++ = reversed [--count];
        *c = 0;
        return true;
    }
    return false;
}

//  Any finite value, by printf: the shortest "%.<n>g" that reads back.
static void
s_real_printf (double value, bool single, char text [48])
{
    int precision = single? 6: 15;
    int last = single? 9: 17;
    for (; precision <= last; precision++) {
        snprintf (text, 48, "%.*g", precision, value);
        double back = strtod (text, NULL);
        if (single? (float) back == (float) value: back == value)
            break;
    }
    //  A locale with a decimal comma would otherwise break the JSON.
    for (char *c = text; *c; c++)
        if (*c == ',')
            *c = '.';
    if (!strpbrk (text, ".eE"))
        strcat (text, ".0");    //  "1" would read back as an integer
}

static int
s_write_real (tl_buf_t *out, double value, bool single)
{
    if (!isfinite (value))
        return TL_EINVAL;
    char text [48];
    if (single || !s_real_short (value, text))
        s_real_printf (value, single, text);
    return tl_buf_append (out, text, strlen (text));
}


//  Appends one object at `depth` containers down.

static int
s_write (const msgpack_object *obj, tl_buf_t *out, int depth)
{
    char text [32];
    int rc = 0;
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return tl_buf_append (out, "null", 4);
        case MSGPACK_OBJECT_BOOLEAN:
            return obj->via.boolean? tl_buf_append (out, "true", 4)
                                   : tl_buf_append (out, "false", 5);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf (text, sizeof (text), "%" PRIu64, obj->via.u64);
            return tl_buf_append (out, text, strlen (text));
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (text, sizeof (text), "%" PRId64, obj->via.i64);
            return tl_buf_append (out, text, strlen (text));
        case MSGPACK_OBJECT_FLOAT32:
            return s_write_real (out, obj->via.f64, true);
        case MSGPACK_OBJECT_FLOAT64:
            return s_write_real (out, obj->via.f64, false);
        case MSGPACK_OBJECT_STR:
            return s_write_str (out, obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_ARRAY:
            if (depth >= TL_MP_MAX_DEPTH)
                return TL_ETOOBIG;
            rc = tl_buf_append (out, "[", 1);
            for (uint32_t index = 0; rc == 0 && index < obj->via.array.size;
                 index++) {
                if (index)
                    rc = tl_buf_append (out, ",", 1);
                if (rc == 0)
                    rc = s_write (&obj->via.array.ptr [index], out, depth + 1);
            }
            return rc? rc: tl_buf_append (out, "]", 1);
        case MSGPACK_OBJECT_MAP:
            if (depth >= TL_MP_MAX_DEPTH)
                return TL_ETOOBIG;
            rc = tl_buf_append (out, "{", 1);
            for (uint32_t index = 0; rc == 0 && index < obj->via.map.size;
                 index++) {
                const msgpack_object_kv *kv = &obj->via.map.ptr [index];
                if (kv->key.type != MSGPACK_OBJECT_STR)
                    return TL_ETYPE;
                if (index)
                    rc = tl_buf_append (out, ",", 1);
                if (rc == 0)
                    rc = s_write_str (out, kv->key.via.str.ptr,
                                      kv->key.via.str.size);
                if (rc == 0)
                    rc = tl_buf_append (out, ":", 1);
                if (rc == 0)
                    rc = s_write (&kv->val, out, depth + 1);
            }
            return rc? rc: tl_buf_append (out, "}", 1);
        case MSGPACK_OBJECT_BIN:
        case MSGPACK_OBJECT_EXT:
            return TL_ETYPE;
    }
    return TL_ETYPE;            //  a type msgpack-c added since
}


//  --------------------------------------------------------------------------
//  Writes a MessagePack object as compact JSON text.

int
tl_json_from_mp (const msgpack_object *obj, tl_buf_t *out)
{
    assert (obj);
    assert (out);
    size_t size = tl_buf_size (out);
    int rc = s_write (obj, out, 0);
    if (rc)
        tl_buf_truncate (out, size);
    return rc;
}


//  --------------------------------------------------------------------------
//  The same, streamed from MessagePack bytes: no msgpack_object tree.

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t pos;                 //  next byte to read
    tl_buf_t *out;
} s_stream_t;

//  Reads a big-endian unsigned integer of `bytes` bytes (1, 2, 4 or 8).
//  Returns false when the input has fewer left.

static bool
s_stream_be (s_stream_t *self, int bytes, uint64_t *value)
{
    if (self->size - self->pos < (size_t) bytes)
        return false;
    *value = 0;
    for (int index = 0; index < bytes; index++)
        *value = (*value << 8) | self->data [self->pos + index];
    self->pos += bytes;
    return true;
}

//  Sign-extends the low `bytes` bytes of `raw`.

static int64_t
s_stream_signed (uint64_t raw, int bytes)
{
    if (bytes == 8)
        return (int64_t) raw;
    uint64_t sign = (uint64_t) 1 << (bytes * 8 - 1);
    return (int64_t) (raw ^ sign) - (int64_t) sign;
}

//  Reads the length of a str whose header byte `b` was read: fixstr, str8,
//  str16 or str32. Returns false when `b` is no str header or the input
//  does not hold the length and the bytes it counts.

static bool
s_stream_str (s_stream_t *self, unsigned char b, const char **text, size_t *size)
{
    uint64_t length = 0;
    if (b >= 0xa0 && b <= 0xbf)
        length = b & 0x1f;
    else
    if (b < 0xd9 || b > 0xdb || !s_stream_be (self, 1 << (b - 0xd9), &length))
        return false;
    if (length > self->size - self->pos)
        return false;
    *text = (const char *) self->data + self->pos;
    *size = (size_t) length;
    self->pos += (size_t) length;
    return true;
}

//  Writes an integer of `bytes` bytes at the input, signed or not.

static int
s_stream_int (s_stream_t *self, int bytes, bool is_signed)
{
    uint64_t raw;
    if (!s_stream_be (self, bytes, &raw))
        return TL_EINVAL;
    char text [32];
    if (is_signed)
        snprintf (text, sizeof (text), "%" PRId64, s_stream_signed (raw, bytes));
    else
        snprintf (text, sizeof (text), "%" PRIu64, raw);
    return tl_buf_append (self->out, text, strlen (text));
}

static int s_stream_value (s_stream_t *self, int depth);

//  Writes a container of `count` values (a map when `is_map`: count pairs)
//  at `depth`, as s_write does.

static int
s_stream_container (s_stream_t *self, uint64_t count, bool is_map, int depth)
{
    if (depth >= TL_MP_MAX_DEPTH)
        return TL_ETOOBIG;
    int rc = tl_buf_append (self->out, is_map? "{": "[", 1);
    for (uint64_t index = 0; rc == 0 && index < count; index++) {
        //  Each value takes a byte at least: a count the input cannot back
        //  ends here, before any loop runs long
        if (self->pos >= self->size)
            return TL_EINVAL;
        if (is_map) {
            const char *key;
            size_t size;
            unsigned char b = self->data [self->pos++];
            bool is_str = (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb);
            if (!is_str)
                return TL_ETYPE;
            if (!s_stream_str (self, b, &key, &size))
                return TL_EINVAL;
            if (index)
                rc = tl_buf_append (self->out, ",", 1);
            if (rc == 0)
                rc = s_write_str (self->out, key, size);
            if (rc == 0)
                rc = tl_buf_append (self->out, ":", 1);
        }
        else
        if (index)
            rc = tl_buf_append (self->out, ",", 1);
        if (rc == 0)
            rc = s_stream_value (self, depth + 1);
    }
    return rc? rc: tl_buf_append (self->out, is_map? "}": "]", 1);
}

//  Writes the value at the input, `depth` containers down.

static int
s_stream_value (s_stream_t *self, int depth)
{
    if (self->pos >= self->size)
        return TL_EINVAL;
    unsigned char b = self->data [self->pos++];
    char text [32];
    uint64_t raw;
    if (b <= 0x7f) {
        snprintf (text, sizeof (text), "%u", (unsigned) b);
        return tl_buf_append (self->out, text, strlen (text));
    }
    if (b >= 0xe0) {
        snprintf (text, sizeof (text), "%d", (int) b - 256);
        return tl_buf_append (self->out, text, strlen (text));
    }
    if (b <= 0x8f)
        return s_stream_container (self, b & 0x0f, true, depth);
    if (b <= 0x9f)
        return s_stream_container (self, b & 0x0f, false, depth);
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
        const char *str;
        size_t size;
        if (!s_stream_str (self, b, &str, &size))
            return TL_EINVAL;
        return s_write_str (self->out, str, size);
    }
    switch (b) {
        case 0xc0:
            return tl_buf_append (self->out, "null", 4);
        case 0xc2:
            return tl_buf_append (self->out, "false", 5);
        case 0xc3:
            return tl_buf_append (self->out, "true", 4);
        case 0xca: {
            if (!s_stream_be (self, 4, &raw))
                return TL_EINVAL;
            uint32_t bits = (uint32_t) raw;
            float single;
            memcpy (&single, &bits, sizeof (single));
            return s_write_real (self->out, (double) single, true);
        }
        case 0xcb: {
            if (!s_stream_be (self, 8, &raw))
                return TL_EINVAL;
            double value;
            memcpy (&value, &raw, sizeof (value));
            return s_write_real (self->out, value, false);
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            return s_stream_int (self, 1 << (b - 0xcc), false);
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            return s_stream_int (self, 1 << (b - 0xd0), true);
        case 0xdc: case 0xdd:
            if (!s_stream_be (self, b == 0xdc? 2: 4, &raw))
                return TL_EINVAL;
            return s_stream_container (self, raw, false, depth);
        case 0xde: case 0xdf:
            if (!s_stream_be (self, b == 0xde? 2: 4, &raw))
                return TL_EINVAL;
            return s_stream_container (self, raw, true, depth);
        case 0xc4: case 0xc5: case 0xc6:                    //  bin
        case 0xc7: case 0xc8: case 0xc9:                    //  ext
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            return TL_ETYPE;
        default:
            return TL_EINVAL;                               //  0xc1
    }
}

int
tl_json_from_mp_bytes (const char *mp, size_t size, tl_buf_t *out)
{
    assert (mp || size == 0);
    assert (out);
    size_t before = tl_buf_size (out);
    s_stream_t stream = { (const unsigned char *) mp, size, 0, out };
    int rc = s_stream_value (&stream, 0);
    if (rc == 0 && stream.pos != size)
        rc = TL_EINVAL;         //  trailing bytes
    if (rc)
        tl_buf_truncate (out, before);
    return rc;
}


//  Returns the number of Unicode characters in valid UTF-8 text.

static size_t
s_utf8_length (const char *text, size_t size)
{
    size_t count = 0;
    for (size_t index = 0; index < size; index++)
        if (((unsigned char) text [index] & 0xC0) != 0x80)
            count++;
    return count;
}


//  Returns NULL when `value` has the declared type, else the message.
//  An unknown type name checks nothing (gw_router_load refuses them).

static const char *
s_type_error (const char *type, const json_t *value)
{
    if (s_streq (type, "string"))
        return json_is_string (value)? NULL: "must be a string";
    if (s_streq (type, "integer"))
        return json_is_integer (value)? NULL: "must be an integer";
    if (s_streq (type, "number"))
        return json_is_number (value)? NULL: "must be a number";
    if (s_streq (type, "boolean"))
        return json_is_boolean (value)? NULL: "must be a boolean";
    if (s_streq (type, "object"))
        return json_is_object (value)? NULL: "must be an object";
    if (s_streq (type, "array"))
        return json_is_array (value)? NULL: "must be an array";
    return NULL;
}


//  Adds {name: message} to *errors, creating it. Returns 0 or TL_ENOMEM.

static int
s_add_error (json_t **errors, const char *name, const char *message)
{
    if (!*errors)
        *errors = json_object ();
    if (!*errors)
        return TL_ENOMEM;
    json_t *text = json_string (message);
    if (!text || json_object_set_new (*errors, name, text))
        return TL_ENOMEM;
    return 0;
}


//  --------------------------------------------------------------------------
//  Checks a request body against a `fields` declaration.

int
tl_json_validate (const json_t *body, const json_t *fields, json_t **errors)
{
    assert (errors);
    *errors = NULL;
    if (!fields)
        return 0;
    int rc = 0;
    if (!json_is_object (body))
        rc = s_add_error (errors, "body", "must be a JSON object");
    else {
        const char *name;
        json_t *spec;
        json_object_foreach ((json_t *) fields, name, spec) {
            if (rc)
                break;
            if (!json_is_object (spec))
                continue;
            const json_t *value = json_object_get (body, name);
            if (!value || json_is_null (value)) {
                if (json_is_true (json_object_get (spec, "required")))
                    rc = s_add_error (errors, name, "is required");
                continue;
            }
            const char *type = json_string_value (json_object_get (spec, "type"));
            const char *message = type? s_type_error (type, value): NULL;
            if (message) {
                rc = s_add_error (errors, name, message);
                continue;
            }
            const json_t *max = json_object_get (spec, "max");
            if (!json_is_integer (max))
                continue;
            json_int_t limit = json_integer_value (max);
            char text [80];
            if (json_is_string (value)
            &&  (json_int_t) s_utf8_length (json_string_value (value),
                                            json_string_length (value)) > limit) {
                snprintf (text, sizeof (text), "must be at most %" JSON_INTEGER_FORMAT
                          " character%s", limit, limit == 1? "": "s");
                rc = s_add_error (errors, name, text);
            }
            else
            if (json_is_array (value)
            &&  (json_int_t) json_array_size (value) > limit) {
                snprintf (text, sizeof (text), "must have at most %" JSON_INTEGER_FORMAT
                          " item%s", limit, limit == 1? "": "s");
                rc = s_add_error (errors, name, text);
            }
        }
    }
    if (rc) {
        json_decref (*errors);
        *errors = NULL;
        return rc;
    }
    return *errors? TL_EINVAL: 0;
}


//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type: assert.h
//  follows NDEBUG afresh at each inclusion.

#undef NDEBUG
#include <assert.h>

//  JSON text → MessagePack → JSON text. Returns the code of the first step
//  that failed; on success the output is in `out`.

static int
s_round_trip (const char *json, size_t len, tl_buf_t *out)
{
    tl_buf_t *mp = tl_buf_new (TL_HTTP_MAX_JSON_BODY * 2);
    assert (mp);
    msgpack_packer pk;
    msgpack_packer_init (&pk, mp, tl_buf_mp_write);
    char errbuf [200];
    int rc = tl_json_to_mp (json, len, &pk, errbuf, sizeof (errbuf));
    if (rc == 0) {
        msgpack_unpacked result;
        msgpack_unpacked_init (&result);
        size_t offset = 0;
        int ret = msgpack_unpack_next (&result, tl_buf_data (mp),
                                       tl_buf_size (mp), &offset);
        assert (ret == MSGPACK_UNPACK_SUCCESS);
        assert (offset == tl_buf_size (mp));
        tl_buf_reset (out);
        rc = tl_json_from_mp (&result.data, out);
        msgpack_unpacked_destroy (&result);
    }
    tl_buf_destroy (&mp);
    return rc;
}

static void
s_assert_round_trip (const char *json, const char *expected)
{
    tl_buf_t *out = tl_buf_new (4096);
    assert (out);
    int rc = s_round_trip (json, strlen (json), out);
    if (rc || !s_streq (tl_buf_data (out), expected)) {
        fprintf (stderr, "round trip of %s: rc=%d, got %s, expected %s\n",
                 json, rc, tl_buf_data (out), expected);
        assert (false);
    }
    tl_buf_destroy (&out);
}

static int
s_parse_rc (const char *json, size_t len, char *errbuf, size_t errsize)
{
    int rc = 99;
    json_t *root = tl_json_parse (json, len, errbuf, errsize, &rc);
    assert ((root == NULL) == (rc != 0));
    json_decref (root);
    return rc;
}

//  Unpacks `size` bytes of MessagePack and writes them as JSON into `out`,
//  after checking that tl_json_from_mp_bytes gives the same code and text
//  (into a buffer of the same cap). When tl_mp_unpack refuses them (ext
//  types too), returns what tl_json_from_mp_bytes says, which must be a
//  code.

static int
s_mp_to_json (const char *mp, size_t size, tl_buf_t *out)
{
    tl_buf_t *streamed = tl_buf_new (tl_buf_max (out));
    assert (streamed);
    int streamed_rc = tl_json_from_mp_bytes (mp, size, streamed);
    assert (streamed_rc || tl_buf_size (streamed) > 0);
    //  Bounded unpacking (tl_mp_unpack): msgpack-c alone trusts counts
    msgpack_zone *zone = msgpack_zone_new (4096);
    assert (zone);
    msgpack_object obj;
    tl_buf_reset (out);
    int rc;
    if (tl_mp_unpack (mp, size, zone, &obj) == 0) {
        rc = tl_json_from_mp (&obj, out);
        assert (rc == streamed_rc);
        assert (tl_buf_size (out) == tl_buf_size (streamed));
        assert (memcmp (tl_buf_data (out), tl_buf_data (streamed), tl_buf_size (out)) == 0);
    }
    else {
        rc = streamed_rc;
        assert (rc != 0 && tl_buf_size (streamed) == 0);
    }
    msgpack_zone_free (zone);
    tl_buf_destroy (&streamed);
    return rc;
}

//  A random MessagePack value for s_test_stream_matches_tree, written as
//  bytes with every encoding a value can have (fixint or uint64, fixstr or
//  str32, ...), `depth` containers down. Mostly what a service sends;
//  sometimes what tl_json_from_mp refuses (bin, ext, NaN, bad UTF-8,
//  non-str keys, too deep).

static uint64_t
s_random (uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void
s_put_be (tl_buf_t *mp, unsigned char head, uint64_t value, int bytes)
{
    unsigned char bytes_out [9] = { head };
    for (int index = 0; index < bytes; index++)
        bytes_out [1 + index] = (unsigned char) (value >> (8 * (bytes - 1 - index)));
    assert (tl_buf_append (mp, bytes_out, 1 + (size_t) bytes) == 0);
}

static void
s_random_str (tl_buf_t *mp, uint64_t *state, bool key)
{
    static const char *pieces [] = {
        "a", "id", "value", "caf\xC3\xA9", "\xE2\x80\xA8", "\xE2\x80\xA9", "\"", "\\", "\n",
        "\x01", "\x1F", "\x7F", "\xF0\x9F\x98\x80", "2026-11-23T18:05:00Z", " ", "\xE2\x82",
        "\xED\xA0\x80", "\xC0\x80", "\x00"
    };
    size_t npieces = sizeof (pieces) / sizeof (pieces [0]);
    char text [256];
    size_t size = 0;
    int count = (int) (s_random (state) % 6);
    for (int index = 0; index < count; index++) {
        //  Mostly valid UTF-8: the last four pieces are the rare bad ones
        size_t pick = s_random (state) % npieces;
        if (pick >= npieces - 4 && s_random (state) % 8)
            pick = 0;
        size_t length = pick == npieces - 1? 1: strlen (pieces [pick]);
        memcpy (text + size, pieces [pick], length);
        size += length;
    }
    int form = (int) (s_random (state) % 4);
    if (key && s_random (state) % 64 == 0) {
        s_put_be (mp, 0x01, 0, 0);          //  an integer key
        return;
    }
    if (form == 0 && size < 32)
        s_put_be (mp, (unsigned char) (0xa0 | size), 0, 0);
    else
        s_put_be (mp, form < 2? 0xd9: form == 2? 0xda: 0xdb, size, form < 2? 1: form == 2? 2: 4);
    assert (tl_buf_append (mp, text, size) == 0);
}

static void
s_random_value (tl_buf_t *mp, uint64_t *state, int depth)
{
    uint64_t pick = s_random (state) % (depth > 34? 10: 16);
    uint64_t number = s_random (state);
    switch (pick) {
        case 0: s_put_be (mp, 0xc0, 0, 0); break;
        case 1: s_put_be (mp, number % 2? 0xc3: 0xc2, 0, 0); break;
        case 2: s_put_be (mp, (unsigned char) (number % 0x80), 0, 0); break;
        case 3: s_put_be (mp, (unsigned char) (0xe0 | (number % 32)), 0, 0); break;
        case 4: {
            int width = (int) (number % 4);
            s_put_be (mp, (unsigned char) (0xcc + width), number >> 8, 1 << width);
            break;
        }
        case 5: {
            int width = (int) (number % 4);
            s_put_be (mp, (unsigned char) (0xd0 + width), number >> 8, 1 << width);
            break;
        }
        case 6: {
            double value = (double) (int64_t) number / (double) (1 + s_random (state) % 100000);
            if (number % 50 == 0)
                value = number % 100 == 0? NAN: INFINITY;
            if (number % 3) {
                uint64_t bits;
                memcpy (&bits, &value, sizeof (bits));
                s_put_be (mp, 0xcb, bits, 8);
            }
            else {
                float single = (float) value;
                uint32_t bits;
                memcpy (&bits, &single, sizeof (bits));
                s_put_be (mp, 0xca, bits, 4);
            }
            break;
        }
        case 7: case 8: case 9:
            s_random_str (mp, state, false);
            break;
        case 10: case 11: case 12: case 13: {
            bool is_map = pick >= 12;
            uint64_t count = s_random (state) % 5;
            int form = (int) (s_random (state) % 3);
            if (form == 0)
                s_put_be (mp, (unsigned char) ((is_map? 0x80: 0x90) | count), 0, 0);
            else
                s_put_be (mp, (unsigned char) ((is_map? 0xde: 0xdc) + (form == 2)), count,
                          form == 1? 2: 4);
            for (uint64_t index = 0; index < count; index++) {
                if (is_map)
                    s_random_str (mp, state, true);
                s_random_value (mp, state, depth + 1);
            }
            break;
        }
        case 14:
            //  A chain of one-item arrays: deep, sometimes too deep
            for (int index = 0; index < 20; index++)
                s_put_be (mp, 0x91, 0, 0);
            s_random_value (mp, state, depth + 20);
            break;
        default:
            if (number % 2)
                s_put_be (mp, 0xc4, 1, 1);          //  bin 8, one byte
            else
                s_put_be (mp, 0xd4, 1, 1);          //  fixext 1, type 1
            assert (tl_buf_append (mp, "x", 1) == 0);
    }
}

//  tl_json_from_mp_bytes writes what tl_json_from_mp writes, or refuses
//  what it refuses, over random values in every encoding; truncated and
//  altered bytes never make it read outside them.

static void
s_test_stream_matches_tree (void)
{
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    tl_buf_t *mp = tl_buf_new (1 << 20);
    tl_buf_t *out = tl_buf_new (1 << 16);
    assert (mp && out);
    int refused = 0;
    for (int round = 0; round < 3000; round++) {
        tl_buf_reset (mp);
        s_random_value (mp, &state, 0);
        size_t size = tl_buf_size (mp);
        //  On the heap at its exact size, so that ASan sees any overread
        char *bytes = malloc (size);
        assert (bytes);
        memcpy (bytes, tl_buf_data (mp), size);
        refused += s_mp_to_json (bytes, size, out) != 0;
        //  Cut short, or one byte changed
        size_t cut = (size_t) (s_random (&state) % size);
        s_mp_to_json (bytes, cut, out);
        bytes [s_random (&state) % size] ^= (char) (1 + s_random (&state) % 255);
        s_mp_to_json (bytes, size, out);
        free (bytes);
    }
    assert (refused > 0 && refused < 3000);     //  both kinds were tried
    //  Depth: 32 nested containers pass, 33 do not, empty or not
    char deep [40];
    memset (deep, 0x91, sizeof (deep));
    deep [TL_MP_MAX_DEPTH] = (char) 0xc0;
    assert (tl_json_from_mp_bytes (deep, TL_MP_MAX_DEPTH + 1, out) == 0);
    deep [TL_MP_MAX_DEPTH] = (char) 0x90;
    assert (tl_json_from_mp_bytes (deep, TL_MP_MAX_DEPTH + 1, out) == TL_ETOOBIG);
    deep [TL_MP_MAX_DEPTH] = (char) 0x91;
    deep [TL_MP_MAX_DEPTH + 1] = (char) 0xc0;
    assert (tl_json_from_mp_bytes (deep, TL_MP_MAX_DEPTH + 2, out) == TL_ETOOBIG);
    deep [TL_MP_MAX_DEPTH - 1] = (char) 0x90;
    tl_buf_reset (out);
    assert (tl_json_from_mp_bytes (deep, TL_MP_MAX_DEPTH, out) == 0);
    //  Counts the bytes cannot back, trailing bytes, 0xc1, nothing
    tl_buf_reset (out);
    assert (tl_json_from_mp_bytes ("\xdd\xff\xff\xff\xff\xc0", 6, out) == TL_EINVAL);
    assert (tl_json_from_mp_bytes ("\xdf\xff\xff\xff\xff", 5, out) == TL_EINVAL);
    assert (tl_json_from_mp_bytes ("\xdb\xff\xff\xff\xff" "ab", 7, out) == TL_EINVAL);
    assert (tl_json_from_mp_bytes ("\xc0\xc0", 2, out) == TL_EINVAL);
    assert (tl_json_from_mp_bytes ("\xc1", 1, out) == TL_EINVAL);
    assert (tl_json_from_mp_bytes ("", 0, out) == TL_EINVAL);
    assert (tl_buf_size (out) == 0);
    tl_buf_destroy (&out);
    tl_buf_destroy (&mp);
}

//  Checks a msgpack str of `size` bytes: valid UTF-8 or TL_EINVAL.

static void
s_assert_mp_str (const char *bytes, size_t size, int expected_rc,
                 const char *expected_json)
{
    char mp [300];
    assert (size < 250);
    mp [0] = (char) 0xD9;       //  str 8
    mp [1] = (char) size;
    memcpy (mp + 2, bytes, size);
    tl_buf_t *out = tl_buf_new (1000);
    assert (out);
    int rc = s_mp_to_json (mp, size + 2, out);
    assert (rc == expected_rc);
    assert (tl_json_utf8_valid (bytes, size) == (expected_rc == 0));
    if (expected_json)
        assert (s_streq (tl_buf_data (out), expected_json));
    else
        assert (tl_buf_size (out) == 0);
    tl_buf_destroy (&out);
}

static json_t *
s_validate (const char *body_text, const char *fields_text, int *rc)
{
    json_t *body = json_loads (body_text, JSON_DECODE_ANY, NULL);
    json_t *fields = fields_text? json_loads (fields_text, 0, NULL): NULL;
    assert (body);
    assert (fields || !fields_text);
    json_t *errors = (json_t *) 1;
    *rc = tl_json_validate (body, fields, &errors);
    assert ((*rc == 0) == (errors == NULL));
    json_decref (body);
    json_decref (fields);
    return errors;
}

static void
s_assert_field_error (json_t *errors, const char *field, const char *message)
{
    const char *text = json_string_value (json_object_get (errors, field));
    if (!text || !s_streq (text, message)) {
        fprintf (stderr, "field %s: got '%s', expected '%s'\n",
                 field, text? text: "(none)", message);
        assert (false);
    }
}

void
tl_json_test (bool verbose)
{
    //  Strings: every ASCII byte and U+2028 at every place of a string
    //  longer than a word escape as the byte-by-byte rules say
    for (int c = 1; c < 128; c++)
        for (int at = 0; at < 19; at++) {
            char text [20], want [40];
            memset (text, 'a', 19);
            text [19] = 0;
            text [at] = (char) c;
            size_t n = 0;
            want [n++] = '"';
            for (int i = 0; i < 19; i++) {
                unsigned char b = (unsigned char) text [i];
                const char *escape = b == '"' ? "\\\"" : b == '\\' ? "\\\\" : b == '\n' ? "\\n"
                                   : b == '\r' ? "\\r" : b == '\t' ? "\\t" : b == '\b' ? "\\b"
                                   : b == '\f' ? "\\f" : NULL;
                char hex [8];
                if (!escape && b < 0x20) {
                    snprintf (hex, sizeof hex, "\\u%04X", b);
                    escape = hex;
                }
                if (escape) {
                    memcpy (want + n, escape, strlen (escape));
                    n += strlen (escape);
                }
                else
                    want [n++] = (char) b;
            }
            want [n++] = '"';
            tl_buf_t *got = tl_buf_new (64);
            assert (s_write_str (got, text, 19) == 0);
            assert (tl_buf_size (got) == n && memcmp (tl_buf_data (got), want, n) == 0);
            if (at <= 16) {
                memcpy (text + at, "\xE2\x80\xA8", 3);
                tl_buf_reset (got);
                assert (s_write_str (got, text, 19) == 0);
                assert (strstr (tl_buf_data (got), "\\u2028") == tl_buf_data (got) + 1 + at);
            }
            tl_buf_destroy (&got);
        }

    //  The short way writes what printf's way writes, wherever it applies
    {
        static const double tricky [] = { 0.1, 0.0001, 12.0, -2.5, 1e14 + 0.5,
            999999999999999.0, 123456789.123456, 0.3, 1.0 / 3, 1e-4 + 1e-9, 5e-5,
            4503599627370497.0, -0.000123, 100.0, 1e15 - 1 };
        int shortened = 0;
        for (int i = 0; i < 200000 + (int) (sizeof tricky / sizeof tricky [0]); i++) {
            double value = i < 200000
                ? (i % 4 == 0 ? i / 100.0 : i % 4 == 1 ? -i / 7.0
                   : i % 4 == 2 ? i * 0.001 : (double) i * 1234567.891)
                : tricky [i - 200000];
            char fast [48], slow [48];
            s_real_printf (value, false, slow);
            if (s_real_short (value, fast)) {
                shortened++;
                if (strcmp (fast, slow) != 0)
                    fprintf (stderr, "\n%.17g: short %s, printf %s\n", value, fast, slow);
                assert (strcmp (fast, slow) == 0);
            }
        }
        assert (shortened > 100000);
    }

    //  Round trips: compact output, order kept, every JSON type.
    s_assert_round_trip ("{ \"a\" : 1, \"b\": [true, false, null], \"c\": \"x\" }",
                         "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
    s_assert_round_trip ("{\"z\":1,\"a\":2,\"m\":{}}", "{\"z\":1,\"a\":2,\"m\":{}}");
    s_assert_round_trip ("[]", "[]");
    s_assert_round_trip ("\"just a string\"", "\"just a string\"");
    s_assert_round_trip ("42", "42");
    s_assert_round_trip ("-7", "-7");
    s_assert_round_trip ("null", "null");
    s_assert_round_trip ("[[[{\"k\":[1,{\"d\":[]}]}]]]", "[[[{\"k\":[1,{\"d\":[]}]}]]]");

    //  Unicode: escapes decode to UTF-8, surrogate pairs join, the output
    //  carries UTF-8 and escapes only what RFC 8259 needs, plus U+2028/9.
    s_assert_round_trip ("\"\\u00e9\\u20ac\"", "\"\xC3\xA9\xE2\x82\xAC\"");
    s_assert_round_trip ("\"\\ud83d\\ude00\"", "\"\xF0\x9F\x98\x80\"");
    s_assert_round_trip ("\"\xF0\x9F\x98\x80 caf\xC3\xA9\"", "\"\xF0\x9F\x98\x80 caf\xC3\xA9\"");
    s_assert_round_trip ("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"",
                         "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001F\x7F\"");
    s_assert_round_trip ("\"\\u2028\\u2029\xE2\x80\xA8|\xE2\x80\xA7\"",
                         "\"\\u2028\\u2029\\u2028|\xE2\x80\xA7\"");
    s_assert_round_trip ("{\"\\u00e9\\n\":\"\\\"\"}", "{\"\xC3\xA9\\n\":\"\\\"\"}");

    //  Big integers: int64 both ways; beyond it, jansson refuses.
    s_assert_round_trip ("[9223372036854775807,-9223372036854775808,0,-1]",
                         "[9223372036854775807,-9223372036854775808,0,-1]");
    char errbuf [200];
    assert (s_parse_rc ("9223372036854775808", 19, errbuf, sizeof (errbuf)) == TL_EINVAL);
    assert (s_parse_rc ("[-9223372036854775809]", 22, NULL, 0) == TL_EINVAL);

    //  Floats: reals stay reals, fewest digits that round-trip.
    s_assert_round_trip ("[0.1,1.0,1e2,-0.0,1.5e300,2.5e-308,0.30000000000000004]",
                         "[0.1,1.0,100.0,-0.0,1.5e+300,2.5e-308,0.30000000000000004]");
    s_assert_round_trip ("[3.141592653589793,123456789012345678.0]",
                         "[3.141592653589793,1.2345678901234568e+17]");
    assert (s_parse_rc ("1e400", 5, NULL, 0) == TL_EINVAL);

    //  Syntax errors, duplicates, NUL, empty: TL_EINVAL with a message.
    assert (s_parse_rc ("", 0, errbuf, sizeof (errbuf)) == TL_EINVAL);
    assert (strstr (errbuf, "empty"));
    assert (s_parse_rc (NULL, 0, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("   ", 3, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("{\"a\":1} x", 9, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("{\"a\":1,}", 8, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("[1,2", 4, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("{\"a\":1, \"a\":2}", 14, errbuf, sizeof (errbuf)) == TL_EINVAL);
    assert (strstr (errbuf, "duplicate"));
    assert (strncmp (errbuf, "invalid JSON at line 1, column ", 31) == 0);
    assert (s_parse_rc ("{\"a\":{\"b\":1,\"b\":1}}", 19, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("\"a\\u0000b\"", 10, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("{\"a\\u0000\":1}", 13, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("\"a\0b\"", 5, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("[1]\0", 4, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("\"\\ud800\"", 8, NULL, 0) == TL_EINVAL);
    assert (s_parse_rc ("\"\\udc00\\ud800\"", 14, NULL, 0) == TL_EINVAL);
    //  Invalid UTF-8 in the text: refused, and the message stays ASCII.
    assert (s_parse_rc ("\"\xC0\x80\"", 4, errbuf, sizeof (errbuf)) == TL_EINVAL);
    assert (s_parse_rc ("\xFF\xFE", 2, errbuf, sizeof (errbuf)) == TL_EINVAL);
    for (const char *c = errbuf; *c; c++)
        assert (*c >= 0x20 && *c < 0x7f);
    //  The parsed text need not be NUL-terminated.
    assert (s_parse_rc ("[1]]]]", 3, NULL, 0) == 0);

    //  Depth: TL_JSON_MAX_DEPTH nested containers pass, one more does not,
    //  5000 stop jansson.
    char deep [10001];
    for (int depth = TL_JSON_MAX_DEPTH - 1; depth <= TL_JSON_MAX_DEPTH + 2; depth++) {
        memset (deep, '[', depth);
        memset (deep + depth, ']', depth);
        int expected = depth <= TL_JSON_MAX_DEPTH? 0: TL_ETOOBIG;
        assert (s_parse_rc (deep, 2 * depth, errbuf, sizeof (errbuf)) == expected);
    }
    char expected_text [40];
    snprintf (expected_text, sizeof expected_text, "deeper than %d", TL_JSON_MAX_DEPTH);
    assert (strstr (errbuf, expected_text));
    strcpy (deep, "{\"a\":");
    size_t len = 5;
    for (int depth = 1; depth < TL_JSON_MAX_DEPTH; depth++) {
        memcpy (deep + len, "[{\"a\":", 6);
        len += 6;
    }
    deep [len++] = '1';
    for (int depth = 1; depth < TL_JSON_MAX_DEPTH; depth++) {
        memcpy (deep + len, "}]", 2);
        len += 2;
    }
    deep [len++] = '}';
    assert (s_parse_rc (deep, len, NULL, 0) == TL_ETOOBIG);     //  63 levels
    memset (deep, '[', 5000);
    assert (s_parse_rc (deep, 5000, errbuf, sizeof (errbuf)) == TL_ETOOBIG);
    memset (deep, '[', 10000);
    memset (deep + 5000, ']', 5000);
    tl_buf_t *out = tl_buf_new (100);
    assert (s_round_trip (deep, 10000, out) == TL_ETOOBIG);

    //  The packer's cap is reported, and tl_json_pack refuses deep trees.
    tl_buf_t *mp = tl_buf_new (8);
    msgpack_packer pk;
    msgpack_packer_init (&pk, mp, tl_buf_mp_write);
    assert (tl_json_to_mp ("[\"0123456789\"]", 14, &pk, errbuf, sizeof (errbuf))
            == TL_ETOOBIG);
    tl_buf_destroy (&mp);
    json_t *nest = json_array ();
    for (int depth = 1; depth <= TL_JSON_MAX_DEPTH; depth++) {
        json_t *outer = json_array ();
        json_array_append_new (outer, nest);
        nest = outer;
    }
    mp = tl_buf_new (1000);
    msgpack_packer_init (&pk, mp, tl_buf_mp_write);
    assert (tl_json_pack (nest, &pk) == TL_ETOOBIG);
    assert (tl_json_pack (json_array_get (nest, 0), &pk) == 0);
    json_decref (nest);
    tl_buf_destroy (&mp);

    //  MessagePack → JSON: UTF-8 strictly checked.
    s_assert_mp_str ("plain", 5, 0, "\"plain\"");
    s_assert_mp_str ("", 0, 0, "\"\"");
    s_assert_mp_str ("\x7F\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xF0\x90\x80\x80\xE0\xA0\x80", 17,
                     0, "\"\x7F\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xF0\x90\x80\x80\xE0\xA0\x80\"");
    s_assert_mp_str ("a\0b", 3, 0, "\"a\\u0000b\"");
    s_assert_mp_str ("\xC0\x80", 2, TL_EINVAL, NULL);           //  overlong NUL
    s_assert_mp_str ("\xC1\xBF", 2, TL_EINVAL, NULL);           //  overlong
    s_assert_mp_str ("\xE0\x80\x80", 3, TL_EINVAL, NULL);       //  overlong
    s_assert_mp_str ("\xE0\x9F\xBF", 3, TL_EINVAL, NULL);       //  overlong
    s_assert_mp_str ("\xF0\x8F\xBF\xBF", 4, TL_EINVAL, NULL);   //  overlong
    s_assert_mp_str ("\xED\xA0\x80", 3, TL_EINVAL, NULL);       //  U+D800
    s_assert_mp_str ("\xED\xBF\xBF", 3, TL_EINVAL, NULL);       //  U+DFFF
    s_assert_mp_str ("\xF4\x90\x80\x80", 4, TL_EINVAL, NULL);   //  U+110000
    s_assert_mp_str ("\xF5\x80\x80\x80", 4, TL_EINVAL, NULL);
    s_assert_mp_str ("\xFF", 1, TL_EINVAL, NULL);
    s_assert_mp_str ("\x80", 1, TL_EINVAL, NULL);               //  lone continuation
    s_assert_mp_str ("a\xE2\x82", 3, TL_EINVAL, NULL);          //  truncated
    s_assert_mp_str ("\xF0\x9F\x98", 3, TL_EINVAL, NULL);       //  truncated
    s_assert_mp_str ("\xE2\x28\xA1", 3, TL_EINVAL, NULL);       //  bad continuation
    s_assert_mp_str ("\xF0\x9F\x98\x28", 4, TL_EINVAL, NULL);
    s_assert_mp_str ("\xE2\x80\xA8", 3, 0, "\"\\u2028\"");
    s_assert_mp_str ("\xE2\x80", 2, TL_EINVAL, NULL);

    //  Other MessagePack types: uint64, float32, bin, ext, NaN, Inf, keys.
    assert (s_mp_to_json ("\xCF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 9, out) == 0);
    assert (s_streq (tl_buf_data (out), "18446744073709551615"));
    assert (s_mp_to_json ("\xD3\x80\x00\x00\x00\x00\x00\x00\x00", 9, out) == 0);
    assert (s_streq (tl_buf_data (out), "-9223372036854775808"));
    assert (s_mp_to_json ("\xCA\x3D\xCC\xCC\xCD", 5, out) == 0);       //  0.1f
    assert (s_streq (tl_buf_data (out), "0.1"));
    assert (s_mp_to_json ("\xCA\x3F\x80\x00\x00", 5, out) == 0);       //  1.0f
    assert (s_streq (tl_buf_data (out), "1.0"));
    assert (s_mp_to_json ("\xCB\x7F\xF8\x00\x00\x00\x00\x00\x00", 9, out) == TL_EINVAL);
    assert (s_mp_to_json ("\xCB\x7F\xF0\x00\x00\x00\x00\x00\x00", 9, out) == TL_EINVAL);
    assert (s_mp_to_json ("\xCB\xFF\xF0\x00\x00\x00\x00\x00\x00", 9, out) == TL_EINVAL);
    assert (s_mp_to_json ("\xCA\x7F\xC0\x00\x00", 5, out) == TL_EINVAL);
    assert (s_mp_to_json ("\xCB\x00\x00\x00\x00\x00\x00\x00\x01", 9, out) == 0);
    assert (strtod (tl_buf_data (out), NULL) == 4.9406564584124654e-324);
    assert (s_mp_to_json ("\xC4\x01x", 3, out) == TL_ETYPE);          //  bin
    assert (s_mp_to_json ("\xD4\x01x", 3, out) == TL_ETYPE);          //  fixext 1
    assert (s_mp_to_json ("\x92\x01\xC4\x00", 4, out) == TL_ETYPE);   //  [1, bin]
    assert (tl_buf_size (out) == 0);
    assert (s_mp_to_json ("\x81\x01\x02", 3, out) == TL_ETYPE);       //  {1: 2}
    assert (s_mp_to_json ("\x81\xA1\xFF\x02", 4, out) == TL_EINVAL);  //  bad key
    assert (s_mp_to_json ("\x82\xA1" "a\xC0\xA1" "b\xC3", 7, out) == 0);
    assert (s_streq (tl_buf_data (out), "{\"a\":null,\"b\":true}"));

    //  An empty str may come with a NULL pointer (as a key, too).
    msgpack_object_kv empty_kv;
    msgpack_object empty;
    empty_kv.key.type = MSGPACK_OBJECT_STR;
    empty_kv.key.via.str.size = 0;
    empty_kv.key.via.str.ptr = NULL;
    empty_kv.val = empty_kv.key;
    empty.type = MSGPACK_OBJECT_MAP;
    empty.via.map.size = 1;
    empty.via.map.ptr = &empty_kv;
    tl_buf_reset (out);
    assert (tl_json_from_mp (&empty, out) == 0);
    assert (s_streq (tl_buf_data (out), "{\"\":\"\"}"));
    s_assert_round_trip ("[\"\", {\"\": \"\"}]", "[\"\",{\"\":\"\"}]");

    //  On failure the output buffer keeps what it had before.
    tl_buf_reset (out);
    assert (tl_buf_append (out, "prefix", 6) == 0);
    msgpack_object bad [2];
    bad [0].type = MSGPACK_OBJECT_ARRAY;
    bad [0].via.array.size = 1;
    bad [0].via.array.ptr = &bad [1];
    bad [1].type = MSGPACK_OBJECT_BIN;
    bad [1].via.bin.size = 0;
    bad [1].via.bin.ptr = "";
    assert (tl_json_from_mp (&bad [0], out) == TL_ETYPE);
    assert (s_streq (tl_buf_data (out), "prefix"));
    tl_buf_destroy (&out);

    //  The output is bounded by the buffer's cap.
    out = tl_buf_new (10);
    assert (s_mp_to_json ("\xAA" "0123456789", 11, out) == TL_ETOOBIG);
    assert (tl_buf_size (out) == 0);
    assert (s_mp_to_json ("\xA8" "01234567", 9, out) == 0);
    assert (s_streq (tl_buf_data (out), "\"01234567\""));
    tl_buf_destroy (&out);

    //  MessagePack depth: 32 nested containers pass, 33 do not.
    msgpack_object chain [TL_MP_MAX_DEPTH + 2];
    for (int index = 0; index <= TL_MP_MAX_DEPTH; index++) {
        chain [index].type = index % 2? MSGPACK_OBJECT_ARRAY: MSGPACK_OBJECT_MAP;
        if (index % 2) {
            chain [index].via.array.size = 1;
            chain [index].via.array.ptr = &chain [index + 1];
        }
        else {
            //  A map whose one value is the next link.
            static msgpack_object_kv kvs [TL_MP_MAX_DEPTH + 2];
            kvs [index].key.type = MSGPACK_OBJECT_STR;
            kvs [index].key.via.str.ptr = "k";
            kvs [index].key.via.str.size = 1;
            kvs [index].val = chain [index + 1];    //  filled below
            chain [index].via.map.size = 1;
            chain [index].via.map.ptr = &kvs [index];
        }
    }
    chain [TL_MP_MAX_DEPTH + 1].type = MSGPACK_OBJECT_NIL;
    //  Fix the map values now that every link is filled (back to front).
    for (int index = TL_MP_MAX_DEPTH; index >= 0; index--)
        if (index % 2 == 0)
            chain [index].via.map.ptr->val = chain [index + 1];
    out = tl_buf_new (10000);
    assert (tl_json_from_mp (&chain [0], out) == TL_ETOOBIG);      //  33 deep
    assert (tl_json_from_mp (&chain [1], out) == 0);               //  32 deep
    assert (strncmp (tl_buf_data (out), "[{\"k\":[{\"k\":", 12) == 0);
    tl_buf_destroy (&out);

    //  MessagePack bytes straight to JSON, without a tree.
    s_test_stream_matches_tree ();

    //  Validation against a `fields` declaration.
    const char *fields =
        "{\"name\": {\"type\": \"string\", \"required\": true, \"max\": 5},"
        " \"count\": {\"type\": \"integer\"},"
        " \"ratio\": {\"type\": \"number\"},"
        " \"on\": {\"type\": \"boolean\"},"
        " \"tags\": {\"type\": \"array\", \"max\": 2},"
        " \"meta\": {\"type\": \"object\"},"
        " \"one\": {\"type\": \"string\", \"max\": 1}}";
    int rc;
    json_t *errors = s_validate ("{\"name\": \"abcde\", \"count\": 3, \"ratio\": 1,"
                                 " \"on\": false, \"tags\": [1, 2], \"meta\": {},"
                                 " \"extra\": [1]}", fields, &rc);
    assert (rc == 0 && errors == NULL);
    //  Five characters, ten bytes: the limit counts characters.
    errors = s_validate ("{\"name\": \"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\","
                         " \"ratio\": 0.5, \"count\": null}", fields, &rc);
    assert (rc == 0 && errors == NULL);
    errors = s_validate ("{\"name\": \"abcdef\", \"count\": 1.5, \"ratio\": \"1\","
                         " \"on\": 1, \"tags\": [1, 2, 3], \"meta\": [],"
                         " \"one\": \"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"}", fields, &rc);
    assert (rc == TL_EINVAL);
    assert (json_object_size (errors) == 7);
    s_assert_field_error (errors, "name", "must be at most 5 characters");
    s_assert_field_error (errors, "count", "must be an integer");
    s_assert_field_error (errors, "ratio", "must be a number");
    s_assert_field_error (errors, "on", "must be a boolean");
    s_assert_field_error (errors, "tags", "must have at most 2 items");
    s_assert_field_error (errors, "meta", "must be an object");
    s_assert_field_error (errors, "one", "must be at most 1 character");
    json_decref (errors);
    errors = s_validate ("{}", fields, &rc);
    assert (rc == TL_EINVAL && json_object_size (errors) == 1);
    s_assert_field_error (errors, "name", "is required");
    json_decref (errors);
    errors = s_validate ("{\"name\": null, \"tags\": {}}", fields, &rc);
    assert (rc == TL_EINVAL && json_object_size (errors) == 2);
    s_assert_field_error (errors, "name", "is required");
    s_assert_field_error (errors, "tags", "must be an array");
    json_decref (errors);
    errors = s_validate ("{\"name\": 5}", fields, &rc);
    s_assert_field_error (errors, "name", "must be a string");
    json_decref (errors);
    const char *not_objects [] = { "[]", "\"x\"", "1", "null", "true" };
    for (size_t index = 0; index < 5; index++) {
        errors = s_validate (not_objects [index], fields, &rc);
        assert (rc == TL_EINVAL && json_object_size (errors) == 1);
        s_assert_field_error (errors, "body", "must be a JSON object");
        json_decref (errors);
    }
    //  No declaration: nothing to check.
    errors = s_validate ("[1]", NULL, &rc);
    assert (rc == 0 && errors == NULL);
    errors = s_validate ("{\"a\": 1}", "{}", &rc);
    assert (rc == 0 && errors == NULL);
    if (verbose)
        printf ("(tl_json: round trips, unicode, depth, floats, validation) ");
}
