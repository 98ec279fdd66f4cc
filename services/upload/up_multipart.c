//  up_multipart.c — the `file` part of a multipart/form-data body
//  (up_multipart.h). Delimiters are found with memmem on the body as it is;
//  headers are read only within the part's header block.
#define _GNU_SOURCE
#include "up_multipart.h"
#include "upload_limits.h"
#include "tl_error.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool
up_multipart_is (const char *content_type)
{
    if (!content_type)
        return false;
    while (*content_type == ' ')
        content_type++;
    size_t len = strcspn (content_type, "; ");
    return len == 19 && strncasecmp (content_type, "multipart/form-data", 19) == 0;
}

//  Finds parameter `name` of a header value ("a; name=x; b=\"y\"") in
//  `value` (`len` bytes) and copies it, unquoted, into `out`. Returns
//  true when found and it fits.
static bool
s_param (const char *value, size_t len, const char *name, char *out, size_t size)
{
    size_t name_len = strlen (name);
    size_t at = 0;
    while (at < len) {
        //  to the next ';' outside quotes
        bool quoted = false;
        while (at < len && (quoted || value [at] != ';')) {
            if (value [at] == '"')
                quoted = !quoted;
            at++;
        }
        if (at >= len)
            return false;
        at++;                           //  past ';'
        while (at < len && (value [at] == ' ' || value [at] == '\t'))
            at++;
        if (len - at > name_len && strncasecmp (value + at, name, name_len) == 0
        &&  value [at + name_len] == '=') {
            at += name_len + 1;
            size_t n = 0;
            if (at < len && value [at] == '"') {
                at++;
                while (at < len && value [at] != '"') {
                    if (value [at] == '\\' && at + 1 < len)
                        at++;
                    if (n + 1 >= size)
                        return false;
                    out [n++] = value [at++];
                }
                if (at >= len)
                    return false;       //  unterminated
            }
            else
                while (at < len && value [at] != ';' && value [at] != ' ') {
                    if (n + 1 >= size)
                        return false;
                    out [n++] = value [at++];
                }
            out [n] = 0;
            return true;
        }
    }
    return false;
}

//  Reads one part's header block (`len` bytes, lines ending CRLF) for its
//  name and content type. Returns 0 or TL_EINVAL.
static int
s_part_headers (const char *head, size_t len, char *name, size_t name_size, char *type,
                size_t type_size)
{
    *name = 0;
    *type = 0;
    bool disposition = false;
    size_t at = 0;
    while (at < len) {
        const char *eol = memmem (head + at, len - at, "\r\n", 2);
        size_t line_len = eol ? (size_t) (eol - (head + at)) : len - at;
        const char *line = head + at;
        const char *colon = memchr (line, ':', line_len);
        if (!colon)
            return TL_EINVAL;
        size_t key_len = (size_t) (colon - line);
        const char *value = colon + 1;
        size_t value_len = line_len - key_len - 1;
        while (value_len && (*value == ' ' || *value == '\t')) {
            value++;
            value_len--;
        }
        if (key_len == 19 && strncasecmp (line, "Content-Disposition", 19) == 0) {
            if (value_len < 9 || strncasecmp (value, "form-data", 9) != 0 || disposition)
                return TL_EINVAL;
            disposition = true;
            if (!s_param (value, value_len, "name", name, name_size))
                *name = 0;
        }
        else
        if (key_len == 12 && strncasecmp (line, "Content-Type", 12) == 0) {
            if (value_len >= type_size)
                return TL_EINVAL;
            memcpy (type, value, value_len);
            type [value_len] = 0;
        }
        at += line_len + 2;
    }
    return disposition ? 0 : TL_EINVAL;
}

