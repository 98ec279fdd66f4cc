//  tl_mp.c — bounded MessagePack decoding and small helpers over msgpack-c.
//  The scanner is iterative (an explicit stack of "objects still to read"
//  per level), so hostile nesting costs neither stack nor heap.
#include "tl_mp.h"
#include "tl_error.h"
#include "tl_limits.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Big-endian reads of 1, 2, 4 or 8 bytes.
static uint64_t
s_be (const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

int
tl_mp_scan (const char *data, size_t size, size_t *used)
{
    const unsigned char *p = (const unsigned char *) data;
    size_t pos = 0;
    uint64_t items = 0;
    //  pending [d] = values still to read at depth d. Depth 0 is the root.
    uint64_t pending [TL_MP_MAX_DEPTH + 1];
    int depth = 0;
    pending [0] = 1;

    while (true) {
        while (depth > 0 && pending [depth] == 0)
            depth--;
        if (pending [depth] == 0)
            break;              //  the root value is complete
        pending [depth]--;
        if (++items > TL_MP_MAX_ITEMS)
            return TL_ETOOBIG;
        if (pos >= size)
            return TL_EINVAL;
        unsigned char b = p [pos++];
        size_t left = size - pos;
        uint64_t skip = 0;      //  bytes of payload after the header
        uint64_t children = 0;  //  values inside a container
        int lenbytes = 0;       //  width of a length field that follows

        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1))
            ;                                   //  fixint, nil, bool
        else if (b >= 0x80 && b <= 0x8f)
            children = 2 * (uint64_t) (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            children = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else
        switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;      //  bin8, str8
            case 0xc5: case 0xda: lenbytes = 2; break;      //  bin16, str16
            case 0xc6: case 0xdb: lenbytes = 4; break;      //  bin32, str32
            case 0xca: skip = 4; break;                     //  float32
            case 0xcb: skip = 8; break;                     //  float64
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xdc: case 0xde: lenbytes = 2; break;      //  array16, map16
            case 0xdd: case 0xdf: lenbytes = 4; break;      //  array32, map32
            default:
                return TL_EINVAL;       //  0xc1, ext and fixext: not ours
        }
        if (lenbytes) {
            if (left < (size_t) lenbytes)
                return TL_EINVAL;
            uint64_t n = s_be (p + pos, lenbytes);
            pos += lenbytes;
            left -= lenbytes;
            if (b == 0xdc || b == 0xdd)
                children = n;
            else
            if (b == 0xde || b == 0xdf)
                children = 2 * n;
            else
                skip = n;
        }
        if (skip > left)
            return TL_EINVAL;
        pos += skip;
        if (children > 0) {
            //  Each child takes at least one byte: refuse counts the
            //  remaining bytes cannot back, before anyone allocates.
            if (children > size - pos)
                return TL_EINVAL;
            if (depth == TL_MP_MAX_DEPTH)
                return TL_ETOOBIG;
            pending [++depth] = children;
        }
    }
    *used = pos;
    return 0;
}

int
tl_mp_unpack (const char *data, size_t size, msgpack_zone *zone,
              msgpack_object *obj)
{
    size_t used = 0;
    int rc = tl_mp_scan (data, size, &used);
    if (rc)
        return rc;
    if (used != size)
        return TL_EINVAL;       //  trailing bytes
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack (data, size, &off, zone, obj);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return TL_ENOMEM;
    if (ret != MSGPACK_UNPACK_SUCCESS || off != size)
        return TL_EINVAL;
    return 0;
}

const msgpack_object *
tl_mp_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (tl_mp_str_eq (&kv->key, key))
            return &kv->val;
    }
    return NULL;
}

bool
tl_mp_str_eq (const msgpack_object *obj, const char *text)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR)
        return false;
    size_t len = strlen (text);
    return obj->via.str.size == len && (len == 0 || memcmp (obj->via.str.ptr, text, len) == 0);
}

bool
tl_mp_copy (const msgpack_object *obj, char *buf, size_t size)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR || obj->via.str.size >= size
    ||  (obj->via.str.size && memchr (obj->via.str.ptr, 0, obj->via.str.size)))
        return false;
    if (obj->via.str.size)
        memcpy (buf, obj->via.str.ptr, obj->via.str.size);
    buf [obj->via.str.size] = 0;
    return true;
}

char *
tl_mp_strdup (const msgpack_object *obj, size_t max)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR || obj->via.str.size > max)
        return NULL;
    //  msgpack-c may give an empty str a NULL pointer (the first value it
    //  unpacks, as a body or an envelope's field is now)
    if (obj->via.str.size && memchr (obj->via.str.ptr, 0, obj->via.str.size))
        return NULL;
    char *copy = malloc (obj->via.str.size + 1);
    if (!copy)
        return NULL;
    if (obj->via.str.size)
        memcpy (copy, obj->via.str.ptr, obj->via.str.size);
    copy [obj->via.str.size] = 0;
    return copy;
}

int
tl_mp_uint (const msgpack_object *obj, uint64_t *value)
{
    if (!obj || obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return TL_ETYPE;
    *value = obj->via.u64;
    return 0;
}

int
tl_mp_int (const msgpack_object *obj, int64_t *value)
{
    if (obj && obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = obj->via.i64;
        return 0;
    }
    if (obj && obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
    &&  obj->via.u64 <= INT64_MAX) {
        *value = (int64_t) obj->via.u64;
        return 0;
    }
    return TL_ETYPE;
}

void
tl_mp_pack_str (msgpack_packer *pk, const char *text)
{
    if (!text) {
        msgpack_pack_nil (pk);
        return;
    }
    size_t len = strlen (text);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

void
tl_mp_pack_kv (msgpack_packer *pk, const char *key, const char *value)
{
    tl_mp_pack_str (pk, key);
    tl_mp_pack_str (pk, value);
}

void
tl_mp_pack_pairs (msgpack_sbuffer *sbuf, const char *const *pairs, size_t count)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, count);
    for (size_t i = 0; i < count; i++)
        tl_mp_pack_kv (&pk, pairs [2 * i], pairs [2 * i + 1]);
}

