//  mail_mime.h — builds one RFC 5322 / MIME message: From, To, Subject
//  (RFC 2047 encoded-words when needed), Date, Message-ID, a text and/or
//  HTML body (quoted-printable, UTF-8, CRLF), base64 attachments, and
//  inline parts that the HTML refers to by Content-ID (RFC 2387, 2392).
//  Every value is checked when it is set: an address that is not a plain
//  addr-spec, or a header value with CR, LF or another control character,
//  is refused with TL_EINVAL, so a built message cannot carry an injected
//  header. Built lines never pass 998 octets; header lines stay within 78
//  characters except when one address alone is longer than that.
//  Boundaries come from libsodium's randombytes_buf: the program calls
//  sodium_init () once before it starts threads.
#ifndef MAIL_MIME_H_INCLUDED
#define MAIL_MIME_H_INCLUDED

#include <stdbool.h>
#include "mail_limits.h"
#include <stddef.h>
#include <time.h>

#include "tl_buf.h"

typedef struct _mail_mime_t mail_mime_t;

//  Creates an empty message. Returns NULL on allocation failure.
mail_mime_t *mail_mime_new (void);

//  Destroys the message and nulls the caller's reference. Safe on NULL.
void mail_mime_destroy (mail_mime_t **self_p);

//  Sets the sender. `name` (UTF-8, may be NULL) is the display name.
//  Returns 0, TL_EINVAL (bad address; control character or bad UTF-8 in
//  the name; name over MAIL_MAX_DISPLAY_NAME_LEN) or TL_ENOMEM.
int mail_mime_set_from (mail_mime_t *self, const char *address, const char *name);

//  Adds a recipient to To:. Returns 0, TL_EINVAL (bad address), TL_ETOOBIG
//  (more than MAIL_MAX_RECIPIENTS) or TL_ENOMEM.
int mail_mime_add_to (mail_mime_t *self, const char *address);

//  Sets the subject (UTF-8). Returns 0, TL_EINVAL (CR, LF, another control
//  character, or bad UTF-8), TL_ETOOBIG (over MAIL_MAX_SUBJECT_LEN bytes)
//  or TL_ENOMEM. Without a subject the message has no Subject: header.
int mail_mime_set_subject (mail_mime_t *self, const char *subject);

//  Sets the Date: header (written in UTC). Without it, build uses the time
//  of the build.
void mail_mime_set_date (mail_mime_t *self, time_t date);

//  Sets Message-ID: to <outbox_id@tally>. The id (an outbox row's UUID)
//  must be 1..MAIL_MAX_OUTBOX_ID_LEN bytes of [A-Za-z0-9._-]. Returns 0,
//  TL_EINVAL or TL_ENOMEM. Required before build.
int mail_mime_set_message_id (mail_mime_t *self, const char *outbox_id);

//  Returns the Message-ID with its angle brackets ("<id@tally>"), or NULL
//  when none is set. Borrowed.
const char *mail_mime_message_id (mail_mime_t *self);

//  Returns the sender's address, or NULL. Borrowed.
const char *mail_mime_from (mail_mime_t *self);

//  Returns the To: addresses and their count in *count, in the order they
//  were added (what mail_smtp_send takes). Borrowed.
const char *const *mail_mime_to (mail_mime_t *self, size_t *count);

//  Sets the text/plain body (UTF-8; LF or CRLF line ends). Returns 0,
//  TL_EINVAL (bad UTF-8), TL_ETOOBIG (over MAIL_MAX_BODY_BYTES), TL_ENOMEM.
int mail_mime_set_text (mail_mime_t *self, const char *text);

//  Sets the text/html body, as mail_mime_set_text. With both bodies the
//  message carries them as multipart/alternative.
int mail_mime_set_html (mail_mime_t *self, const char *html);

//  Adds an attachment (copied): `name` is its file name (UTF-8, no path
//  separators or control characters), `content_type` a plain "type/subtype"
//  of MIME token characters. Returns 0, TL_EINVAL, TL_ETOOBIG (too many,
//  too big, or name too long) or TL_ENOMEM.
int mail_mime_add_attachment (mail_mime_t *self, const char *name,
                              const char *content_type, const void *data, size_t size);

//  Adds an inline part of the HTML body (copied), such as an image the
//  HTML shows with <img src="cid:CONTENT_ID">. `content_id` is "left@right",
//  each side one or more of [A-Za-z0-9._-], at most MAIL_MAX_OUTBOX_ID_LEN
//  bytes in all (so that its Content-ID: line stays within 78 characters),
//  and differs from every other part's; `name` and `content_type` are as
//  for mail_mime_add_attachment, and inline parts count against
//  MAIL_MAX_ATTACHMENTS with the attachments. With an HTML body, the HTML
//  and its inline parts are built as one multipart/related (inside the
//  multipart/alternative when there is a text body too); without one, an
//  inline part goes out as an attachment that keeps its Content-ID.
//  Returns 0, TL_EINVAL (a bad name, type or content id, or one already
//  used), TL_ETOOBIG or TL_ENOMEM.
int mail_mime_add_inline (mail_mime_t *self, const char *name, const char *content_type,
                          const char *content_id, const void *data, size_t size);

//  Appends the built message to `out` (CRLF line ends, ends with CRLF).
//  Returns 0; TL_EINVAL when From, To, Message-ID or a body is missing;
//  TL_ETOOBIG when `out` cannot hold it; TL_ENOMEM. On failure the content
//  of `out` is unchanged.
int mail_mime_build (mail_mime_t *self, tl_buf_t *out);

//  Builds the message into a new string (NUL-terminated, the caller frees
//  it) at *message_p, its size at *size_p. At most MAIL_MAX_MESSAGE_BYTES.
//  Returns 0 or a code of mail_mime_build; *message_p is NULL on failure.
int mail_mime_build_str (mail_mime_t *self, char **message_p, size_t *size_p);

//  Self-test, run by ctest.
void mail_mime_test (bool verbose);

#endif
