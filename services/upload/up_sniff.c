//  up_sniff.c — image type and header dimensions from the bytes alone
//  (up_sniff.h). Each format's reader checks every offset against the
//  size before it reads.
#include "up_sniff.h"
#include "tl_error.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static uint32_t
s_be16 (const uint8_t *p) { return (uint32_t) p [0] << 8 | p [1]; }
static uint32_t
s_be32 (const uint8_t *p) { return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16
                                   | (uint32_t) p [2] << 8 | p [3]; }
static uint32_t
s_le16 (const uint8_t *p) { return (uint32_t) p [1] << 8 | p [0]; }
static uint32_t
s_le24 (const uint8_t *p) { return (uint32_t) p [2] << 16 | (uint32_t) p [1] << 8 | p [0]; }

//  PNG: the signature, then IHDR first (length 13): width, height.
static int
s_png (const uint8_t *d, size_t n, up_info_t *info)
{
    if (n < 24 || s_be32 (d + 8) != 13 || memcmp (d + 12, "IHDR", 4) != 0)
        return TL_EINVAL;
    info->width = s_be32 (d + 16);
    info->height = s_be32 (d + 20);
    return 0;
}

//  GIF: the logical screen's width and height, little-endian.
static int
s_gif (const uint8_t *d, size_t n, up_info_t *info)
{
    if (n < 13)
        return TL_EINVAL;
    info->width = s_le16 (d + 6);
    info->height = s_le16 (d + 8);
    return 0;
}

//  JPEG: segments after SOI until a start-of-frame (SOF0..15 but DHT,
//  JPG and DAC), whose body is precision, height, width.
static int
s_jpeg (const uint8_t *d, size_t n, up_info_t *info)
{
    size_t at = 2;
    while (at + 4 <= n) {
        if (d [at] != 0xFF)
            return TL_EINVAL;
        while (at < n && d [at] == 0xFF)
            at++;                       //  fill bytes
        if (at >= n)
            return TL_EINVAL;
        uint8_t marker = d [at++];
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
            continue;                   //  no length
        if (marker == 0xD9 || marker == 0xDA || at + 2 > n)
            return TL_EINVAL;           //  end or scan before any frame
        uint32_t length = s_be16 (d + at);
        if (length < 2)
            return TL_EINVAL;
        if (marker >= 0xC0 && marker <= 0xCF
        &&  marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
            if (length < 7 || at + 7 > n)
                return TL_EINVAL;
            info->height = s_be16 (d + at + 3);
            info->width = s_be16 (d + at + 5);
            return 0;
        }
        at += length;
    }
    return TL_EINVAL;
}

//  WebP: RIFF....WEBP, then VP8 (lossy), VP8L (lossless) or VP8X
//  (extended: the canvas).
static int
s_webp (const uint8_t *d, size_t n, up_info_t *info)
{
    if (n < 30)
        return TL_EINVAL;
    const uint8_t *c = d + 12;
    if (memcmp (c, "VP8 ", 4) == 0) {
        //  frame tag (3), start code 9d 01 2a, 14-bit width and height
        if (d [23] != 0x9d || d [24] != 0x01 || d [25] != 0x2a)
            return TL_EINVAL;
        info->width = s_le16 (d + 26) & 0x3fff;
        info->height = s_le16 (d + 28) & 0x3fff;
        return 0;
    }
    if (memcmp (c, "VP8L", 4) == 0) {
        if (d [20] != 0x2f)
            return TL_EINVAL;
        uint32_t bits = (uint32_t) d [21] | (uint32_t) d [22] << 8
                      | (uint32_t) d [23] << 16 | (uint32_t) d [24] << 24;
        info->width = (bits & 0x3fff) + 1;
        info->height = ((bits >> 14) & 0x3fff) + 1;
        return 0;
    }
    if (memcmp (c, "VP8X", 4) == 0) {
        info->width = s_le24 (d + 24) + 1;
        info->height = s_le24 (d + 27) + 1;
        return 0;
    }
    return TL_EINVAL;
}

int
up_sniff (const uint8_t *data, size_t size, up_info_t *info)
{
    assert (info);
    memset (info, 0, sizeof *info);
    if (!data)
        return TL_ETYPE;
    int rc;
    if (size >= 8 && memcmp (data, "\x89PNG\r\n\x1a\n", 8) == 0) {
        info->type = UP_TYPE_PNG;
        rc = s_png (data, size, info);
    }
    else
    if (size >= 3 && data [0] == 0xFF && data [1] == 0xD8 && data [2] == 0xFF) {
        info->type = UP_TYPE_JPEG;
        rc = s_jpeg (data, size, info);
    }
    else
    if (size >= 6 && (memcmp (data, "GIF87a", 6) == 0 || memcmp (data, "GIF89a", 6) == 0)) {
        info->type = UP_TYPE_GIF;
        rc = s_gif (data, size, info);
    }
    else
    if (size >= 12 && memcmp (data, "RIFF", 4) == 0 && memcmp (data + 8, "WEBP", 4) == 0) {
        info->type = UP_TYPE_WEBP;
        rc = s_webp (data, size, info);
    }
    else
        return TL_ETYPE;
    if (rc == 0 && (info->width == 0 || info->height == 0))
        rc = TL_EINVAL;
    if (rc) {
        info->width = 0;
        info->height = 0;
    }
    return rc;
}

const char *
up_sniff_mime (up_type_t type)
{
    switch (type) {
        case UP_TYPE_PNG: return "image/png";
        case UP_TYPE_JPEG: return "image/jpeg";
        case UP_TYPE_GIF: return "image/gif";
        case UP_TYPE_WEBP: return "image/webp";
        default: return NULL;
    }
}