//  ---------------------------------------------------------------------
//  Self-test

static int
s_scan_hex (const char *bytes, size_t size)
{
    size_t used = 0;
    int rc = tl_mp_scan (bytes, size, &used);
    if (rc == 0 && used != size)
        return 1;               //  value shorter than the input
    return rc;
}

void
tl_mp_test (bool verbose)
{
    //  An empty str may come with no pointer (msgpack-c, when it is the
    //  first value with bytes it unpacks): read as "", never dereferenced.
    msgpack_object empty = { .type = MSGPACK_OBJECT_STR };
    char *copy = tl_mp_strdup (&empty, 10);
    assert (copy && copy [0] == 0);
    free (copy);
    char small [4] = "xyz";
    assert (tl_mp_copy (&empty, small, sizeof small) && small [0] == 0);
    assert (tl_mp_str_eq (&empty, "") && !tl_mp_str_eq (&empty, "a"));
    //  Five bytes claiming four billion elements: refused without allocating.
    assert (s_scan_hex ("\xdd\xff\xff\xff\xff", 5) == TL_EINVAL);
    assert (s_scan_hex ("\xdf\xff\xff\xff\xff", 5) == TL_EINVAL);
    assert (s_scan_hex ("\xdb\xff\xff\xff\xff", 5) == TL_EINVAL);
    //  Truncated headers and payloads.
    assert (s_scan_hex ("", 0) == TL_EINVAL);
    assert (s_scan_hex ("\xcd\x01", 2) == TL_EINVAL);
    assert (s_scan_hex ("\x92\x01", 2) == TL_EINVAL);
    assert (s_scan_hex ("\xa3" "ab", 3) == TL_EINVAL);
    //  Reserved byte and ext types.
    assert (s_scan_hex ("\xc1", 1) == TL_EINVAL);
    assert (s_scan_hex ("\xd4\x01\x02", 3) == TL_EINVAL);
    //  Good values.
    assert (s_scan_hex ("\x81\xa1k\x92\x01\xc3", 6) == 0);
    assert (s_scan_hex ("\x80", 1) == 0);
    assert (s_scan_hex ("\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9) == 0);
    assert (s_scan_hex ("\x01\x02", 2) == 1);      //  one value, then more

    //  Depth: TL_MP_MAX_DEPTH nested arrays pass, one more does not.
    char deep [TL_MP_MAX_DEPTH + 2];
    memset (deep, 0x91, sizeof deep);
    deep [TL_MP_MAX_DEPTH] = 0x01;
    assert (s_scan_hex (deep, TL_MP_MAX_DEPTH + 1) == 0);
    deep [TL_MP_MAX_DEPTH] = (char) 0x91;
    deep [TL_MP_MAX_DEPTH + 1] = 0x01;
    assert (s_scan_hex (deep, TL_MP_MAX_DEPTH + 2) == TL_ETOOBIG);

    //  Item cap: an array of TL_MP_MAX_ITEMS nils is one item too many.
    size_t n = TL_MP_MAX_ITEMS;
    char *many = malloc (5 + n);
    assert (many);
    many [0] = (char) 0xdd;
    many [1] = (char) (n >> 24); many [2] = (char) (n >> 16);
    many [3] = (char) (n >> 8);  many [4] = (char) n;
    memset (many + 5, 0xc0, n);
    assert (s_scan_hex (many, 5 + n) == TL_ETOOBIG);
    free (many);

    //  Unpack and helpers.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    tl_mp_pack_kv (&pk, "name", "tally");
    tl_mp_pack_str (&pk, "n");
    msgpack_pack_int64 (&pk, -5);
    tl_mp_pack_str (&pk, "u");
    msgpack_pack_uint64 (&pk, 7);

    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    assert (tl_mp_unpack (sbuf.data, sbuf.size, &zone, &obj) == 0);
    assert (tl_mp_str_eq (tl_mp_get (&obj, "name"), "tally"));
    assert (tl_mp_get (&obj, "missing") == NULL);
    int64_t i64 = 0;
    uint64_t u64 = 0;
    assert (tl_mp_int (tl_mp_get (&obj, "n"), &i64) == 0 && i64 == -5);
    assert (tl_mp_uint (tl_mp_get (&obj, "n"), &u64) == TL_ETYPE);
    assert (tl_mp_uint (tl_mp_get (&obj, "u"), &u64) == 0 && u64 == 7);
    char *name = tl_mp_strdup (tl_mp_get (&obj, "name"), 64);
    assert (name && strcmp (name, "tally") == 0);
    free (name);
    assert (tl_mp_strdup (tl_mp_get (&obj, "name"), 3) == NULL);

    //  Trailing bytes are refused by unpack.
    msgpack_sbuffer_write (&sbuf, "\xc0", 1);
    assert (tl_mp_unpack (sbuf.data, sbuf.size, &zone, &obj) == TL_EINVAL);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);
    if (verbose)
        printf ("(bounded scan ok) ");
}
