//  up_image.c — libvips behind the upload service's three needs: clean an
//  original, make a variant, and start libvips once (up_image.h).
#include "up_image.h"
#include "tl_error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

static const up_variant_t s_variants [] = {
    { "thumb", 200, 200, false },
    { "avatar", 256, 256, true },
    { "background", 1300, 500, true },
    { "background_thumb", 500, 200, true },
    { NULL, 0, 0, false }
};

//  libvips's warnings (a truncated tile...) are answered as errors by the
//  callers; they are not printed.
static void
s_quiet (const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer arg)
{
    (void) domain; (void) level; (void) message; (void) arg;
}

int
up_image_init (const char *program)
{
    if (VIPS_INIT (program ? program : "tally-upload"))
        return TL_ECONFIG;
    g_log_set_handler ("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, s_quiet, NULL);
    //  Bounded memory: nothing cached between requests, one thread per
    //  operation (the service's handler threads are the parallelism).
    vips_cache_set_max (0);
    vips_cache_set_max_mem (0);
    vips_concurrency_set (1);
    return 0;
}

const up_variant_t *
up_image_variants (void)
{
    return s_variants;
}

const up_variant_t *
up_image_variant_find (const char *name)
{
    for (const up_variant_t *v = s_variants; name && v->name; v++)
        if (strcmp (v->name, name) == 0)
            return v;
    return NULL;
}

up_type_t
up_image_variant_type (up_type_t type)
{
    return type == UP_TYPE_GIF ? UP_TYPE_PNG : type;
}

//  Writes `image` as `type` without metadata into *out_p. Returns 0,
//  TL_EINVAL (libvips refused: the pixels did not decode) or TL_ETOOBIG.
static int
s_save (VipsImage *image, up_type_t type, size_t max, void **out_p, size_t *out_size)
{
    void *buf = NULL;
    size_t len = 0;
    int rc;
    switch (type) {
        case UP_TYPE_PNG:
            rc = vips_pngsave_buffer (image, &buf, &len, "strip", TRUE, NULL);
            break;
        case UP_TYPE_JPEG:
            rc = vips_jpegsave_buffer (image, &buf, &len, "strip", TRUE, "Q", 88, NULL);
            break;
        case UP_TYPE_GIF:
            rc = vips_gifsave_buffer (image, &buf, &len, "strip", TRUE, NULL);
            break;
        case UP_TYPE_WEBP:
            rc = vips_webpsave_buffer (image, &buf, &len, "strip", TRUE, NULL);
            break;
        default:
            rc = -1;
    }
    if (rc) {
        g_free (buf);
        vips_error_clear ();
        return TL_EINVAL;
    }
    if (len > max) {
        g_free (buf);
        return TL_ETOOBIG;
    }
    *out_p = buf;
    *out_size = len;
    return 0;
}

int
up_image_clean (const uint8_t *data, size_t size, up_type_t type, size_t max,
                void **out_p, size_t *out_size, int *width, int *height)
{
    assert (out_p && out_size && width && height);
    *out_p = NULL;
    *out_size = 0;
    bool pages = type == UP_TYPE_GIF || type == UP_TYPE_WEBP;
    VipsImage *in = pages
        ? vips_image_new_from_buffer (data, size, "", "fail_on", VIPS_FAIL_ON_ERROR,
                                      "n", -1, NULL)
        : vips_image_new_from_buffer (data, size, "", "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!in) {
        vips_error_clear ();
        return TL_EINVAL;
    }
    VipsImage *upright = NULL;
    int rc = 0;
    if (pages) {
        upright = in;                   //  no orientation in GIF; WebP's is EXIF we drop
        in = NULL;
    }
    else
    if (vips_autorot (in, &upright, NULL)) {
        vips_error_clear ();
        rc = TL_EINVAL;
    }
    if (rc == 0) {
        *width = vips_image_get_width (upright);
        *height = vips_image_get_page_height (upright);
        rc = s_save (upright, type, max, out_p, out_size);
    }
    if (upright)
        g_object_unref (upright);
    if (in)
        g_object_unref (in);
    return rc;
}

int
up_image_variant (const uint8_t *data, size_t size, up_type_t type,
                  const up_variant_t *variant, size_t max, void **out_p, size_t *out_size)
{
    assert (variant && out_p && out_size);
    *out_p = NULL;
    *out_size = 0;
    VipsImage *thumb = NULL;
    int rc = variant->crop
        ? vips_thumbnail_buffer ((void *) data, size, &thumb, variant->width,
                                 "height", variant->height, "crop", VIPS_INTERESTING_CENTRE,
                                 NULL)
        : vips_thumbnail_buffer ((void *) data, size, &thumb, variant->width,
                                 "height", variant->height, "size", VIPS_SIZE_DOWN, NULL);
    if (rc) {
        vips_error_clear ();
        return TL_EINVAL;
    }
    rc = s_save (thumb, up_image_variant_type (type), max, out_p, out_size);
    g_object_unref (thumb);
    return rc;
}

void
up_image_free (void *buffer)
{
    g_free (buffer);
}

//  ---------------------------------------------------------------------
//  Self-test

//  A `w` × `h` test image as `type`, made by libvips.
static void
s_make (up_type_t type, int w, int h, void **out, size_t *size)
{
    VipsImage *black = NULL, *rgb = NULL;
    assert (vips_black (&black, w, h, "bands", 3, NULL) == 0);
    assert (vips_cast (black, &rgb, VIPS_FORMAT_UCHAR, NULL) == 0);
    assert (s_save (rgb, type, 1 << 24, out, size) == 0);
    g_object_unref (rgb);
    g_object_unref (black);
}

static void
s_test_clean_keeps_format_and_size (void)
{
    static const up_type_t types [] = { UP_TYPE_PNG, UP_TYPE_JPEG, UP_TYPE_GIF, UP_TYPE_WEBP };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++) {
        void *image = NULL, *clean = NULL;
        size_t size = 0, clean_size = 0;
        s_make (types [i], 64, 40, &image, &size);
        int w = 0, h = 0;
        assert (up_image_clean (image, size, types [i], 1 << 24, &clean, &clean_size,
                                &w, &h) == 0);
        assert (w == 64 && h == 40);
        up_info_t info;
        assert (up_sniff (clean, clean_size, &info) == 0 && info.type == types [i]);
        up_image_free (clean);
        up_image_free (image);
    }
}

