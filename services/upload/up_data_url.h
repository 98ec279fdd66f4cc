//  up_data_url.h — a strict reader of base64 and of `data:` URLs
//  ("data:image/png;base64,iVBORw0K..."), as a browser's canvas makes
//  them. Strict: the standard alphabet only, no white space, length a
//  multiple of four, at most two '=' and only at the end, and the unused
//  bits of the last group zero (each text has one decoding).
#ifndef UP_DATA_URL_H_INCLUDED
#define UP_DATA_URL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The decoded size of `len` base64 characters, at most (len / 4 * 3).
size_t up_base64_max (size_t len);

//  Decodes `len` characters of `text` into `out` (room for `out_size`
//  bytes) and sets *used. Returns 0, TL_EINVAL for text that is not
//  strict base64, TL_ETOOBIG when the bytes would pass out_size.
int up_base64_decode (const char *text, size_t len, uint8_t *out, size_t out_size,
                      size_t *used);

//  Reads the data URL `text` (`len` bytes, not NUL-terminated): its media
//  type into `mime` (at most `mime_size` - 1 characters, "" when absent)
//  and its bytes, decoded, into a new buffer *data_p of *size_p bytes (the
//  caller frees it). At most `max` bytes. Returns 0; TL_EINVAL when it is
//  not a base64 data URL or its base64 is not strict; TL_ETOOBIG past
//  `max` (nothing decoded); TL_ENOMEM.
int up_data_url_decode (const char *text, size_t len, size_t max, char *mime,
                        size_t mime_size, uint8_t **data_p, size_t *size_p);

//  Self-test, run by ctest.
void up_data_url_test (bool verbose);

#endif
