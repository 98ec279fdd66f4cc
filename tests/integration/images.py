"""Test images made here, not shipped: PNG written by hand (zlib), the other
formats by libvips itself through ctypes (the library the service links),
so that a test can ask for any size, format or EXIF orientation.

    png(300, 200)                  # bytes of an RGB PNG
    encode("jpeg", 300, 200, orientation=6, noise=True)
"""

import ctypes
import itertools
import os
import random
import struct
import zlib

_vips = None
# Every image made is new bytes (uploads are content-addressed, and a test
# database may hold blobs of earlier runs and of other stores).
_salt = int.from_bytes(os.urandom(8), "big")
_count = itertools.count()


def _rng(seed):
    return random.Random(_salt * 1000003 + next(_count) * 7919 + seed)


def _lib():
    global _vips
    if _vips is None:
        _vips = ctypes.CDLL("libvips.so.42")
        _vips.vips_init(b"tally-tests")
        _vips.vips_image_new_from_buffer.restype = ctypes.c_void_p
    return _vips


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


def png_header(width, height):
    """A PNG's signature and IHDR for `width` x `height` (8-bit RGB)."""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                8, 2, 0, 0, 0))


def png(width, height, seed=0):
    """A complete RGB PNG whose pixels depend on `seed`."""
    row = _rng(seed).randbytes(width * 3)
    raw = b"".join(b"\x00" + row for _ in range(height))
    return png_header(width, height) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def png_bomb(width, height):
    """A PNG declaring `width` x `height` whose compressed pixels are tiny
    (zeros compress about 1000:1): a decompression bomb."""
    comp = zlib.compressobj(9)
    line = b"\x00" * (width * 3 + 1)
    data = b"".join(comp.compress(line) for _ in range(min(height, 2000))) + comp.flush()
    return png_header(width, height) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def encode(fmt, width, height, orientation=None, noise=False):
    """An image made by libvips: `fmt` one of png, jpeg, gif, webp; with
    `orientation`, its EXIF orientation tag (JPEG); with `noise`, random
    pixels (big files), else one random grey."""
    v = _lib()
    image = ctypes.c_void_p()
    if True:
        rng = _rng(width * 7919 + height)
        pixels = (rng.randbytes(width * height * 3) if noise
                  else bytes([rng.randrange(256)]) * (width * height * 3))
        v.vips_image_new_from_memory_copy.restype = ctypes.c_void_p
        image = ctypes.c_void_p(v.vips_image_new_from_memory_copy(
            pixels, ctypes.c_size_t(len(pixels)), width, height, 3, 0))
        assert image
    cast = ctypes.c_void_p()
    assert v.vips_cast(image, ctypes.byref(cast), 0, None) == 0    # VIPS_FORMAT_UCHAR
    v.g_object_unref(image)
    if orientation:
        v.vips_image_set_int(cast, b"orientation", orientation)
    buf = ctypes.c_void_p()
    size = ctypes.c_size_t()
    save = {"png": v.vips_pngsave_buffer, "jpeg": v.vips_jpegsave_buffer,
            "gif": v.vips_gifsave_buffer, "webp": v.vips_webpsave_buffer}[fmt]
    assert save(cast, ctypes.byref(buf), ctypes.byref(size), None) == 0
    data = ctypes.string_at(buf, size.value)
    v.g_free(buf)
    v.g_object_unref(cast)
    return data


def dimensions(data):
    """(width, height) of an image's header, read by libvips."""
    v = _lib()
    image = v.vips_image_new_from_buffer(data, len(data), b"", None)
    assert image
    v.vips_image_get_width.argtypes = [ctypes.c_void_p]
    v.vips_image_get_height.argtypes = [ctypes.c_void_p]
    size = (v.vips_image_get_width(image), v.vips_image_get_height(image))
    v.g_object_unref(ctypes.c_void_p(image))
    return size
