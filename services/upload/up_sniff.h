//  up_sniff.h — what an image is, from its first bytes alone: PNG, JPEG,
//  GIF or WebP, and its width and height as its header declares them, read
//  before anything is decoded (so that a decompression bomb is refused
//  without allocating its size). Never reads outside the bytes given.
#ifndef UP_SNIFF_H_INCLUDED
#define UP_SNIFF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    UP_TYPE_NONE = 0,
    UP_TYPE_PNG,
    UP_TYPE_JPEG,
    UP_TYPE_GIF,
    UP_TYPE_WEBP
} up_type_t;

typedef struct {
    up_type_t type;
    uint32_t width;
    uint32_t height;
} up_info_t;

//  Reads `size` bytes at `data` into *info. Returns 0; TL_ETYPE when the
//  bytes are none of the four formats (info->type NONE); TL_EINVAL when
//  they start as one (info->type set) but the header is truncated or
//  malformed or declares a zero side.
int up_sniff (const uint8_t *data, size_t size, up_info_t *info);

//  The MIME type of `type` ("image/png"...), or NULL for NONE.
const char *up_sniff_mime (up_type_t type);

//  The type a declared MIME type names (parameters after ';' ignored,
//  case-insensitive; image/jpg too), or NONE.
up_type_t up_sniff_from_mime (const char *mime);

//  Self-test, run by ctest.
void up_sniff_test (bool verbose);

#endif
