//  mail_mime.c — builds one RFC 5322 / MIME message (see mail_mime.h).
//  Layout: a lone body part, or multipart/alternative (text, html), inside
//  multipart/mixed when there are attachments. The html, when it has
//  inline parts, is a multipart/related of the html and those parts. Bodies are quoted-printable,
//  attachments base64 in 76-character lines. Boundaries are "=_tally_" and
//  32 random hex digits: quoted-printable never writes "=_" (its '=' is
//  followed by two hex digits or a line end) and base64 never writes '_',
//  so no encoded content can contain a delimiter line.
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "mail_mime.h"
#include "tl_valid.h"
#include "tl_json.h"
#include "mail_limits.h"
#include "tl_error.h"

#define S_HEADER_LINE_MAX   78      //  RFC 5322 2.1.1 SHOULD
#define S_LINE_MAX          998     //  RFC 5322 2.1.1 MUST
#define S_QP_LINE_MAX       76      //  RFC 2045 6.7 (5)
#define S_B64_LINE_BYTES    57      //  57 bytes -> 76 characters
#define S_BOUNDARY_PREFIX   "=_tally_"
#define S_BOUNDARY_RANDOM   16      //  bytes, written as 32 hex digits
#define S_BOUNDARY_LEN      (sizeof (S_BOUNDARY_PREFIX) - 1 + 2 * S_BOUNDARY_RANDOM)
#define S_MSGID_DOMAIN      "tally"

typedef struct {
    char *name;
    char *content_type;
    char *content_id;               //  an inline part's, or NULL
    unsigned char *data;
    size_t size;
} s_attachment_t;

struct _mail_mime_t {
    char *from;                     //  addr-spec
    char *from_name;                //  display name or NULL
    char *to [MAIL_MAX_RECIPIENTS];
    size_t nto;
    char *subject;                  //  or NULL
    time_t date;
    bool has_date;
    char *message_id;               //  "<id@tally>" or NULL
    char *text;                     //  or NULL
    char *html;                     //  or NULL
    s_attachment_t attachments [MAIL_MAX_ATTACHMENTS];
    size_t nattachments;
};

//  An output cursor that keeps the first error, so that a writer can emit
//  a run of pieces and test once at the end.
typedef struct {
    tl_buf_t *buf;
    int rc;
} s_out_t;


//  --------------------------------------------------------------------------
//  Small checks

//  Returns true when `text` has a C0 control character (CR and LF among
//  them) or DEL: such a value can never go into a header.