//  The reader of up_multipart_file, which clears *file when it fails.
static int
s_read_body (const char *content_type, const uint8_t *body, size_t size, up_part_t *file)
{
    if (!up_multipart_is (content_type) || (!body && size))
        return TL_EINVAL;
    const char *params = content_type + strcspn (content_type, ";");
    char boundary [UP_MULTIPART_MAX_BOUNDARY + 1];
    if (!s_param (params, strlen (params), "boundary", boundary, sizeof boundary)
    ||  !*boundary)
        return TL_EINVAL;
    //  "\r\n--" boundary: the body is read as if it started with CRLF, so
    //  that the first delimiter needs no preamble.
    char delim [UP_MULTIPART_MAX_BOUNDARY + 5];
    size_t delim_len = (size_t) snprintf (delim, sizeof delim, "\r\n--%s", boundary);
    const char *text = (const char *) body;
    size_t at;
    if (size >= delim_len - 2 && memcmp (text, delim + 2, delim_len - 2) == 0)
        at = delim_len - 2;
    else {
        const char *first = size ? memmem (text, size, delim, delim_len) : NULL;
        if (!first)
            return TL_EINVAL;
        at = (size_t) (first - text) + delim_len;
    }
    int parts = 0, files = 0;
    while (true) {
        //  after a delimiter: "--" ends the body, else CRLF and a part
        if (size - at >= 2 && memcmp (text + at, "--", 2) == 0)
            break;
        while (at < size && (text [at] == ' ' || text [at] == '\t'))
            at++;                       //  transport padding
        if (size - at < 2 || memcmp (text + at, "\r\n", 2) != 0)
            return TL_EINVAL;
        at += 2;
        if (++parts > UP_MULTIPART_MAX_PARTS)
            return TL_EINVAL;
        size_t window = size - at < UP_MULTIPART_MAX_HEAD + 4 ? size - at
                                                             : UP_MULTIPART_MAX_HEAD + 4;
        const char *end_head = memmem (text + at, window, "\r\n\r\n", 4);
        if (!end_head)
            return TL_EINVAL;
        size_t head_len = (size_t) (end_head - (text + at));
        char name [64], type [sizeof file->content_type];
        if (s_part_headers (text + at, head_len, name, sizeof name, type, sizeof type))
            return TL_EINVAL;
        at += head_len + 4;
        const char *next = memmem (text + at, size - at, delim, delim_len);
        if (!next)
            return TL_EINVAL;           //  no closing delimiter
        size_t content = (size_t) (next - (text + at));
        if (strcmp (name, "file") == 0) {
            if (++files > 1)
                return TL_EEXIST;
            file->data = body + at;
            file->size = content;
            snprintf (file->content_type, sizeof file->content_type, "%s", type);
        }
        at += content + delim_len;
    }
    return files ? 0 : TL_ENOTFOUND;
}

int
up_multipart_file (const char *content_type, const uint8_t *body, size_t size,
                   up_part_t *file)
{
    assert (file);
    memset (file, 0, sizeof *file);
    int rc = s_read_body (content_type, body, size, file);
    if (rc)
        memset (file, 0, sizeof *file);
    return rc;
}

//  ---------------------------------------------------------------------
//  Self-test

static int
s_read (const char *type, const char *body, up_part_t *file)
{
    return up_multipart_file (type, (const uint8_t *) body, strlen (body), file);
}

static void
s_test_finds_the_file_part (void)
{
    const char *body =
        "preamble\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"a;b.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
        "\x89PNG\r\n--XY\r\n"
        "--XyZ--\r\n";
    up_part_t file;
    assert (s_read ("multipart/form-data; boundary=XyZ", body, &file) == 0);
    assert (file.size == 10 && memcmp (file.data, "\x89PNG\r\n--XY", 10) == 0);
    assert (strcmp (file.content_type, "image/png") == 0);
    assert (s_read ("Multipart/Form-Data; charset=x; boundary=\"XyZ\"", body, &file) == 0);
}

static void
s_test_missing_and_doubled_file (void)
{
    const char *none =
        "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--";
    up_part_t file;
    assert (s_read ("multipart/form-data; boundary=b", none, &file) == TL_ENOTFOUND);
    const char *two =
        "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n"
        "--b\r\nContent-Disposition: form-data; name=file\r\n\r\ny\r\n--b--";
    assert (s_read ("multipart/form-data; boundary=b", two, &file) == TL_EEXIST);
    assert (file.data == NULL && file.size == 0);       //  nothing half-read
    //  a filename alone is no name
    const char *filename_only =
        "--b\r\nContent-Disposition: form-data; filename=\"file\"\r\n\r\nx\r\n--b--";
    assert (s_read ("multipart/form-data; boundary=b", filename_only, &file) == TL_ENOTFOUND);
}

static void
s_test_malformed_bodies (void)
{
    up_part_t file;
    const char *type = "multipart/form-data; boundary=b";
    const char *bad [] = {
        "",
        "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx",     //  unclosed
        "--b\r\nContent-Disposition: form-data; name=\"file\"\r\nx\r\n--b--",  //  no blank line
        "--b\r\nX-Nothing\r\n\r\nx\r\n--b--",                                 //  no colon
        "--b\r\nContent-Type: image/png\r\n\r\nx\r\n--b--",                   //  no disposition
        "--bx\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert (s_read (type, bad [i], &file) == TL_EINVAL);
    assert (s_read ("multipart/form-data", "--b--", &file) == TL_EINVAL);
    assert (s_read ("multipart/form-data; boundary=\"\"", "----", &file) == TL_EINVAL);
    assert (s_read ("image/png", "--b--", &file) == TL_EINVAL);
    assert (up_multipart_is (" multipart/form-data;boundary=x"));
    assert (!up_multipart_is ("multipart/mixed; boundary=x"));
}

static void
s_test_part_count_is_bounded (void)
{
    char body [4096] = "";
    for (int i = 0; i <= UP_MULTIPART_MAX_PARTS; i++)
        strcat (body, "--b\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\nv\r\n");
    strcat (body, "--b--");
    up_part_t file;
    assert (s_read ("multipart/form-data; boundary=b", body, &file) == TL_EINVAL);
}

void
up_multipart_test (bool verbose)
{
    (void) verbose;
    s_test_finds_the_file_part ();
    s_test_missing_and_doubled_file ();
    s_test_malformed_bodies ();
    s_test_part_count_is_bounded ();
}
