//  tl_buf.c — a growable byte buffer with a hard cap (see tl_buf.h).
//  The storage grows by doubling up to max + 1 bytes (the content and its
//  NUL); no call ever leaves the content without its NUL terminator.
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_buf.h"
#include "tl_error.h"

#define S_MIN_ALLOC 64
#define s_streq(a,b) (strcmp ((a), (b)) == 0)

struct _tl_buf_t {
    char *data;             //  content + NUL, or NULL before the first byte
    size_t size;            //  content bytes
    size_t alloc;           //  bytes allocated at data
    size_t max;             //  cap on size
};


//  --------------------------------------------------------------------------
//  Creates an empty buffer capped at `max` bytes.

tl_buf_t *
tl_buf_new (size_t max)
{
    tl_buf_t *self = (tl_buf_t *) calloc (1, sizeof (tl_buf_t));
    if (!self)
        return NULL;
    //  Keep max + 1 and doubling far from overflow.
    self->max = max < SIZE_MAX / 4? max: SIZE_MAX / 4;
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys the buffer and nulls the reference.

void
tl_buf_destroy (tl_buf_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        tl_buf_t *self = *self_p;
        free (self->data);
        free (self);
        *self_p = NULL;
    }
}


//  Makes room for `extra` more content bytes (and the NUL). Returns 0,
//  TL_ETOOBIG or TL_ENOMEM.

static int
s_reserve (tl_buf_t *self, size_t extra)
{
    if (extra > self->max - self->size)
        return TL_ETOOBIG;
    size_t needed = self->size + extra + 1;
    if (needed <= self->alloc)
        return 0;
    size_t alloc = self->alloc? self->alloc: S_MIN_ALLOC;
    while (alloc < needed)
        alloc *= 2;
    if (alloc > self->max + 1)
        alloc = self->max + 1;
    char *data = (char *) realloc (self->data, alloc);
    if (!data)
        return TL_ENOMEM;
    if (!self->data)
        data [0] = 0;
    self->data = data;
    self->alloc = alloc;
    return 0;
}


//  --------------------------------------------------------------------------
//  Appends `size` bytes, or fails leaving the content unchanged.

int
tl_buf_append (tl_buf_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    int rc = s_reserve (self, size);
    if (rc)
        return rc;
    if (size)
        memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data [self->size] = 0;
    return 0;
}


//  --------------------------------------------------------------------------
//  Makes room for `extra` more bytes.

int
tl_buf_reserve (tl_buf_t *self, size_t extra)
{
    assert (self);
    return s_reserve (self, extra);
}


//  --------------------------------------------------------------------------
//  Grows the content by `size` uninitialised bytes; returns where they start.

char *
tl_buf_extend (tl_buf_t *self, size_t size)
{
    assert (self);
    if (s_reserve (self, size))
        return NULL;
    char *start = self->data + self->size;
    self->size += size;
    self->data [self->size] = 0;
    return start;
}


//  --------------------------------------------------------------------------
//  Appends printf-formatted text, or fails leaving the content unchanged.

int
tl_buf_printf (tl_buf_t *self, const char *format, ...)
{
    assert (self);
    assert (format);
    va_list args;
    va_start (args, format);
    va_list again;
    va_copy (again, args);

    size_t room = self->alloc? self->alloc - self->size: 0;
    int length = vsnprintf (room? self->data + self->size: NULL, room,
                            format, args);
    va_end (args);
    int rc = 0;
    if (length < 0)
        rc = TL_EINVAL;
    else
    if ((size_t) length >= room) {
        //  It did not fit: restore the NUL, grow, and write again.
        if (self->data)
            self->data [self->size] = 0;
        rc = s_reserve (self, (size_t) length);
        if (rc == 0
        &&  vsnprintf (self->data + self->size, (size_t) length + 1,
                       format, again) != length) {
            self->data [self->size] = 0;
            rc = TL_EINVAL;
        }
    }
    va_end (again);
    if (rc == 0)
        self->size += (size_t) length;
    else
    if (self->data)
        self->data [self->size] = 0;
    return rc;
}


//  --------------------------------------------------------------------------
//  Returns the content (NUL-terminated, borrowed, never NULL).

const char *
tl_buf_data (tl_buf_t *self)
{
    assert (self);
    return self->data? self->data: "";
}


//  --------------------------------------------------------------------------
//  Returns the size of the content.

size_t
tl_buf_size (tl_buf_t *self)
{
    assert (self);
    return self->size;
}


//  --------------------------------------------------------------------------
//  Returns the cap.

size_t
tl_buf_max (tl_buf_t *self)
{
    assert (self);
    return self->max;
}


//  --------------------------------------------------------------------------
//  Empties the buffer, keeping its memory.

void
tl_buf_reset (tl_buf_t *self)
{
    assert (self);
    self->size = 0;
    if (self->data)
        self->data [0] = 0;
}


//  --------------------------------------------------------------------------
//  Cuts the content back to `size` bytes.

void
tl_buf_truncate (tl_buf_t *self, size_t size)
{
    assert (self);
    if (size < self->size) {
        self->size = size;
        self->data [size] = 0;
    }
}


//  --------------------------------------------------------------------------
//  Hands the content to the caller and empties the buffer.

char *
tl_buf_steal (tl_buf_t *self, size_t *size)
{
    assert (self);
    char *data = self->data;
    if (!data) {
        data = (char *) calloc (1, 1);
        if (!data)
            return NULL;
    }
    if (size)
        *size = self->size;
    self->data = NULL;
    self->size = 0;
    self->alloc = 0;
    return data;
}


