//  tl_buf.h — a growable byte buffer with a hard cap.
//  Used wherever Tally builds output from data it does not control (JSON
//  replies, MessagePack frames): the cap, fixed at creation, bounds the
//  memory a hostile input can make us spend. The content is always followed
//  by a NUL byte, so that text can be read in place.
#ifndef TL_BUF_H_INCLUDED
#define TL_BUF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _tl_buf_t tl_buf_t;

//  Creates an empty buffer that will never hold more than `max` bytes.
//  Returns NULL on allocation failure.
tl_buf_t *tl_buf_new (size_t max);

//  Destroys the buffer and nulls the caller's reference. Safe on NULL.
void tl_buf_destroy (tl_buf_t **self_p);

//  Appends `size` bytes. Returns 0, TL_ETOOBIG when the content would pass
//  the cap, or TL_ENOMEM. On failure the content is unchanged.
int tl_buf_append (tl_buf_t *self, const void *data, size_t size);

//  Makes room for `extra` more bytes of content at once (a writer that
//  knows about how much it will append spares the doublings on the way).
//  Returns 0, TL_ETOOBIG past the cap, or TL_ENOMEM; the content is unchanged.
int tl_buf_reserve (tl_buf_t *self, size_t extra);

//  Grows the content by `size` bytes and returns where they start, for the
//  caller to write them all before any other call on the buffer (they are
//  not initialised; the NUL after them is written). Returns NULL, the
//  content unchanged, when it would pass the cap or memory runs out: for
//  writers that know their output's size and would otherwise append it in
//  pieces.
char *tl_buf_extend (tl_buf_t *self, size_t size);

//  Appends formatted text (printf). Returns 0, TL_ETOOBIG, TL_ENOMEM, or
//  TL_EINVAL for a bad format. On failure the content is unchanged.
int tl_buf_printf (tl_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Returns the content, followed by a NUL byte. Borrowed: valid until the
//  next call that changes the buffer. Never NULL.
const char *tl_buf_data (tl_buf_t *self);

//  Returns the size of the content in bytes (without the trailing NUL).
size_t tl_buf_size (tl_buf_t *self);

//  Returns the cap given to tl_buf_new.
size_t tl_buf_max (tl_buf_t *self);

//  Empties the buffer; it keeps its memory for reuse.
void tl_buf_reset (tl_buf_t *self);

//  Cuts the content back to its first `size` bytes (no-op when it is not
//  longer than that): how a writer undoes a partial append.
void tl_buf_truncate (tl_buf_t *self, size_t size);

//  Hands the content to the caller: returns it NUL-terminated (the caller
//  frees it) and its size in *size when `size` is not NULL; the buffer is
//  left empty. Returns NULL only on allocation failure.
char *tl_buf_steal (tl_buf_t *self, size_t *size);

//  A msgpack_packer write callback (msgpack_packer_init (&pk, buf,
//  tl_buf_mp_write)): appends to the tl_buf_t in `self`. Returns 0, or a
//  negative code once the cap is reached (msgpack-c passes it back from
//  each msgpack_pack_* call).
int tl_buf_mp_write (void *self, const char *data, size_t size);

//  Self-test, run by ctest.
void tl_buf_test (bool verbose);

#endif