static void
s_test_variants_have_their_sizes (void)
{
    void *image = NULL;
    size_t size = 0;
    s_make (UP_TYPE_PNG, 1000, 600, &image, &size);
    for (const up_variant_t *v = up_image_variants (); v->name; v++) {
        void *out = NULL;
        size_t out_size = 0;
        assert (up_image_variant (image, size, UP_TYPE_PNG, v, 1 << 24, &out, &out_size) == 0);
        up_info_t info;
        assert (up_sniff (out, out_size, &info) == 0 && info.type == UP_TYPE_PNG);
        if (v->crop)
            assert ((int) info.width == v->width && (int) info.height == v->height);
        else
            assert (info.width == 200 && info.height == 120);
        up_image_free (out);
    }
    up_image_free (image);
    assert (up_image_variant_find ("avatar")->width == 256);
    assert (up_image_variant_find ("original") == NULL);
    assert (up_image_variant_type (UP_TYPE_GIF) == UP_TYPE_PNG);
}

static void
s_test_truncated_image_does_not_decode (void)
{
    void *image = NULL, *clean = NULL;
    size_t size = 0, clean_size = 0;
    s_make (UP_TYPE_PNG, 300, 300, &image, &size);
    int w, h;
    assert (up_image_clean (image, size / 2, UP_TYPE_PNG, 1 << 24, &clean, &clean_size,
                            &w, &h) == TL_EINVAL);
    assert (!clean);
    assert (up_image_clean (image, size, UP_TYPE_PNG, 10, &clean, &clean_size, &w, &h)
            == TL_ETOOBIG);
    up_image_free (image);
}

void
up_image_test (bool verbose)
{
    (void) verbose;
    assert (up_image_init ("up_image_test") == 0);
    s_test_clean_keeps_format_and_size ();
    s_test_variants_have_their_sizes ();
    s_test_truncated_image_does_not_decode ();
}
