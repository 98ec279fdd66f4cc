//  tl_json.h — JSON ⇄ MessagePack transcoding for the gateway, and the check
//  of a request body against a method's `fields` declaration
//  (proto/PROTOCOL.md, section 7).
//  JSON comes in from HTTP clients and is parsed with jansson (duplicate
//  keys and NUL characters refused, nesting capped at TL_JSON_MAX_DEPTH);
//  MessagePack comes back from services and is written out as compact JSON
//  with our own strict UTF-8 check, bounded by the output tl_buf_t's cap.
#ifndef TL_JSON_H_INCLUDED
#define TL_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <msgpack.h>

#include "tl_buf.h"

//  Parses `len` bytes of JSON text (any value, not only objects). Returns
//  the parsed tree (the caller's: json_decref it), or NULL with *err set
//  (when `err` is not NULL) and a message in errbuf (when errsize > 0):
//  TL_EINVAL for an empty text or bad syntax ("invalid JSON at line 1,
//  column 5: ..."), including duplicate keys, NUL characters, integers
//  outside int64 and reals that overflow a double; TL_ETOOBIG when arrays
//  and objects nest deeper than TL_JSON_MAX_DEPTH; TL_ENOMEM.
json_t *tl_json_parse (const char *json, size_t len,
                       char *errbuf, size_t errsize, int *err);

//  Packs a jansson tree as MessagePack: objects as maps with str keys (in
//  the object's order), arrays, strings as str, integers as int, reals as
//  float64, true/false/null. Returns 0, TL_ETOOBIG when the tree nests
//  deeper than TL_JSON_MAX_DEPTH, or the negative code the packer's write
//  callback returned (e.g. TL_ETOOBIG from tl_buf_mp_write).
int tl_json_pack (const json_t *value, msgpack_packer *pk);

//  tl_json_parse, then tl_json_pack. Returns 0 or the code of either. On
//  failure the packer may have received part of a value.
int tl_json_to_mp (const char *json, size_t len, msgpack_packer *pk,
                   char *errbuf, size_t errsize);

//  Appends `obj` to `out` as compact JSON text. Maps need str keys
//  (TL_ETYPE otherwise); str must be valid UTF-8 (TL_EINVAL); floats must
//  be finite (TL_EINVAL) and are written with the fewest digits that read
//  back to the same value, always with a '.' or exponent; bin and ext are
//  TL_ETYPE; nesting deeper than TL_MP_MAX_DEPTH is TL_ETOOBIG, and so is
//  output past the buffer's cap. Returns 0 or that code; on failure `out`
//  is left as it was.
int tl_json_from_mp (const msgpack_object *obj, tl_buf_t *out);

//  Appends the one MessagePack value of `size` bytes at `mp` to `out` as
//  compact JSON text, read straight from the bytes (no msgpack_object
//  tree, no zone): the same text as tl_json_from_mp gives for that value
//  unpacked, and the same codes for what it refuses (TL_ETYPE, TL_EINVAL,
//  TL_ETOOBIG), the first one in the order of the bytes. Bytes that are no
//  MessagePack value (truncated, 0xc1, a count the bytes cannot back,
//  trailing bytes) are TL_EINVAL. Never reads outside the `size` bytes;
//  nesting is bounded by TL_MP_MAX_DEPTH as above. Returns 0 or that
//  code; on failure `out` is left as it was.
int tl_json_from_mp_bytes (const char *mp, size_t size, tl_buf_t *out);

//  Checks a request body against a `fields` declaration (a JSON object
//  {name: {"type": ..., "required": bool, "max": n}}, as checked by
//  gw_router_load). With `fields` NULL there is nothing to check: returns 0.
//  Otherwise the body must be an object; each declared field that is
//  present and not null must have its type (string, integer, number —
//  integer or real —, boolean, object, array) and, for a string, at most
//  `max` Unicode characters, for an array at most `max` items; a required
//  field must be present and not null. Undeclared fields are allowed.
//  Returns 0 (and *errors NULL), TL_EINVAL with *errors a new object
//  {field: "what is wrong"} (the caller's; a non-object body gives
//  {"body": "must be a JSON object"}), or TL_ENOMEM (*errors NULL).
int tl_json_validate (const json_t *body, const json_t *fields,
                      json_t **errors);

//  True when `size` bytes at `data` are well-formed UTF-8: no overlong
//  forms, no surrogates (U+D800..DFFF), nothing above U+10FFFF. NUL bytes
//  are valid UTF-8; callers that refuse them check separately.
bool tl_json_utf8_valid (const char *data, size_t size);

//  Self-test, run by ctest.
void tl_json_test (bool verbose);

#endif