static bool
s_has_control (const char *text)
{
    for (const unsigned char *s = (const unsigned char *) text; *s; s++)
        if (*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}


//  Returns true when every byte of `text` is printable ASCII.

static bool
s_is_printable_ascii (const char *text)
{
    for (const unsigned char *s = (const unsigned char *) text; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}


//  RFC 5322 atext, the characters of a dot-atom local part.

//  RFC 2045 token character (printable ASCII but tspecials and space).

static bool
s_is_token_char (int c)
{
    return c > 0x20 && c < 0x7f && !strchr ("()<>@,;:\\\"/[]?=", c);
}


//  Returns true for "type/subtype" made of token characters.

static bool
s_content_type_valid (const char *type)
{
    size_t size = strlen (type);
    if (size == 0 || size > MAIL_MAX_CONTENT_TYPE_LEN)
        return false;
    const char *slash = strchr (type, '/');
    if (!slash || slash == type || slash [1] == 0)
        return false;
    for (const char *s = type; *s; s++)
        if (s != slash && !s_is_token_char ((unsigned char) *s))
            return false;
    return true;
}


//  --------------------------------------------------------------------------
//  Creates an empty message.

mail_mime_t *
mail_mime_new (void)
{
    mail_mime_t *self = (mail_mime_t *) calloc (1, sizeof (mail_mime_t));
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys the message and nulls the reference.

void
mail_mime_destroy (mail_mime_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        mail_mime_t *self = *self_p;
        free (self->from);
        free (self->from_name);
        for (size_t i = 0; i < self->nto; i++)
            free (self->to [i]);
        free (self->subject);
        free (self->message_id);
        free (self->text);
        free (self->html);
        for (size_t i = 0; i < self->nattachments; i++) {
            free (self->attachments [i].name);
            free (self->attachments [i].content_type);
            free (self->attachments [i].content_id);
            free (self->attachments [i].data);
        }
        free (self);
        *self_p = NULL;
    }
}


//  Replaces *field with a copy of `value` (NULL clears). Returns 0 or
//  TL_ENOMEM, leaving *field unchanged on failure.

static int
s_replace (char **field, const char *value)
{
    char *copy = NULL;
    if (value) {
        copy = strdup (value);
        if (!copy)
            return TL_ENOMEM;
    }
    free (*field);
    *field = copy;
    return 0;
}


//  --------------------------------------------------------------------------
//  Sets the sender.

int
mail_mime_set_from (mail_mime_t *self, const char *address, const char *name)
{
    assert (self);
    if (!tl_valid_email (address))
        return TL_EINVAL;
    if (name) {
        size_t size = strlen (name);
        if (size > MAIL_MAX_DISPLAY_NAME_LEN || s_has_control (name)
        ||  !tl_json_utf8_valid (name, size))
            return TL_EINVAL;
        if (size == 0)
            name = NULL;
    }
    char *from_name = NULL;
    if (s_replace (&from_name, name))
        return TL_ENOMEM;
    if (s_replace (&self->from, address)) {
        free (from_name);
        return TL_ENOMEM;
    }
    free (self->from_name);
    self->from_name = from_name;
    return 0;
}


//  --------------------------------------------------------------------------
//  Adds a recipient.

int
mail_mime_add_to (mail_mime_t *self, const char *address)
{
    assert (self);
    if (!tl_valid_email (address))
        return TL_EINVAL;
    if (self->nto == MAIL_MAX_RECIPIENTS)
        return TL_ETOOBIG;
    char *copy = strdup (address);
    if (!copy)
        return TL_ENOMEM;
    self->to [self->nto++] = copy;
    return 0;
}


//  --------------------------------------------------------------------------
//  Sets the subject.

int
mail_mime_set_subject (mail_mime_t *self, const char *subject)
{
    assert (self);
    assert (subject);
    size_t size = strlen (subject);
    if (s_has_control (subject) || !tl_json_utf8_valid (subject, size))
        return TL_EINVAL;
    if (size > MAIL_MAX_SUBJECT_LEN)
        return TL_ETOOBIG;
    return s_replace (&self->subject, subject);
}


//  --------------------------------------------------------------------------
//  Sets the date.

void
mail_mime_set_date (mail_mime_t *self, time_t date)
{
    assert (self);
    self->date = date;
    self->has_date = true;
}


//  --------------------------------------------------------------------------
//  Sets Message-ID from an outbox id.

int
mail_mime_set_message_id (mail_mime_t *self, const char *outbox_id)
{
    assert (self);
    assert (outbox_id);
    size_t size = strlen (outbox_id);
    if (size == 0 || size > MAIL_MAX_OUTBOX_ID_LEN)
        return TL_EINVAL;
    for (const char *s = outbox_id; *s; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
               || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-';
        if (!ok)
            return TL_EINVAL;
    }
    char id [MAIL_MAX_OUTBOX_ID_LEN + sizeof ("<@" S_MSGID_DOMAIN ">")];
    snprintf (id, sizeof id, "<%s@" S_MSGID_DOMAIN ">", outbox_id);
    return s_replace (&self->message_id, id);
}


const char *
mail_mime_message_id (mail_mime_t *self)
{
    assert (self);
    return self->message_id;
}


const char *
mail_mime_from (mail_mime_t *self)
{
    assert (self);
    return self->from;
}


const char *const *
mail_mime_to (mail_mime_t *self, size_t *count)
{
    assert (self);
    assert (count);
    *count = self->nto;
    return (const char *const *) self->to;
}


//  Checks and stores one body.

static int
s_set_body (char **field, const char *body)
{
    assert (body);
    size_t size = strlen (body);
    if (size > MAIL_MAX_BODY_BYTES)
        return TL_ETOOBIG;
    if (!tl_json_utf8_valid (body, size))
        return TL_EINVAL;
    return s_replace (field, body);
}


//  --------------------------------------------------------------------------
//  Sets the text/plain body.

int
mail_mime_set_text (mail_mime_t *self, const char *text)
{
    assert (self);
    return s_set_body (&self->text, text);
}


//  --------------------------------------------------------------------------
//  Sets the text/html body.

int
mail_mime_set_html (mail_mime_t *self, const char *html)
{
    assert (self);
    return s_set_body (&self->html, html);
}


//  Returns true for a content id: "left@right", each side one or more of
//  [A-Za-z0-9._-], at most MAIL_MAX_OUTBOX_ID_LEN bytes in all.

static bool
s_content_id_valid (const char *id)
{
    size_t size = strlen (id);
    const char *at = strchr (id, '@');
    if (size > MAIL_MAX_OUTBOX_ID_LEN || !at || at == id || at [1] == 0
    ||  strchr (at + 1, '@'))
        return false;
    for (const char *s = id; *s; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
               || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'
               || s == at;
        if (!ok)
            return false;
    }
    return true;
}


//  Checks and stores an attachment, or an inline part when `content_id`
//  is not NULL.

static int
s_add_part (mail_mime_t *self, const char *name, const char *content_type,
            const char *content_id, const void *data, size_t size)
{
    assert (self);
    assert (name);
    assert (content_type);
    assert (data || size == 0);
    size_t name_size = strlen (name);
    if (name_size == 0 || s_has_control (name) || !tl_json_utf8_valid (name, name_size)
    ||  strchr (name, '/') || strchr (name, '\\'))
        return TL_EINVAL;
    if (!s_content_type_valid (content_type))
        return TL_EINVAL;
    if (content_id) {
        if (!s_content_id_valid (content_id))
            return TL_EINVAL;
        for (size_t i = 0; i < self->nattachments; i++)
            if (self->attachments [i].content_id
            &&  strcasecmp (self->attachments [i].content_id, content_id) == 0)
                return TL_EINVAL;
    }
    if (name_size > MAIL_MAX_ATTACHMENT_NAME || size > MAIL_MAX_ATTACHMENT_BYTES
    ||  self->nattachments == MAIL_MAX_ATTACHMENTS)
        return TL_ETOOBIG;
    s_attachment_t attachment = {
        .name = strdup (name),
        .content_type = strdup (content_type),
        .content_id = content_id? strdup (content_id): NULL,
        .data = (unsigned char *) malloc (size? size: 1),
        .size = size
    };
    if (!attachment.name || !attachment.content_type || !attachment.data
    ||  (content_id && !attachment.content_id)) {
        free (attachment.name);
        free (attachment.content_type);
        free (attachment.content_id);
        free (attachment.data);
        return TL_ENOMEM;
    }
    if (size)
        memcpy (attachment.data, data, size);
    self->attachments [self->nattachments++] = attachment;
    return 0;
}


//  --------------------------------------------------------------------------
//  Adds an attachment.

int
mail_mime_add_attachment (mail_mime_t *self, const char *name,
                          const char *content_type, const void *data, size_t size)
{
    return s_add_part (self, name, content_type, NULL, data, size);
}


//  --------------------------------------------------------------------------
//  Adds an inline part of the HTML body.

int
mail_mime_add_inline (mail_mime_t *self, const char *name, const char *content_type,
                      const char *content_id, const void *data, size_t size)
{
    assert (content_id);
    return s_add_part (self, name, content_type, content_id, data, size);
}


//  --------------------------------------------------------------------------
//  Writers

static void
s_put (s_out_t *out, const void *data, size_t size)
{
    if (out->rc == 0)
        out->rc = tl_buf_append (out->buf, data, size);
}

static void
s_puts (s_out_t *out, const char *text)
{
    s_put (out, text, strlen (text));
}

static void
s_putf (s_out_t *out, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_putf (s_out_t *out, const char *format, ...)
{
    char line [S_LINE_MAX + 1];
    va_list args;
    va_start (args, format);
    int size = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    //  Callers only format short, bounded pieces.
    assert (size >= 0 && (size_t) size < sizeof line);
    s_put (out, line, (size_t) size);
}


//  Writes `text` as RFC 2047 B encoded-words, folding (CRLF SP) so that
//  no line passes S_HEADER_LINE_MAX. *column is the current line's length
//  on entry and exit. Words never split a UTF-8 character (RFC 2047 5).

static void
s_put_encoded_words (s_out_t *out, size_t *column, const char *text)
{
    const char *open = "=?UTF-8?B?";
    const char *close = "?=";
    size_t overhead = strlen (open) + strlen (close);
    size_t size = strlen (text);
    size_t done = 0;
    bool first = true;
    while (done < size || first) {
        //  One space before every word but the first on the header line.
        size_t separator = first? 0: 1;
        size_t room = S_HEADER_LINE_MAX - *column;
        size_t chunk = room > overhead + separator + 4
                     ? (room - overhead - separator) / 4 * 3: 0;
        if (chunk > size - done)
            chunk = size - done;
        while (chunk > 0 && done + chunk < size
        &&     ((unsigned char) text [done + chunk] & 0xc0) == 0x80)
            chunk--;                //  back off to a character start
        if (chunk == 0 && size > done) {
            //  No room on this line: fold and retry.
            assert (*column > 1);
            s_puts (out, "\r\n ");
            *column = 1;
            first = true;           //  the fold itself separates the words
            continue;
        }
        char encoded [S_HEADER_LINE_MAX + 1];
        sodium_bin2base64 (encoded, sizeof encoded,
                           (const unsigned char *) text + done, chunk,
                           sodium_base64_VARIANT_ORIGINAL);
        if (!first)
            s_puts (out, " ");
        s_puts (out, open);
        s_puts (out, encoded);
        s_puts (out, close);
        *column += separator + overhead + strlen (encoded);
        done += chunk;
        first = false;
        if (size == 0)
            break;
    }
}


//  Writes a header whose value is free UTF-8 text: raw when it is short
//  printable ASCII that cannot be mistaken for an encoded-word, else as
//  encoded-words.

static void
s_put_text_header (s_out_t *out, const char *name, const char *value)
{
    size_t column = strlen (name) + 2;
    s_puts (out, name);
    s_puts (out, ": ");
    if (s_is_printable_ascii (value) && !strstr (value, "=?")
    &&  column + strlen (value) <= S_HEADER_LINE_MAX)
        s_puts (out, value);
    else
        s_put_encoded_words (out, &column, value);
    s_puts (out, "\r\n");
}


//  Writes From: — display name as a quoted string or encoded-words.

static void
s_put_from (s_out_t *out, mail_mime_t *self)
{
    size_t column = strlen ("From: ");
    s_puts (out, "From: ");
    if (self->from_name) {
        const char *name = self->from_name;
        size_t quoted = 2;
        for (const char *s = name; *s; s++)
            quoted += (*s == '"' || *s == '\\')? 2: 1;
        if (s_is_printable_ascii (name) && !strstr (name, "=?")
        &&  column + quoted <= S_HEADER_LINE_MAX) {
            s_puts (out, "\"");
            for (const char *s = name; *s; s++) {
                if (*s == '"' || *s == '\\')
                    s_puts (out, "\\");
                s_put (out, s, 1);
            }
            s_puts (out, "\"");
            column += quoted;
        }
        else
            s_put_encoded_words (out, &column, name);
        if (column + 3 + strlen (self->from) > S_HEADER_LINE_MAX) {
            s_puts (out, "\r\n");
            column = 0;
        }
        s_puts (out, " ");
        column++;
    }
    s_putf (out, "<%s>\r\n", self->from);
}


//  Writes To:, folding between addresses.

static void
s_put_to (s_out_t *out, mail_mime_t *self)
{
    size_t column = strlen ("To: ");
    s_puts (out, "To: ");
    for (size_t i = 0; i < self->nto; i++) {
        size_t size = strlen (self->to [i]) + (i + 1 < self->nto? 1: 0);
        if (i > 0) {
            if (column + 1 + size > S_HEADER_LINE_MAX) {
                s_puts (out, "\r\n ");
                column = 1;
            }
            else {
                s_puts (out, " ");
                column++;
            }
        }
        s_puts (out, self->to [i]);
        if (i + 1 < self->nto)
            s_puts (out, ",");
        column += size;
    }
    s_puts (out, "\r\n");
}


//  Writes Date: in the RFC 5322 3.3 form, in UTC, with English names
//  whatever the locale.

static void
s_put_date (s_out_t *out, time_t date)
{
    static const char *days [] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months [] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    if (!gmtime_r (&date, &tm)) {
        out->rc = out->rc? out->rc: TL_EINVAL;
        return;
    }
    s_putf (out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
            days [tm.tm_wday], tm.tm_mday, months [tm.tm_mon], tm.tm_year + 1900,
            tm.tm_hour, tm.tm_min, tm.tm_sec);
}


//  Writes `text` quoted-printable: LF and CRLF become CRLF hard breaks, a
//  lone CR is =0D, lines are soft-broken to at most S_QP_LINE_MAX
//  characters, a space or tab before a line end is encoded. Leaves no CRLF
//  after the last line.

static void
s_put_qp (s_out_t *out, const char *text)
{
    static const char hex [] = "0123456789ABCDEF";
    char chunk [1024];
    size_t used = 0;
    size_t column = 0;
    for (const char *s = text; *s; s++) {
        if (used + 8 > sizeof chunk) {
            s_put (out, chunk, used);
            used = 0;
        }
        unsigned char c = (unsigned char) *s;
        if (c == '\n' || (c == '\r' && s [1] == '\n')) {
            if (c == '\r')
                s++;
            chunk [used++] = '\r';
            chunk [used++] = '\n';
            column = 0;
            continue;
        }
        bool at_line_end = s [1] == 0 || s [1] == '\n'
                        || (s [1] == '\r' && s [2] == '\n');
        bool literal = (c >= 33 && c <= 126 && c != '=')
                    || ((c == ' ' || c == '\t') && !at_line_end);
        size_t width = literal? 1: 3;
        //  Keep room for the '=' of a soft break.
        if (column + width > S_QP_LINE_MAX - 1) {
            chunk [used++] = '=';
            chunk [used++] = '\r';
            chunk [used++] = '\n';
            column = 0;
        }
        if (literal)
            chunk [used++] = (char) c;
        else {
            chunk [used++] = '=';
            chunk [used++] = hex [c >> 4];
            chunk [used++] = hex [c & 15];
        }
        column += width;
    }
    s_put (out, chunk, used);
}


//  Writes `data` base64 in lines of 76 characters, CRLF between lines and
//  none after the last.

static void
s_put_base64 (s_out_t *out, const unsigned char *data, size_t size)
{
    char line [S_B64_LINE_BYTES / 3 * 4 + 1];
    for (size_t done = 0; done < size; done += S_B64_LINE_BYTES) {
        size_t chunk = size - done < S_B64_LINE_BYTES? size - done: S_B64_LINE_BYTES;
        sodium_bin2base64 (line, sizeof line, data + done, chunk,
                           sodium_base64_VARIANT_ORIGINAL);
        if (done > 0)
            s_puts (out, "\r\n");
        s_puts (out, line);
    }
}


//  Writes a filename parameter: a quoted string when the name is short,
//  plain ASCII; else RFC 2231 percent-encoded UTF-8, continued over lines.

static void
s_put_filename (s_out_t *out, const char *name)
{
    const size_t quoted_room = S_HEADER_LINE_MAX - strlen (" filename=\"\"");
    if (s_is_printable_ascii (name) && !strchr (name, '"') && !strchr (name, '\\')
    &&  strlen (name) <= quoted_room) {
        s_putf (out, " filename=\"%s\"", name);
        return;
    }
    static const char hex [] = "0123456789ABCDEF";
    const size_t segment_max = 48;  //  keeps " filename*NN*=UTF-8''" + 48 + ";" short
    char segment [64];
    size_t used = 0;
    unsigned index = 0;
    for (const unsigned char *s = (const unsigned char *) name;; s++) {
        bool attr_char = *s && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
                      || (*s >= '0' && *s <= '9') || strchr ("!#$&+-.^_`|~", *s));
        size_t width = attr_char? 1: 3;
        if (*s == 0 || used + width > segment_max) {
            segment [used] = 0;
            s_putf (out, "%s filename*%u*=%s%s", index? ";\r\n": "", index,
                    index? "": "UTF-8''", segment);
            index++;
            used = 0;
            if (*s == 0)
                break;
        }
        if (attr_char)
            segment [used++] = (char) *s;
        else {
            segment [used++] = '%';
            segment [used++] = hex [*s >> 4];
            segment [used++] = hex [*s & 15];
        }
    }
}


//  Makes a fresh boundary into `boundary` (S_BOUNDARY_LEN + 1 bytes).

static void
s_new_boundary (char *boundary)
{
    unsigned char random [S_BOUNDARY_RANDOM];
    randombytes_buf (random, sizeof random);
    strcpy (boundary, S_BOUNDARY_PREFIX);
    sodium_bin2hex (boundary + strlen (S_BOUNDARY_PREFIX),
                    2 * S_BOUNDARY_RANDOM + 1, random, sizeof random);
}


//  Writes one text part (its headers, a blank line, its QP content).

static void
s_put_text_part (s_out_t *out, const char *subtype, const char *text)
{
    s_putf (out, "Content-Type: text/%s; charset=UTF-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n", subtype);
    s_put_qp (out, text);
}


//  True when part `i` goes inside the multipart/related of the html.

static bool
s_is_related (mail_mime_t *self, size_t i)
{
    return self->html && self->attachments [i].content_id;
}


//  Counts the parts that go into the multipart/related (`related`) or
//  into the multipart/mixed (not `related`).

static size_t
s_count_parts (mail_mime_t *self, bool related)
{
    size_t count = 0;
    for (size_t i = 0; i < self->nattachments; i++)
        if (s_is_related (self, i) == related)
            count++;
    return count;
}


//  Writes one attachment or inline part: its headers, a blank line and
//  its base64 content.

static void
s_put_file_part (s_out_t *out, s_attachment_t *attachment, bool inline_part)
{
    s_putf (out, "Content-Type: %s\r\n", attachment->content_type);
    s_puts (out, "Content-Transfer-Encoding: base64\r\n");
    if (attachment->content_id)
        s_putf (out, "Content-ID: <%s>\r\n", attachment->content_id);
    s_puts (out, inline_part? "Content-Disposition: inline;\r\n"
                            : "Content-Disposition: attachment;\r\n");
    s_put_filename (out, attachment->name);
    s_puts (out, "\r\n\r\n");
    s_put_base64 (out, attachment->data, attachment->size);
}


//  Writes the html: one text/html part, or multipart/related of the html
//  and its inline parts. Ends without a CRLF, as s_put_body.

static void
s_put_html (s_out_t *out, mail_mime_t *self)
{
    if (s_count_parts (self, true) == 0) {
        s_put_text_part (out, "html", self->html);
        return;
    }
    char boundary [S_BOUNDARY_LEN + 1];
    s_new_boundary (boundary);
    s_putf (out, "Content-Type: multipart/related; type=\"text/html\";\r\n"
                 " boundary=\"%s\"\r\n\r\n", boundary);
    s_putf (out, "--%s\r\n", boundary);
    s_put_text_part (out, "html", self->html);
    for (size_t i = 0; i < self->nattachments; i++)
        if (s_is_related (self, i)) {
            s_putf (out, "\r\n--%s\r\n", boundary);
            s_put_file_part (out, &self->attachments [i], true);
        }
    s_putf (out, "\r\n--%s--", boundary);
}


//  Writes the body: one text part, the html (s_put_html), or
//  multipart/alternative of both. The content ends without a CRLF (the
//  enclosing delimiter brings one).

static void
s_put_body (s_out_t *out, mail_mime_t *self)
{
    if (self->text && self->html) {
        char boundary [S_BOUNDARY_LEN + 1];
        s_new_boundary (boundary);
        s_putf (out, "Content-Type: multipart/alternative;\r\n"
                     " boundary=\"%s\"\r\n\r\n", boundary);
        s_putf (out, "--%s\r\n", boundary);
        s_put_text_part (out, "plain", self->text);
        s_putf (out, "\r\n--%s\r\n", boundary);
        s_put_html (out, self);
        s_putf (out, "\r\n--%s--", boundary);
    }
    else
    if (self->html)
        s_put_html (out, self);
    else
        s_put_text_part (out, "plain", self->text);
}


//  --------------------------------------------------------------------------
//  Appends the built message to `out`.

int
mail_mime_build (mail_mime_t *self, tl_buf_t *buf)
{
    assert (self);
    assert (buf);
    if (!self->from || self->nto == 0 || !self->message_id
    ||  (!self->text && !self->html))
        return TL_EINVAL;
    size_t start = tl_buf_size (buf);
    s_out_t out = { buf, 0 };
    s_put_from (&out, self);
    s_put_to (&out, self);
    if (self->subject)
        s_put_text_header (&out, "Subject", self->subject);
    s_put_date (&out, self->has_date? self->date: time (NULL));
    s_putf (&out, "Message-ID: %s\r\n", self->message_id);
    s_puts (&out, "MIME-Version: 1.0\r\n");
    if (s_count_parts (self, false) == 0) {
        s_put_body (&out, self);
        //  A lone part is the whole body: end it with one CRLF, not two.
        size_t size = tl_buf_size (buf);
        if (size < 2 || memcmp (tl_buf_data (buf) + size - 2, "\r\n", 2) != 0)
            s_puts (&out, "\r\n");
    }
    else {
        char boundary [S_BOUNDARY_LEN + 1];
        s_new_boundary (boundary);
        s_putf (&out, "Content-Type: multipart/mixed;\r\n"
                      " boundary=\"%s\"\r\n\r\n", boundary);
        s_putf (&out, "--%s\r\n", boundary);
        s_put_body (&out, self);
        for (size_t i = 0; i < self->nattachments; i++)
            if (!s_is_related (self, i)) {
                s_putf (&out, "\r\n--%s\r\n", boundary);
                s_put_file_part (&out, &self->attachments [i], false);
            }
        s_putf (&out, "\r\n--%s--\r\n", boundary);
    }
    if (out.rc)
        tl_buf_truncate (buf, start);
    return out.rc;
}


//  --------------------------------------------------------------------------
//  Builds the message into a new string.

int
mail_mime_build_str (mail_mime_t *self, char **message_p, size_t *size_p)
{
    assert (self);
    assert (message_p);
    assert (size_p);
    *message_p = NULL;
    *size_p = 0;
    tl_buf_t *buf = tl_buf_new (MAIL_MAX_MESSAGE_BYTES);
    if (!buf)
        return TL_ENOMEM;
    int rc = mail_mime_build (self, buf);
    if (rc == 0) {
        *message_p = tl_buf_steal (buf, size_p);
        if (!*message_p)
            rc = TL_ENOMEM;
    }
    tl_buf_destroy (&buf);
    return rc;
}


//  --------------------------------------------------------------------------
//  Self-test helpers: a small reader of what mail_mime_build writes.

//  Returns a copy of the value of header `name` in the header block that
//  starts at `head` (up to the first empty line), unfolded; NULL if absent.

static char *
s_test_header (const char *head, const char *name)
{
    const char *end = strstr (head, "\r\n\r\n");
    assert (end);
    size_t name_size = strlen (name);
    for (const char *line = head; line < end;) {
        const char *eol = strstr (line, "\r\n");
        if (strncasecmp (line, name, name_size) == 0 && line [name_size] == ':') {
            char *value = (char *) calloc (1, (size_t) (end - line) + 1);
            assert (value);
            const char *s = line + name_size + 1;
            while (*s == ' ')
                s++;
            size_t used = 0;
            while (s < end + 2) {
                if (s [0] == '\r' && s [1] == '\n') {
                    if (s + 2 >= end + 2 || (s [2] != ' ' && s [2] != '\t'))
                        break;
                    s += 2;         //  unfold: drop the CRLF, keep the space
                    continue;
                }
                value [used++] = *s++;
            }
            return value;
        }
        line = eol + 2;
    }
    return NULL;
}


//  Returns the boundary parameter of a Content-Type value (a copy).

static char *
s_test_boundary (const char *content_type)
{
    const char *at = strstr (content_type, "boundary=\"");
    assert (at);
    at += strlen ("boundary=\"");
    const char *end = strchr (at, '"');
    assert (end);
    return strndup (at, (size_t) (end - at));
}


//  Splits a multipart body at `boundary`: fills parts (pointers into the
//  body, not terminated) and their sizes; returns the count. Asserts the
//  closing delimiter is there.

static size_t
s_test_split (const char *body, const char *boundary,
              const char **parts, size_t *sizes, size_t max)
{
    char delimiter [128];
    snprintf (delimiter, sizeof delimiter, "--%s", boundary);
    size_t dsize = strlen (delimiter);
    //  The first delimiter opens the body.
    assert (strncmp (body, delimiter, dsize) == 0);
    const char *s = body + dsize;
    size_t count = 0;
    while (true) {
        if (strncmp (s, "--", 2) == 0)
            break;                  //  close delimiter
        assert (strncmp (s, "\r\n", 2) == 0);
        s += 2;
        char next [132];
        snprintf (next, sizeof next, "\r\n%s", delimiter);
        const char *end = strstr (s, next);
        assert (end);
        assert (count < max);
        parts [count] = s;
        sizes [count] = (size_t) (end - s);
        count++;
        s = end + strlen (next);
    }
    return count;
}


//  Decodes quoted-printable `size` bytes into a new string with CRLF line
//  ends left as they are.

static char *
s_test_qp_decode (const char *text, size_t size)
{
    char *out = (char *) malloc (size + 1);
    assert (out);
    size_t used = 0;
    for (size_t i = 0; i < size; i++) {
        if (text [i] == '=') {
            if (text [i + 1] == '\r' && text [i + 2] == '\n') {
                i += 2;
                continue;
            }
            char hex [3] = { text [i + 1], text [i + 2], 0 };
            out [used++] = (char) strtol (hex, NULL, 16);
            i += 2;
        }
        else
            out [used++] = text [i];
    }
    out [used] = 0;
    return out;
}


//  Decodes a header value made of encoded-words (and raw text) to UTF-8.

static char *
s_test_2047_decode (const char *value)
{
    char *out = (char *) calloc (1, strlen (value) + 1);
    assert (out);
    size_t used = 0;
    const char *s = value;
    while (*s) {
        if (strncmp (s, "=?UTF-8?B?", 10) == 0) {
            const char *end = strstr (s + 10, "?=");
            assert (end);
            size_t bin_size = 0;
            int rc = sodium_base642bin ((unsigned char *) out + used,
                                        strlen (value) - used, s + 10,
                                        (size_t) (end - s - 10), NULL, &bin_size,
                                        NULL, sodium_base64_VARIANT_ORIGINAL);
            assert (rc == 0);
            used += bin_size;
            s = end + 2;
            //  Whitespace between adjacent encoded-words is not content.
            const char *next = s;
            while (*next == ' ')
                next++;
            if (strncmp (next, "=?UTF-8?B?", 10) == 0)
                s = next;
        }
        else
            out [used++] = *s++;
    }
    out [used] = 0;
    return out;
}


//  Checks lines: CRLF only, none over `max` octets.

static void
s_test_lines (const char *message, size_t size, size_t max)
{
    if (size == 0)
        return;
    size_t column = 0;
    for (size_t i = 0; i < size; i++) {
        if (message [i] == '\r') {
            assert (i + 1 < size && message [i + 1] == '\n');
            i++;
            column = 0;
            continue;
        }
        assert (message [i] != '\n');
        column++;
        assert (column <= max);
    }
}


//  Counts the occurrences of `needle` in `haystack`.

static size_t
s_test_count (const char *haystack, const char *needle)
{
    size_t count = 0;
    for (const char *s = strstr (haystack, needle); s; s = strstr (s + 1, needle))
        count++;
    return count;
}


//  --------------------------------------------------------------------------
//  Self-test

void
mail_mime_test (bool verbose)
{
    assert (sodium_init () >= 0);

    //  Addresses: the strict addr-spec check.
    assert (tl_valid_email ("ana@example.com"));
    assert (tl_valid_email ("o'brien+tally@mail.example.co.uk"));
    assert (tl_valid_email ("a.b-c_d@x-y.example"));
    assert (!tl_valid_email (NULL));
    assert (!tl_valid_email (""));
    assert (!tl_valid_email ("ana"));
    assert (!tl_valid_email ("ana@localhost"));
    assert (!tl_valid_email ("ana@@example.com"));
    assert (!tl_valid_email ("a@b@example.com"));
    assert (!tl_valid_email ("@example.com"));
    assert (!tl_valid_email ("ana @example.com"));
    assert (!tl_valid_email ("ana@exa mple.com"));
    assert (!tl_valid_email ("ana@example.com\r\nBcc: x@y.com"));
    assert (!tl_valid_email ("<ana@example.com>"));
    assert (!tl_valid_email (".ana@example.com"));
    assert (!tl_valid_email ("ana.@example.com"));
    assert (!tl_valid_email ("an..a@example.com"));
    assert (!tl_valid_email ("ana@example..com"));
    assert (!tl_valid_email ("ana@example.com."));
    assert (!tl_valid_email ("ana@-example.com"));
    assert (!tl_valid_email ("ana@example-.com"));
    assert (!tl_valid_email ("an\xc3\xa1@example.com"));
    char long_address [MAIL_MAX_ADDRESS_LEN + 2];
    memset (long_address, 'a', sizeof long_address);
    memcpy (long_address, "ana@", 4);
    for (size_t i = 60; i < sizeof long_address - 5; i += 60)
        long_address [i] = '.';
    memcpy (long_address + sizeof long_address - 5, ".com", 5);
    assert (strlen (long_address) == MAIL_MAX_ADDRESS_LEN + 1);
    assert (!tl_valid_email (long_address));
    long_address [MAIL_MAX_ADDRESS_LEN - 4] = 0;
    strcat (long_address, ".com");
    assert (strlen (long_address) == MAIL_MAX_ADDRESS_LEN);
    assert (tl_valid_email (long_address));

    //  Header injection is refused at the setter, the message unchanged.
    mail_mime_t *mime = mail_mime_new ();
    assert (mime);
    assert (mail_mime_set_subject (mime, "Hi\r\nBcc: victim@example.com") == TL_EINVAL);
    assert (mail_mime_set_subject (mime, "Hi\nthere") == TL_EINVAL);
    assert (mail_mime_set_subject (mime, "Hi\rthere") == TL_EINVAL);
    assert (mail_mime_set_subject (mime, "bad \xc3\x28 utf-8") == TL_EINVAL);
    assert (mail_mime_set_from (mime, "tally@example.com", "Tally\r\nBcc: x@y.com") == TL_EINVAL);
    assert (mail_mime_set_from (mime, "tally@example.com\r\n", NULL) == TL_EINVAL);
    assert (mail_mime_add_to (mime, "x@y.com\nBcc: z@y.com") == TL_EINVAL);
    assert (mail_mime_set_message_id (mime, "abc>\r\nBcc: x") == TL_EINVAL);
    assert (mail_mime_set_message_id (mime, "a@b") == TL_EINVAL);
    assert (mail_mime_set_message_id (mime, "") == TL_EINVAL);
    assert (mail_mime_add_attachment (mime, "a\r\nb.txt", "text/plain", "x", 1) == TL_EINVAL);
    assert (mail_mime_add_attachment (mime, "../etc/passwd", "text/plain", "x", 1) == TL_EINVAL);
    assert (mail_mime_add_attachment (mime, "a.txt", "text/plain\r\nX: y", "x", 1) == TL_EINVAL);
    assert (mail_mime_add_attachment (mime, "a.txt", "text/plain; charset=x", "x", 1) == TL_EINVAL);
    assert (mail_mime_add_attachment (mime, "a.txt", "text", "x", 1) == TL_EINVAL);
    assert (mail_mime_set_text (mime, "bad \xff utf-8") == TL_EINVAL);
    //  Incomplete messages do not build.
    tl_buf_t *buf = tl_buf_new (MAIL_MAX_MESSAGE_BYTES);
    assert (buf);
    assert (mail_mime_build (mime, buf) == TL_EINVAL);
    assert (mail_mime_set_from (mime, "tally@example.com", NULL) == 0);
    assert (mail_mime_add_to (mime, "ana@example.com") == 0);
    assert (mail_mime_build (mime, buf) == TL_EINVAL);
    assert (mail_mime_set_message_id (mime, "0b7e6a2c-1f00-4b51-9a3e-7d1c2e3f4a5b") == 0);
    assert (mail_mime_build (mime, buf) == TL_EINVAL);
    assert (tl_buf_size (buf) == 0);
    for (int i = 1; i < MAIL_MAX_RECIPIENTS; i++)
        assert (mail_mime_add_to (mime, "more@example.com") == 0);
    assert (mail_mime_add_to (mime, "more@example.com") == TL_ETOOBIG);
    mail_mime_destroy (&mime);
    assert (mime == NULL);
    mail_mime_destroy (&mime);

    //  A simple message: one text part, ASCII subject kept raw.
    mime = mail_mime_new ();
    assert (mime);
    assert (mail_mime_set_from (mime, "tally@example.com", "Tally") == 0);
    assert (mail_mime_add_to (mime, "ana@example.com") == 0);
    assert (mail_mime_set_subject (mime, "Verify your email") == 0);
    mail_mime_set_date (mime, 1704207845);     //  2024-01-02 15:04:05 UTC
    assert (mail_mime_set_message_id (mime, "abc-123") == 0);
    assert (mail_mime_set_text (mime, "Hello Ana,\nline two\r\nend") == 0);
    assert (mail_mime_build (mime, buf) == 0);
    const char *message = tl_buf_data (buf);
    if (verbose)
        printf ("\n%s", message);
    s_test_lines (message, tl_buf_size (buf), S_HEADER_LINE_MAX);
    assert (strcmp (message + tl_buf_size (buf) - 2, "\r\n") == 0);
    const char *expected =
        "From: \"Tally\" <tally@example.com>\r\n"
        "To: ana@example.com\r\n"
        "Subject: Verify your email\r\n"
        "Date: Tue, 02 Jan 2024 15:04:05 +0000\r\n"
        "Message-ID: <abc-123@tally>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Hello Ana,\r\nline two\r\nend\r\n";
    assert (strcmp (message, expected) == 0);
    assert (strcmp (mail_mime_message_id (mime), "<abc-123@tally>") == 0);
    size_t nto = 0;
    assert (strcmp (mail_mime_to (mime, &nto) [0], "ana@example.com") == 0 && nto == 1);
    assert (strcmp (mail_mime_from (mime), "tally@example.com") == 0);
    //  A failed build leaves the buffer as it was.
    tl_buf_t *small = tl_buf_new (100);
    assert (small);
    assert (tl_buf_append (small, "keep", 4) == 0);
    assert (mail_mime_build (mime, small) == TL_ETOOBIG);
    assert (tl_buf_size (small) == 4 && strcmp (tl_buf_data (small), "keep") == 0);
    tl_buf_destroy (&small);
    mail_mime_destroy (&mime);

    //  The full shape: UTF-8 subject and name, many recipients, both bodies,
    //  an attachment with every byte value and a long non-ASCII file name.
    mime = mail_mime_new ();
    assert (mime);
    const char *subject = "R\xc3\xa9sum\xc3\xa9 de mars \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac"
                          "\xe8\xaa\x9e \xf0\x9f\x98\x80 and a long tail so that the subject"
                          " needs several encoded words =?not-a-word?=";
    assert (mail_mime_set_subject (mime, subject) == 0);
    assert (mail_mime_set_from (mime, "tally@example.com", "Tally \xc3\x89quipe") == 0);
    for (int i = 0; i < 6; i++) {
        char address [64];
        snprintf (address, sizeof address, "recipient-number-%d@example.com", i);
        assert (mail_mime_add_to (mime, address) == 0);
    }
    mail_mime_set_date (mime, 0);
    assert (mail_mime_set_message_id (mime, "0b7e6a2c-1f00-4b51-9a3e-7d1c2e3f4a5b") == 0);
    char text [3000];
    snprintf (text, sizeof text, "caf\xc3\xa9 = 100%%\ttrailing space \n"
              "--=_tally_ looks like a boundary\n.leading dot\n");
    size_t text_size = strlen (text);
    memset (text + text_size, 'x', 2000);   //  one very long line
    text [text_size + 2000] = 0;
    assert (mail_mime_set_text (mime, text) == 0);
    const char *html = "<!DOCTYPE html><html><body><p>caf\xc3\xa9</p></body></html>";
    assert (mail_mime_set_html (mime, html) == 0);
    unsigned char bytes [256 * 3];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (unsigned char) i;
    const char *file_name = "rapport-\xc3\xa9t\xc3\xa9-2024 \"final\" version "
                            "with a name long enough to continue.pdf";
    assert (mail_mime_add_attachment (mime, file_name, "application/octet-stream",
                                      bytes, sizeof bytes) == 0);
    assert (mail_mime_add_attachment (mime, "empty.txt", "text/plain", "", 0) == 0);
    tl_buf_reset (buf);
    assert (mail_mime_build (mime, buf) == 0);
    message = tl_buf_data (buf);
    size_t size = tl_buf_size (buf);
    if (verbose)
        printf ("\n%s", message);
    s_test_lines (message, size, S_HEADER_LINE_MAX);
    assert (strcmp (message + size - 2, "\r\n") == 0);

    //  Headers read back.
    char *value = s_test_header (message, "Subject");
    char *decoded = s_test_2047_decode (value);
    assert (strcmp (decoded, subject) == 0);
    free (value);
    free (decoded);
    value = s_test_header (message, "From");
    decoded = s_test_2047_decode (value);
    assert (strcmp (decoded, "Tally \xc3\x89quipe <tally@example.com>") == 0);
    free (value);
    free (decoded);
    value = s_test_header (message, "To");
    assert (s_test_count (value, "@example.com") == 6);
    assert (strstr (value, "recipient-number-0@example.com, recipient-number-1@"));
    free (value);
    value = s_test_header (message, "Date");
    assert (strcmp (value, "Thu, 01 Jan 1970 00:00:00 +0000") == 0);
    free (value);
    value = s_test_header (message, "Message-ID");
    assert (strcmp (value, "<0b7e6a2c-1f00-4b51-9a3e-7d1c2e3f4a5b@tally>") == 0);
    free (value);
    value = s_test_header (message, "MIME-Version");
    assert (strcmp (value, "1.0") == 0);
    free (value);

    //  multipart/mixed: the body, then two attachments.
    value = s_test_header (message, "Content-Type");
    assert (strncmp (value, "multipart/mixed;", 16) == 0);
    char *mixed = s_test_boundary (value);
    free (value);
    assert (strncmp (mixed, S_BOUNDARY_PREFIX, strlen (S_BOUNDARY_PREFIX)) == 0);
    assert (strlen (mixed) == S_BOUNDARY_LEN);
    const char *body = strstr (message, "\r\n\r\n") + 4;
    const char *parts [8];
    size_t sizes [8];
    assert (s_test_split (body, mixed, parts, sizes, 8) == 3);
    //  The boundary appears only in its delimiters (and its parameter).
    assert (s_test_count (message, mixed) == 3 + 1 + 1);

    //  Part 1: multipart/alternative of text then html.
    char *part = strndup (parts [0], sizes [0]);
    value = s_test_header (part, "Content-Type");
    assert (strncmp (value, "multipart/alternative;", 22) == 0);
    char *alternative = s_test_boundary (value);
    free (value);
    assert (strcmp (alternative, mixed) != 0);
    const char *alt_parts [4];
    size_t alt_sizes [4];
    assert (s_test_split (strstr (part, "\r\n\r\n") + 4, alternative,
                          alt_parts, alt_sizes, 4) == 2);
    char *text_part = strndup (alt_parts [0], alt_sizes [0]);
    value = s_test_header (text_part, "Content-Type");
    assert (strcmp (value, "text/plain; charset=UTF-8") == 0);
    free (value);
    value = s_test_header (text_part, "Content-Transfer-Encoding");
    assert (strcmp (value, "quoted-printable") == 0);
    free (value);
    const char *content = strstr (text_part, "\r\n\r\n") + 4;
    decoded = s_test_qp_decode (content, strlen (content));
    //  The decoded text is the input with CRLF line ends.
    char expected_text [3100];
    size_t used = 0;
    for (const char *s = text; *s; s++) {
        if (*s == '\n')
            expected_text [used++] = '\r';
        expected_text [used++] = *s;
    }
    expected_text [used] = 0;
    assert (strcmp (decoded, expected_text) == 0);
    free (decoded);
    //  Trailing whitespace and '=' are encoded; no QP line over 76.
    assert (strstr (content, "caf=C3=A9 =3D 100%\ttrailing space=20\r\n"));
    assert (strstr (content, "caf=C3=A9"));
    s_test_lines (content, strlen (content), S_QP_LINE_MAX);
    free (text_part);
    char *html_part = strndup (alt_parts [1], alt_sizes [1]);
    value = s_test_header (html_part, "Content-Type");
    assert (strcmp (value, "text/html; charset=UTF-8") == 0);
    free (value);
    content = strstr (html_part, "\r\n\r\n") + 4;
    decoded = s_test_qp_decode (content, strlen (content));
    assert (strcmp (decoded, html) == 0);
    free (decoded);
    free (html_part);
    free (alternative);
    free (part);

    //  Part 2: the attachment, base64 in 76-character lines, every byte back.
    part = strndup (parts [1], sizes [1]);
    value = s_test_header (part, "Content-Type");
    assert (strcmp (value, "application/octet-stream") == 0);
    free (value);
    value = s_test_header (part, "Content-Transfer-Encoding");
    assert (strcmp (value, "base64") == 0);
    free (value);
    value = s_test_header (part, "Content-Disposition");
    const char *disposition = "attachment; filename*0*=UTF-8''rapport-%C3%A9t%C3%A9-2024";
    assert (strncmp (value, disposition, strlen (disposition)) == 0);
    assert (strstr (value, "filename*1*="));
    //  Reassemble the RFC 2231 continuations and decode them.
    char name [512] = "";
    for (unsigned i = 0;; i++) {
        char key [32];
        snprintf (key, sizeof key, "filename*%u*=", i);
        const char *at = strstr (value, key);
        if (!at)
            break;
        at += strlen (key);
        if (i == 0)
            at += strlen ("UTF-8''");
        size_t n = strcspn (at, ";");
        strncat (name, at, n);
    }
    char name_decoded [256];
    used = 0;
    for (const char *s = name; *s; s++) {
        if (*s == '%') {
            char hex [3] = { s [1], s [2], 0 };
            name_decoded [used++] = (char) strtol (hex, NULL, 16);
            s += 2;
        }
        else
            name_decoded [used++] = *s;
    }
    name_decoded [used] = 0;
    assert (strcmp (name_decoded, file_name) == 0);
    free (value);
    content = strstr (part, "\r\n\r\n") + 4;
    s_test_lines (content, strlen (content), 76);
    assert (strstr (content, "\r\n") - content == 76);
    unsigned char back [sizeof bytes + 16];
    size_t back_size = 0;
    assert (sodium_base642bin (back, sizeof back, content, strlen (content), "\r\n",
                               &back_size, NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
    assert (back_size == sizeof bytes && memcmp (back, bytes, sizeof bytes) == 0);
    free (part);

    //  Part 3: the empty attachment with a plain quoted file name.
    part = strndup (parts [2], sizes [2]);
    value = s_test_header (part, "Content-Disposition");
    assert (strcmp (value, "attachment; filename=\"empty.txt\"") == 0);
    free (value);
    assert (strcmp (strstr (part, "\r\n\r\n"), "\r\n\r\n") == 0);
    free (part);
    free (mixed);

    //  Boundaries are fresh for every build.
    char *first = strdup (message);
    assert (first);
    tl_buf_reset (buf);
    assert (mail_mime_build (mime, buf) == 0);
    assert (strcmp (first, tl_buf_data (buf)) != 0);
    free (first);

    //  The string form equals the buffer form but for the boundaries.
    char *string = NULL;
    size = 0;
    assert (mail_mime_build_str (mime, &string, &size) == 0);
    assert (string && size == tl_buf_size (buf) && strlen (string) == size);
    free (string);
    mail_mime_destroy (&mime);

    //  An html-only message is a lone text/html part.
    mime = mail_mime_new ();
    assert (mime);
    assert (mail_mime_set_from (mime, "tally@example.com", NULL) == 0);
    assert (mail_mime_add_to (mime, "ana@example.com") == 0);
    assert (mail_mime_set_message_id (mime, "x1") == 0);
    assert (mail_mime_set_html (mime, "<p>hi</p>\n") == 0);
    assert (mail_mime_build_str (mime, &string, &size) == 0);
    assert (strstr (string, "\r\nContent-Type: text/html; charset=UTF-8\r\n"));
    assert (!strstr (string, "multipart"));
    assert (strcmp (string + size - 13, "\r\n<p>hi</p>\r\n") == 0);
    assert (strncmp (string, "From: tally@example.com\r\n", 25) != 0);
    assert (strncmp (string, "From: <tally@example.com>\r\n", 27) == 0);
    free (string);
    mail_mime_destroy (&mime);

    //  Inline parts: content ids are checked, and unique in a message.
    mime = mail_mime_new ();
    assert (mime);
    const unsigned char png [] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 1, 2 };
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "chart", png, sizeof png) == TL_EINVAL);
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "@tally", png, sizeof png) == TL_EINVAL);
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "a@", png, sizeof png) == TL_EINVAL);
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "a@b@c", png, sizeof png) == TL_EINVAL);
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "a>\r\nX: y@b", png, sizeof png)
            == TL_EINVAL);
    assert (mail_mime_add_inline (mime, "a.png", "image/png", "<a@b>", png, sizeof png) == TL_EINVAL);
    char long_id [MAIL_MAX_OUTBOX_ID_LEN + 2];
    memset (long_id, 'c', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    long_id [10] = '@';
    assert (mail_mime_add_inline (mime, "a.png", "image/png", long_id, png, sizeof png) == TL_EINVAL);
    long_id [MAIL_MAX_OUTBOX_ID_LEN] = 0;       //  exactly the limit
    assert (mail_mime_add_inline (mime, "a.png", "image/png", long_id, png, sizeof png) == 0);
    assert (mail_mime_add_inline (mime, "b.png", "image/png", "chart-1@tally", png, sizeof png) == 0);
    assert (mail_mime_add_inline (mime, "c.png", "image/png", "Chart-1@Tally", png, sizeof png)
            == TL_EINVAL);
    mail_mime_destroy (&mime);

    //  Text, html with two inline images, and a PDF: mixed [alternative
    //  [text, related [html, image, image]], pdf].
    mime = mail_mime_new ();
    assert (mime);
    assert (mail_mime_set_from (mime, "tally@example.com", NULL) == 0);
    assert (mail_mime_add_to (mime, "ana@example.com") == 0);
    assert (mail_mime_set_message_id (mime, "r1") == 0);
    assert (mail_mime_set_text (mime, "Your report\n") == 0);
    const char *report = "<p><img src=\"cid:chart-1@tally\"><img src=\"cid:chart-2@tally\"></p>";
    assert (mail_mime_set_html (mime, report) == 0);
    assert (mail_mime_add_inline (mime, "chart-1.png", "image/png", "chart-1@tally",
                                  png, sizeof png) == 0);
    assert (mail_mime_add_attachment (mime, "report.pdf", "application/pdf", "%PDF", 4) == 0);
    assert (mail_mime_add_inline (mime, "chart-2.png", "image/png", "chart-2@tally",
                                  png, sizeof png) == 0);
    assert (mail_mime_build_str (mime, &string, &size) == 0);
    if (verbose)
        printf ("\n%s", string);
    s_test_lines (string, size, S_HEADER_LINE_MAX);
    value = s_test_header (string, "Content-Type");
    assert (strncmp (value, "multipart/mixed;", 16) == 0);
    mixed = s_test_boundary (value);
    free (value);
    assert (s_test_split (strstr (string, "\r\n\r\n") + 4, mixed, parts, sizes, 8) == 2);
    part = strndup (parts [0], sizes [0]);
    value = s_test_header (part, "Content-Type");
    assert (strncmp (value, "multipart/alternative;", 22) == 0);
    alternative = s_test_boundary (value);
    free (value);
    assert (s_test_split (strstr (part, "\r\n\r\n") + 4, alternative,
                          alt_parts, alt_sizes, 4) == 2);
    char *related_part = strndup (alt_parts [1], alt_sizes [1]);
    value = s_test_header (related_part, "Content-Type");
    const char *related_type = "multipart/related; type=\"text/html\";";
    assert (strncmp (value, related_type, strlen (related_type)) == 0);
    char *related = s_test_boundary (value);
    free (value);
    const char *rel_parts [4];
    size_t rel_sizes [4];
    assert (s_test_split (strstr (related_part, "\r\n\r\n") + 4, related,
                          rel_parts, rel_sizes, 4) == 3);
    html_part = strndup (rel_parts [0], rel_sizes [0]);
    value = s_test_header (html_part, "Content-Type");
    assert (strcmp (value, "text/html; charset=UTF-8") == 0);
    free (value);
    content = strstr (html_part, "\r\n\r\n") + 4;
    decoded = s_test_qp_decode (content, strlen (content));
    assert (strcmp (decoded, report) == 0);
    free (decoded);
    free (html_part);
    for (int i = 0; i < 2; i++) {
        char *image = strndup (rel_parts [1 + i], rel_sizes [1 + i]);
        char expected_id [32], expected_name [64];
        snprintf (expected_id, sizeof expected_id, "<chart-%d@tally>", i + 1);
        snprintf (expected_name, sizeof expected_name, "inline; filename=\"chart-%d.png\"", i + 1);
        value = s_test_header (image, "Content-ID");
        assert (strcmp (value, expected_id) == 0);
        free (value);
        value = s_test_header (image, "Content-Type");
        assert (strcmp (value, "image/png") == 0);
        free (value);
        value = s_test_header (image, "Content-Disposition");
        assert (strcmp (value, expected_name) == 0);
        free (value);
        content = strstr (image, "\r\n\r\n") + 4;
        back_size = 0;
        assert (sodium_base642bin (back, sizeof back, content, strlen (content), "\r\n",
                                   &back_size, NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
        assert (back_size == sizeof png && memcmp (back, png, sizeof png) == 0);
        free (image);
    }
    free (related);
    free (related_part);
    free (alternative);
    free (part);
    part = strndup (parts [1], sizes [1]);
    value = s_test_header (part, "Content-Disposition");
    assert (strcmp (value, "attachment; filename=\"report.pdf\"") == 0);
    free (value);
    value = s_test_header (part, "Content-ID");
    assert (value == NULL);
    free (part);
    free (mixed);
    free (string);
    mail_mime_destroy (&mime);

    //  Html alone with an inline image: the message is one multipart/related.
    //  Without html, an inline part is an attachment that keeps its id.
    for (int with_html = 1; with_html >= 0; with_html--) {
        mime = mail_mime_new ();
        assert (mime);
        assert (mail_mime_set_from (mime, "tally@example.com", NULL) == 0);
        assert (mail_mime_add_to (mime, "ana@example.com") == 0);
        assert (mail_mime_set_message_id (mime, "r2") == 0);
        if (with_html)
            assert (mail_mime_set_html (mime, "<img src=\"cid:b@t\">") == 0);
        else
            assert (mail_mime_set_text (mime, "see the image") == 0);
        assert (mail_mime_add_inline (mime, "b.png", "image/png", "b@t", png, sizeof png) == 0);
        assert (mail_mime_build_str (mime, &string, &size) == 0);
        s_test_lines (string, size, S_HEADER_LINE_MAX);
        assert (strcmp (string + size - 2, "\r\n") == 0);
        value = s_test_header (string, "Content-Type");
        assert (strncmp (value, with_html? "multipart/related;": "multipart/mixed;",
                         with_html? 18: 16) == 0);
        char *top = s_test_boundary (value);
        free (value);
        assert (s_test_split (strstr (string, "\r\n\r\n") + 4, top, parts, sizes, 8) == 2);
        part = strndup (parts [1], sizes [1]);
        value = s_test_header (part, "Content-ID");
        assert (strcmp (value, "<b@t>") == 0);
        free (value);
        value = s_test_header (part, "Content-Disposition");
        assert (strncmp (value, with_html? "inline;": "attachment;", with_html? 7: 11) == 0);
        free (value);
        free (part);
        free (top);
        free (string);
        mail_mime_destroy (&mime);
    }
    tl_buf_destroy (&buf);
}
