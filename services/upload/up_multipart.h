//  up_multipart.h — finds the one file of a multipart/form-data body
//  (RFC 7578): the part named `file`. Reads the whole body in place (the
//  gateway has bounded it) and copies nothing: the file's bytes are a
//  pointer into the body.
#ifndef UP_MULTIPART_H_INCLUDED
#define UP_MULTIPART_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data;        //  into the body, borrowed
    size_t size;
    char content_type [128];    //  the part's declared type, "" when none
} up_part_t;

//  Reads `body` (`size` bytes) as multipart/form-data with the boundary of
//  `content_type` (the request's Content-Type header) and sets *file to the
//  part named "file". Returns 0; TL_EINVAL when the content type has no
//  usable boundary or the body is malformed (no closing delimiter, a part
//  without headers, more than UP_MULTIPART_MAX_PARTS parts, a header block
//  past UP_MULTIPART_MAX_HEAD); TL_ENOTFOUND when no part is named "file";
//  TL_EEXIST when two are.
int up_multipart_file (const char *content_type, const uint8_t *body, size_t size,
                       up_part_t *file);

//  True when `content_type` is multipart/form-data (parameters ignored).
bool up_multipart_is (const char *content_type);

//  Self-test, run by ctest.
void up_multipart_test (bool verbose);

#endif
