//  gw_range.h — a single byte range of a body the gateway holds whole
//  (RFC 9233): `Range: bytes=first-last`, `first-` and `-suffix`. Several
//  ranges, another unit or a malformed header are answered with the whole
//  body (200), as the RFC allows; a range that starts past the end is
//  unsatisfiable (416).
#ifndef GW_RANGE_H_INCLUDED
#define GW_RANGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    GW_RANGE_WHOLE = 0,         //  no usable range: the whole body
    GW_RANGE_PART,              //  *first..*last (inclusive)
    GW_RANGE_UNSATISFIABLE      //  416
} gw_range_t;

//  Reads the Range header `header` (NULL when absent) for a body of `size`
//  bytes. When `if_range` (the If-Range header) is given and is not
//  `etag`, the answer is the whole body.
gw_range_t gw_range_parse (const char *header, const char *if_range, const char *etag,
                           size_t size, size_t *first, size_t *last);

struct MHD_Connection;

//  Answers the request on `conn` (its Range and If-Range headers) for the
//  whole body *data_p (*size_p bytes, malloc'd) named `etag`: returns 200
//  and leaves the body alone; 206 with the body cut to the range in place
//  and `content_range` set ("bytes first-last/size"); or 416 with the body
//  emptied and `content_range` "bytes */size".
int gw_range_apply (struct MHD_Connection *conn, const char *etag, char **data_p,
                    size_t *size_p, char *content_range, size_t range_size);

//  Self-test, run by ctest.
void gw_range_test (bool verbose);

#endif
