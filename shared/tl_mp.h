//  tl_mp.h — bounded MessagePack decoding and small helpers over msgpack-c.
//  msgpack-c trusts the counts it reads: five bytes (dd ff ff ff ff) make it
//  allocate room for four billion objects. tl_mp_scan walks a buffer first,
//  checks every length and count against the bytes actually left, caps the
//  depth and the number of objects, and only then lets msgpack-c unpack it.
#ifndef TL_MP_H_INCLUDED
#define TL_MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

//  Checks that `data` starts with one well-formed MessagePack value whose
//  counts are all backed by bytes, nested at most TL_MP_MAX_DEPTH deep and
//  made of at most TL_MP_MAX_ITEMS objects. Ext types are refused. On
//  success returns 0 and the value's length in *used. Returns TL_EINVAL for
//  truncated or malformed data, TL_ETOOBIG for depth or count overflow.
int tl_mp_scan (const char *data, size_t size, size_t *used);

//  Scans `data` (which must hold exactly one value, no trailing bytes) and
//  unpacks it into `zone`. On success *obj points into the zone. Returns 0
//  or the code of tl_mp_scan (TL_EINVAL for trailing bytes).
int tl_mp_unpack (const char *data, size_t size, msgpack_zone *zone,
                  msgpack_object *obj);

//  Returns the value under `key` in a map, or NULL when `map` is not a map
//  or has no such str key. Borrowed from the map.
const msgpack_object *tl_mp_get (const msgpack_object *map, const char *key);

//  True when `obj` is a str equal to `text`.
bool tl_mp_str_eq (const msgpack_object *obj, const char *text);

//  Returns a NUL-terminated copy of a str object (caller frees), or NULL if
//  it is not a str, contains a NUL byte, or is longer than `max` bytes.
char *tl_mp_strdup (const msgpack_object *obj, size_t max);

//  Copies a str object into `buf` (`size` bytes with the NUL). Returns
//  false when it is absent, not a str, holds a NUL or does not fit.
bool tl_mp_copy (const msgpack_object *obj, char *buf, size_t size);

//  Reads an unsigned integer (positive fixint/uint). Returns 0 or TL_ETYPE.
int tl_mp_uint (const msgpack_object *obj, uint64_t *value);

//  Reads a signed integer of either msgpack kind. Returns 0 or TL_ETYPE.
int tl_mp_int (const msgpack_object *obj, int64_t *value);

//  Packs a NUL-terminated string (NULL packs nil).
void tl_mp_pack_str (msgpack_packer *pk, const char *text);

//  Packs `key` then `value` (NULL packs nil) — a map entry of two strings.
void tl_mp_pack_kv (msgpack_packer *pk, const char *key, const char *value);

//  Packs a map of `count` strings into `sbuf` (which the caller has
//  initialised and destroys): `pairs` alternates keys and values.
void tl_mp_pack_pairs (msgpack_sbuffer *sbuf, const char *const *pairs, size_t count);

//  Self-test.
void tl_mp_test (bool verbose);

#endif
