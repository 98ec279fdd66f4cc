//  gw_range.c — one byte range of a held body (gw_range.h).
#include "gw_range.h"

#include <assert.h>
#include <microhttpd.h>
#include <stdio.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

//  Reads decimal digits at *p into *value (no overflow). False when there
//  are none or too many.
static bool
s_number (const char **p, uint64_t *value)
{
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;
    while (isdigit ((unsigned char) *s)) {
        if (++digits > 18)
            return false;
        v = v * 10 + (uint64_t) (*s++ - '0');
    }
    if (!digits)
        return false;
    *p = s;
    *value = v;
    return true;
}

gw_range_t
gw_range_parse (const char *header, const char *if_range, const char *etag, size_t size,
                size_t *first, size_t *last)
{
    assert (first && last);
    if (!header || strncasecmp (header, "bytes=", 6) != 0)
        return GW_RANGE_WHOLE;
    //  If-Range with a validator that is not this body's strong ETag
    if (if_range && (!etag || strcmp (if_range, etag) != 0 || strncmp (etag, "W/", 2) == 0))
        return GW_RANGE_WHOLE;
    const char *p = header + 6;
    while (*p == ' ')
        p++;
    if (strchr (p, ','))
        return GW_RANGE_WHOLE;          //  several ranges: the whole body
    uint64_t a = 0, b = 0;
    if (*p == '-') {
        p++;
        if (!s_number (&p, &b) || *p)
            return GW_RANGE_WHOLE;
        if (b == 0 || size == 0)
            return GW_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - (size_t) b;
        *last = size - 1;
        return GW_RANGE_PART;
    }
    if (!s_number (&p, &a) || *p++ != '-')
        return GW_RANGE_WHOLE;
    bool open = *p == 0;
    if (!open && (!s_number (&p, &b) || *p || b < a))
        return GW_RANGE_WHOLE;
    if (a >= size)
        return GW_RANGE_UNSATISFIABLE;
    *first = (size_t) a;
    *last = open || b >= size ? size - 1 : (size_t) b;
    return GW_RANGE_PART;
}

int
gw_range_apply (struct MHD_Connection *conn, const char *etag, char **data_p,
                size_t *size_p, char *content_range, size_t range_size)
{
    const char *range = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Range");
    const char *if_range = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "If-Range");
    size_t first = 0, last = 0, size = *size_p;
    gw_range_t answer = gw_range_parse (range, if_range, etag, size, &first, &last);
    if (answer == GW_RANGE_WHOLE)
        return 200;
    if (answer == GW_RANGE_UNSATISFIABLE) {
        snprintf (content_range, range_size, "bytes */%zu", size);
        *size_p = 0;
        return 416;
    }
    snprintf (content_range, range_size, "bytes %zu-%zu/%zu", first, last, size);
    memmove (*data_p, *data_p + first, last - first + 1);
    *size_p = last - first + 1;
    return 206;
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_expect (const char *header, size_t size, gw_range_t want, size_t first, size_t last)
{
    size_t f = 99, l = 99;
    gw_range_t got = gw_range_parse (header, NULL, NULL, size, &f, &l);
    assert (got == want);
    if (want == GW_RANGE_PART)
        assert (f == first && l == last);
}

static void
s_test_single_ranges (void)
{
    s_expect ("bytes=0-99", 1000, GW_RANGE_PART, 0, 99);
    s_expect ("bytes=500-", 1000, GW_RANGE_PART, 500, 999);
    s_expect ("bytes=-100", 1000, GW_RANGE_PART, 900, 999);
    s_expect ("bytes=-5000", 1000, GW_RANGE_PART, 0, 999);
    s_expect ("bytes=990-5000", 1000, GW_RANGE_PART, 990, 999);
    s_expect ("BYTES=1-1", 10, GW_RANGE_PART, 1, 1);
}

static void
s_test_unsatisfiable_and_ignored (void)
{
    s_expect ("bytes=1000-", 1000, GW_RANGE_UNSATISFIABLE, 0, 0);
    s_expect ("bytes=-0", 1000, GW_RANGE_UNSATISFIABLE, 0, 0);
    s_expect (NULL, 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("items=0-1", 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("bytes=0-1,5-6", 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("bytes=5-1", 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("bytes=a-1", 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("bytes=1-2x", 1000, GW_RANGE_WHOLE, 0, 0);
    s_expect ("bytes=99999999999999999999-", 1000, GW_RANGE_WHOLE, 0, 0);
}

static void
s_test_if_range (void)
{
    size_t f, l;
    assert (gw_range_parse ("bytes=0-1", "\"a\"", "\"a\"", 10, &f, &l) == GW_RANGE_PART);
    assert (gw_range_parse ("bytes=0-1", "\"b\"", "\"a\"", 10, &f, &l) == GW_RANGE_WHOLE);
    assert (gw_range_parse ("bytes=0-1", "\"a\"", NULL, 10, &f, &l) == GW_RANGE_WHOLE);
}

void
gw_range_test (bool verbose)
{
    (void) verbose;
    s_test_single_ranges ();
    s_test_unsatisfiable_and_ignored ();
    s_test_if_range ();
}