//  --------------------------------------------------------------------------
//  msgpack_packer write callback.

int
tl_buf_mp_write (void *self, const char *data, size_t size)
{
    return tl_buf_append ((tl_buf_t *) self, data, size);
}


//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type: assert.h
//  follows NDEBUG afresh at each inclusion.

#undef NDEBUG
#include <assert.h>

void
tl_buf_test (bool verbose)
{
    //  Extend: the bytes are the caller's to write, within the cap
    {
        tl_buf_t *grown = tl_buf_new (8);
        assert (tl_buf_append (grown, "ab", 2) == 0);
        char *room = tl_buf_extend (grown, 3);
        assert (room);
        memcpy (room, "cde", 3);
        assert (tl_buf_size (grown) == 5 && s_streq (tl_buf_data (grown), "abcde"));
        assert (tl_buf_extend (grown, 4) == NULL && tl_buf_size (grown) == 5);
        assert (tl_buf_extend (grown, 3) && tl_buf_size (grown) == 8);
        assert (tl_buf_reserve (grown, 1) == TL_ETOOBIG && tl_buf_reserve (grown, 0) == 0);
        tl_buf_destroy (&grown);
    }

    //  Empty buffer: data is "", steal gives an owned "".
    tl_buf_t *buf = tl_buf_new (16);
    assert (buf);
    assert (tl_buf_size (buf) == 0);
    assert (s_streq (tl_buf_data (buf), ""));
    size_t size = 99;
    char *text = tl_buf_steal (buf, &size);
    assert (text && text [0] == 0 && size == 0);
    free (text);

    //  Appends up to the cap, not one byte past it.
    assert (tl_buf_append (buf, "0123456789", 10) == 0);
    assert (tl_buf_append (buf, "abcdef", 6) == 0);
    assert (tl_buf_size (buf) == 16);
    assert (tl_buf_append (buf, "x", 1) == TL_ETOOBIG);
    assert (tl_buf_append (buf, "", 0) == 0);
    assert (memcmp (tl_buf_data (buf), "0123456789abcdef", 17) == 0);
    assert (tl_buf_max (buf) == 16);

    //  A failed printf leaves the content unchanged and terminated.
    tl_buf_reset (buf);
    assert (tl_buf_size (buf) == 0);
    assert (tl_buf_printf (buf, "%d-%s", 42, "abc") == 0);
    assert (s_streq (tl_buf_data (buf), "42-abc"));
    assert (tl_buf_printf (buf, "%s", "this will not fit") == TL_ETOOBIG);
    assert (s_streq (tl_buf_data (buf), "42-abc"));
    assert (tl_buf_size (buf) == 6);
    assert (tl_buf_printf (buf, "%s", "") == 0);
    assert (tl_buf_printf (buf, "%010d", 7) == 0);
    assert (s_streq (tl_buf_data (buf), "42-abc0000000007"));
    tl_buf_truncate (buf, 99);
    assert (tl_buf_size (buf) == 16);
    tl_buf_truncate (buf, 3);
    assert (s_streq (tl_buf_data (buf), "42-"));
    assert (tl_buf_printf (buf, "abc0000000007") == 0);

    //  Steal hands the bytes over and leaves the buffer empty and usable.
    text = tl_buf_steal (buf, &size);
    assert (size == 16 && s_streq (text, "42-abc0000000007"));
    free (text);
    assert (tl_buf_size (buf) == 0);
    assert (tl_buf_append (buf, "z", 1) == 0);
    assert (s_streq (tl_buf_data (buf), "z"));
    tl_buf_destroy (&buf);
    assert (buf == NULL);
    tl_buf_destroy (&buf);

    //  Growth across many doublings; binary content with NUL bytes.
    buf = tl_buf_new (100000);
    assert (buf);
    for (int i = 0; i < 10000; i++)
        assert (tl_buf_append (buf, "\0abcdefgh", 10) == 0);
    assert (tl_buf_size (buf) == 100000);
    assert (tl_buf_append (buf, "a", 1) == TL_ETOOBIG);
    //  The last ten bytes, then the terminating NUL.
    static const char tail [11] = "\0abcdefgh\0";
    assert (memcmp (tl_buf_data (buf) + 99990, tail, sizeof tail) == 0);
    tl_buf_reset (buf);
    for (int i = 0; i < 1000; i++)
        assert (tl_buf_printf (buf, "%03d,", i) == 0);
    assert (tl_buf_size (buf) == 4000);
    assert (memcmp (tl_buf_data (buf) + 3996, "999,", 5) == 0);
    //  The packer callback stops at the cap.
    tl_buf_reset (buf);
    assert (tl_buf_mp_write (buf, "ab", 2) == 0);
    assert (tl_buf_size (buf) == 2);
    tl_buf_destroy (&buf);

    //  A zero cap holds nothing; a huge cap is clamped, not overflowed.
    buf = tl_buf_new (0);
    assert (buf);
    assert (tl_buf_append (buf, "a", 1) == TL_ETOOBIG);
    assert (tl_buf_printf (buf, "a") == TL_ETOOBIG);
    assert (tl_buf_printf (buf, "%s", "") == 0);
    tl_buf_destroy (&buf);
    buf = tl_buf_new (SIZE_MAX);
    assert (buf);
    assert (tl_buf_append (buf, "a", 1) == 0);
    assert (tl_buf_append (buf, "a", SIZE_MAX) == TL_ETOOBIG);
    assert (tl_buf_append (buf, "a", SIZE_MAX - 1) == TL_ETOOBIG);
    tl_buf_destroy (&buf);
    if (verbose)
        printf ("(tl_buf: append, printf, cap, steal) ");
}
