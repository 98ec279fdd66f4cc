//  mail_template.h — the mails Tally sends, as templates compiled into the
//  binary, and the tiny engine that fills them in.
//  A template has a subject, a text body and an HTML body (a complete,
//  accessible document with inline styles only). `{{name}}` is replaced by
//  the variable `name`: raw in the subject and the text, HTML-escaped
//  (& < > " ') in the HTML. A variable the caller did not give is an error,
//  never an empty string.
//  Templates and their variables:
//    verify_email     username, link, code
//    password_reset   username, link, code
//    email_changed    username, new_email, link (to the old address)
//    event_invite     event_name, role, link
//    order_confirmation  username, event_name, tickets, total, link
//    daily_reminder   username, link
//    monthly_report   username, month, tracker_count, link
//    mood_board       username, year, link
//  A variable whose name ends in "link" must be an http(s) URL.
#ifndef MAIL_TEMPLATE_H_INCLUDED
#define MAIL_TEMPLATE_H_INCLUDED

#include <stdbool.h>
#include "mail_limits.h"
#include <stddef.h>

#include "tl_buf.h"

//  One rendered mail: subject, text and HTML.
typedef struct _mail_template_t mail_template_t;

//  Renders template `name` with `vars`, a NULL-terminated array of
//  alternating variable names and values ({"username", "ana", NULL}).
//  Values are UTF-8 of at most MAIL_TEMPLATE_MAX_VALUE bytes; a value used
//  in the subject may not hold a control character. On success returns 0
//  and the rendering at *self_p (the caller destroys it). Returns
//  TL_ENOTFOUND for an unknown template; TL_EINVAL for a variable the
//  template uses but `vars` lacks, a duplicate or badly named variable, a
//  bad value; TL_ETOOBIG; TL_ENOMEM. `errbuf` (when not NULL) names the
//  culprit.
int mail_template_render (const char *name, const char *const *vars,
                          mail_template_t **self_p, char *errbuf, size_t errsize);

//  Destroys a rendering and nulls the caller's reference. Safe on NULL.
void mail_template_destroy (mail_template_t **self_p);

//  The parts of a rendering. Borrowed: valid until destroy.
const char *mail_template_subject (mail_template_t *self);
const char *mail_template_text (mail_template_t *self);
const char *mail_template_html (mail_template_t *self);

//  Returns true when a template called `name` exists.
bool mail_template_exists (const char *name);

//  The engine: appends `source` to `out` with each {{name}} replaced by its
//  value from `vars` (as in mail_template_render), HTML-escaped when `html`.
//  A variable name is [a-z_][a-z0-9_]* of at most MAIL_TEMPLATE_MAX_VAR_NAME
//  bytes; a "{{" without a valid name and "}}" is an error. Returns 0,
//  TL_EINVAL, TL_ETOOBIG (out's cap) or TL_ENOMEM; on failure `out` is as
//  it was.
int mail_template_expand (const char *source, const char *const *vars, bool html,
                          tl_buf_t *out, char *errbuf, size_t errsize);

//  Self-test, run by ctest.
void mail_template_test (bool verbose);

#endif
