//  up_image.h — decoding, cleaning and resizing images with libvips: an
//  original is decoded whole (a file that does not decode is refused),
//  turned upright by its EXIF orientation and written again without its
//  metadata (EXIF, GPS, XMP, comments); a variant is a resize (and, for
//  fixed shapes, a crop to the centre) written the same way.
//  up_image_init runs once per process, before any thread uses the class.
#ifndef UP_IMAGE_H_INCLUDED
#define UP_IMAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "up_sniff.h"

//  Starts libvips for this process with bounded memory: no operation cache,
//  one worker thread per operation. Returns 0 or TL_ECONFIG.
int up_image_init (const char *program);

//  The derived sizes of API.md.
typedef struct {
    const char *name;
    int width, height;
    bool crop;                  //  cropped to the centre, else fitted inside
} up_variant_t;

//  The variant named `name`, or NULL.
const up_variant_t *up_image_variant_find (const char *name);
//  The variants, in order, ending with a NULL name.
const up_variant_t *up_image_variants (void);

//  The format a variant of a `type` image is written in (GIF → PNG).
up_type_t up_image_variant_type (up_type_t type);

//  Decodes `size` bytes of an image of `type` (already sniffed and within
//  the pixel bound), applies its orientation and writes it again without
//  metadata into a new buffer *out_p (*out_size bytes, the caller's: free
//  it with up_image_free) in the same format, with its upright width and
//  height. Returns 0; TL_EINVAL when it does not decode; TL_ETOOBIG when
//  the result passes `max` bytes; TL_ENOMEM.
int up_image_clean (const uint8_t *data, size_t size, up_type_t type, size_t max,
                    void **out_p, size_t *out_size, int *width, int *height);

//  Makes variant `variant` of the image (the cleaned original) into a new
//  buffer, in up_image_variant_type (type). Returns as up_image_clean.
int up_image_variant (const uint8_t *data, size_t size, up_type_t type,
                      const up_variant_t *variant, size_t max, void **out_p, size_t *out_size);

//  Frees a buffer of this class. Safe on NULL.
void up_image_free (void *buffer);

//  Self-test, run by ctest.
void up_image_test (bool verbose);

#endif