up_type_t
up_sniff_from_mime (const char *mime)
{
    if (!mime)
        return UP_TYPE_NONE;
    while (*mime == ' ')
        mime++;
    size_t len = strcspn (mime, "; ");
    static const struct { const char *name; up_type_t type; } names [] = {
        { "image/png", UP_TYPE_PNG }, { "image/jpeg", UP_TYPE_JPEG },
        { "image/jpg", UP_TYPE_JPEG }, { "image/gif", UP_TYPE_GIF },
        { "image/webp", UP_TYPE_WEBP },
    };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        if (strlen (names [i].name) == len && strncasecmp (mime, names [i].name, len) == 0)
            return names [i].type;
    return UP_TYPE_NONE;
}

//  ---------------------------------------------------------------------
//  Self-test

static const uint8_t s_png_head [] = {
    0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
    0, 0, 0x01, 0x2c, 0, 0, 0, 0xc8, 8, 6, 0, 0, 0
};

static void
s_test_png_header_gives_its_size (void)
{
    up_info_t info;
    assert (up_sniff (s_png_head, sizeof s_png_head, &info) == 0);
    assert (info.type == UP_TYPE_PNG && info.width == 300 && info.height == 200);
    //  every truncation is malformed, never read past
    for (size_t n = 8; n < 24; n++)
        assert (up_sniff (s_png_head, n, &info) == TL_EINVAL && info.type == UP_TYPE_PNG);
}

static void
s_test_jpeg_frame_after_other_segments (void)
{
    const uint8_t jpeg [] = {
        0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 'J', 'F',             //  APP0, 2 bytes of body
        0xFF, 0xFF, 0xC2, 0, 11, 8, 0x01, 0x00, 0x02, 0x80, 3, 0, 0, 0
    };
    up_info_t info;
    assert (up_sniff (jpeg, sizeof jpeg, &info) == 0);
    assert (info.type == UP_TYPE_JPEG && info.width == 640 && info.height == 256);
    for (size_t n = 3; n < 18; n++)
        assert (up_sniff (jpeg, n, &info) == TL_EINVAL);
    //  a scan before any frame header is not an image
    const uint8_t scan [] = { 0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0, 0 };
    assert (up_sniff (scan, sizeof scan, &info) == TL_EINVAL);
}

static void
s_test_gif_and_webp (void)
{
    const uint8_t gif [] = { 'G', 'I', 'F', '8', '9', 'a', 0x10, 0x00, 0x20, 0x00, 0, 0, 0 };
    up_info_t info;
    assert (up_sniff (gif, sizeof gif, &info) == 0);
    assert (info.type == UP_TYPE_GIF && info.width == 16 && info.height == 32);
    uint8_t webp [30] = { 'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X' };
    webp [24] = 99;                 //  canvas 100 × 50
    webp [27] = 49;
    assert (up_sniff (webp, sizeof webp, &info) == 0);
    assert (info.type == UP_TYPE_WEBP && info.width == 100 && info.height == 50);
    memcpy (webp + 12, "VP8L", 4);
    webp [20] = 0x2f;
    uint32_t bits = (7 - 1) | (uint32_t) (9 - 1) << 14;
    webp [21] = bits & 0xff; webp [22] = (bits >> 8) & 0xff;
    webp [23] = (bits >> 16) & 0xff; webp [24] = (uint8_t) (bits >> 24);
    assert (up_sniff (webp, sizeof webp, &info) == 0 && info.width == 7 && info.height == 9);
    memcpy (webp + 12, "VP9?", 4);
    assert (up_sniff (webp, sizeof webp, &info) == TL_EINVAL);
}

static void
s_test_other_bytes_are_no_image (void)
{
    up_info_t info;
    const char *svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    assert (up_sniff ((const uint8_t *) svg, strlen (svg), &info) == TL_ETYPE);
    assert (info.type == UP_TYPE_NONE);
    assert (up_sniff ((const uint8_t *) "PK\3\4", 4, &info) == TL_ETYPE);
    assert (up_sniff (NULL, 0, &info) == TL_ETYPE);
    assert (up_sniff (s_png_head, 7, &info) == TL_ETYPE);
}

static void
s_test_a_zero_side_is_malformed (void)
{
    uint8_t png [sizeof s_png_head];
    memcpy (png, s_png_head, sizeof png);
    memset (png + 20, 0, 4);
    up_info_t info;
    assert (up_sniff (png, sizeof png, &info) == TL_EINVAL);
}

static void
s_test_mime_names (void)
{
    assert (up_sniff_from_mime ("image/PNG") == UP_TYPE_PNG);
    assert (up_sniff_from_mime ("image/jpeg; charset=x") == UP_TYPE_JPEG);
    assert (up_sniff_from_mime ("image/jpg") == UP_TYPE_JPEG);
    assert (up_sniff_from_mime ("image/svg+xml") == UP_TYPE_NONE);
    assert (up_sniff_from_mime ("image/pngx") == UP_TYPE_NONE);
    assert (up_sniff_from_mime (NULL) == UP_TYPE_NONE);
    assert (strcmp (up_sniff_mime (UP_TYPE_WEBP), "image/webp") == 0);
    assert (up_sniff_mime (UP_TYPE_NONE) == NULL);
}

void
up_sniff_test (bool verbose)
{
    s_test_png_header_gives_its_size ();
    s_test_jpeg_frame_after_other_segments ();
    s_test_gif_and_webp ();
    s_test_other_bytes_are_no_image ();
    s_test_a_zero_side_is_malformed ();
    s_test_mime_names ();
}
