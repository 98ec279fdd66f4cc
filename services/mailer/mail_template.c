//  mail_template.c — Tally's mail templates and their engine (see
//  mail_template.h; the texts are in mail_template_texts.h).
//  The engine is one pass over the source: literal runs are copied, each
//  {{name}} is looked up in the caller's variables and copied raw or
//  HTML-escaped. There are no conditionals, loops or includes: a template
//  that needs them is two templates.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "mail_mime.h"
#include "mail_template.h"
#include "mail_template_texts.h"
#include "mail_limits.h"
#include "tl_error.h"

struct _mail_template_t {
    char *subject;
    char *text;
    char *html;
};


//  Returns true for a variable name: [a-z_][a-z0-9_]*, 1..MAX bytes.

static bool
s_name_valid (const char *name, size_t size)
{
    if (size == 0 || size > MAIL_TEMPLATE_MAX_VAR_NAME)
        return false;
    for (size_t i = 0; i < size; i++) {
        char c = name [i];
        bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}


//  Returns true when `text` is well-formed UTF-8 (same rules as mail_mime:
//  no overlong forms, no surrogates, nothing above U+10FFFF).

static bool
s_utf8_valid (const char *text)
{
    const unsigned char *s = (const unsigned char *) text;
    while (*s) {
        if (*s < 0x80) {
            s++;
            continue;
        }
        int extra = *s >= 0xc2 && *s <= 0xdf? 1
                  : *s >= 0xe0 && *s <= 0xef? 2
                  : *s >= 0xf0 && *s <= 0xf4? 3: -1;
        if (extra < 0)
            return false;
        unsigned long cp = *s & (0x3f >> extra);
        for (int k = 1; k <= extra; k++) {
            if ((s [k] & 0xc0) != 0x80)
                return false;       //  also stops at the NUL
            cp = (cp << 6) | (s [k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += extra + 1;
    }
    return true;
}


//  Returns true when `value` is an http(s) URL without spaces or controls.

static bool
s_link_valid (const char *value)
{
    if (strncmp (value, "https://", 8) != 0 && strncmp (value, "http://", 7) != 0)
        return false;
    for (const unsigned char *s = (const unsigned char *) value; *s; s++)
        if (*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}


//  Checks the caller's variables. Returns 0 or TL_EINVAL (errbuf says which).

static int
s_check_vars (const char *const *vars, char *errbuf, size_t errsize)
{
    if (!vars)
        return 0;
    size_t count = 0;
    for (const char *const *var = vars; *var; var += 2) {
        const char *name = var [0];
        const char *value = var [1];
        size_t size = strlen (name);
        if (++count > MAIL_TEMPLATE_MAX_VARS) {
            tl_error_format (errbuf, errsize, "more than %d variables", MAIL_TEMPLATE_MAX_VARS);
            return TL_EINVAL;
        }
        if (!s_name_valid (name, size)) {
            tl_error_format (errbuf, errsize, "bad variable name '%s'", name);
            return TL_EINVAL;
        }
        if (!value) {
            tl_error_format (errbuf, errsize, "variable '%s' has no value", name);
            return TL_EINVAL;
        }
        for (const char *const *other = vars; other != var; other += 2)
            if (strcmp (*other, name) == 0) {
                tl_error_format (errbuf, errsize, "variable '%s' given twice", name);
                return TL_EINVAL;
            }
        if (strlen (value) > MAIL_TEMPLATE_MAX_VALUE || !s_utf8_valid (value)) {
            tl_error_format (errbuf, errsize, "variable '%s': value too long or not UTF-8", name);
            return TL_EINVAL;
        }
        if (size >= 4 && strcmp (name + size - 4, "link") == 0 && !s_link_valid (value)) {
            tl_error_format (errbuf, errsize, "variable '%s' must be an http(s) URL", name);
            return TL_EINVAL;
        }
    }
    return 0;
}


//  Returns the value of variable `name` (`size` bytes), or NULL.

static const char *
s_lookup (const char *const *vars, const char *name, size_t size)
{
    if (!vars)
        return NULL;
    for (const char *const *var = vars; *var; var += 2)
        if (strlen (var [0]) == size && memcmp (var [0], name, size) == 0)
            return var [1];
    return NULL;
}


//  Appends `value`, HTML-escaped. Returns 0 or a tl_buf code.

static int
s_append_escaped (tl_buf_t *out, const char *value)
{
    const char *run = value;
    for (const char *s = value;; s++) {
        const char *entity = NULL;
        switch (*s) {
            case '&':  entity = "&amp;";  break;
            case '<':  entity = "&lt;";   break;
            case '>':  entity = "&gt;";   break;
            case '"':  entity = "&quot;"; break;
            case '\'': entity = "&#39;";  break;
            default:   break;
        }
        if (entity || *s == 0) {
            int rc = tl_buf_append (out, run, (size_t) (s - run));
            if (rc == 0 && entity)
                rc = tl_buf_append (out, entity, strlen (entity));
            if (rc)
                return rc;
            if (*s == 0)
                return 0;
            run = s + 1;
        }
    }
}


//  --------------------------------------------------------------------------
//  Expands {{name}} in `source` into `out`.

int
mail_template_expand (const char *source, const char *const *vars, bool html,
                      tl_buf_t *out, char *errbuf, size_t errsize)
{
    assert (source);
    assert (out);
    int rc = s_check_vars (vars, errbuf, errsize);
    if (rc)
        return rc;
    size_t start = tl_buf_size (out);
    const char *s = source;
    while (rc == 0) {
        const char *open = strstr (s, "{{");
        if (!open) {
            rc = tl_buf_append (out, s, strlen (s));
            break;
        }
        rc = tl_buf_append (out, s, (size_t) (open - s));
        if (rc)
            break;
        const char *name = open + 2;
        const char *close = strstr (name, "}}");
        size_t size = close? (size_t) (close - name): 0;
        if (!close || !s_name_valid (name, size)) {
            tl_error_format (errbuf, errsize, "bad placeholder at byte %zu",
                             (size_t) (open - source));
            rc = TL_EINVAL;
            break;
        }
        const char *value = s_lookup (vars, name, size);
        if (!value) {
            tl_error_format (errbuf, errsize, "unknown variable '%.*s'", (int) size, name);
            rc = TL_EINVAL;
            break;
        }
        rc = html? s_append_escaped (out, value): tl_buf_append (out, value, strlen (value));
        s = close + 2;
    }
    if (rc)
        tl_buf_truncate (out, start);
    if (rc == TL_ETOOBIG)
        tl_error_format (errbuf, errsize, "expanded template too big");
    return rc;
}


//  Returns the template called `name`, or NULL.

static const s_template_t *
s_find (const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_templates / sizeof s_templates [0]; i++)
        if (strcmp (s_templates [i].name, name) == 0)
            return &s_templates [i];
    return NULL;
}


bool
mail_template_exists (const char *name)
{
    return s_find (name) != NULL;
}


//  Expands one part into a new string at *part_p.

static int
s_render_part (const char *source, const char *const *vars, bool html,
               char **part_p, char *errbuf, size_t errsize)
{
    tl_buf_t *buf = tl_buf_new (MAIL_TEMPLATE_MAX_OUTPUT);
    if (!buf)
        return TL_ENOMEM;
    int rc = mail_template_expand (source, vars, html, buf, errbuf, errsize);
    if (rc == 0) {
        *part_p = tl_buf_steal (buf, NULL);
        if (!*part_p)
            rc = TL_ENOMEM;
    }
    tl_buf_destroy (&buf);
    return rc;
}


//  --------------------------------------------------------------------------
//  Renders a template.

int
mail_template_render (const char *name, const char *const *vars,
                      mail_template_t **self_p, char *errbuf, size_t errsize)
{
    assert (self_p);
    *self_p = NULL;
    const s_template_t *template = s_find (name);
    if (!template) {
        tl_error_format (errbuf, errsize, "no template '%s'", name? name: "(null)");
        return TL_ENOTFOUND;
    }
    mail_template_t *self = (mail_template_t *) calloc (1, sizeof (mail_template_t));
    if (!self)
        return TL_ENOMEM;
    int rc = s_render_part (template->subject, vars, false, &self->subject, errbuf, errsize);
    if (rc == 0)
        for (const unsigned char *s = (const unsigned char *) self->subject; *s; s++)
            if (*s < 0x20 || *s == 0x7f) {
                tl_error_format (errbuf, errsize, "a value used in the subject "
                                 "has a control character");
                rc = TL_EINVAL;
                break;
            }
    if (rc == 0)
        rc = s_render_part (template->text, vars, false, &self->text, errbuf, errsize);
    if (rc == 0)
        rc = s_render_part (template->html, vars, true, &self->html, errbuf, errsize);
    if (rc) {
        mail_template_destroy (&self);
        return rc;
    }
    *self_p = self;
    return 0;
}


//  --------------------------------------------------------------------------
//  Destroys a rendering.

void
mail_template_destroy (mail_template_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        mail_template_t *self = *self_p;
        free (self->subject);
        free (self->text);
        free (self->html);
        free (self);
        *self_p = NULL;
    }
}


const char *
mail_template_subject (mail_template_t *self)
{
    assert (self);
    return self->subject;
}

const char *
mail_template_text (mail_template_t *self)
{
    assert (self);
    return self->text;
}

const char *
mail_template_html (mail_template_t *self)
{
    assert (self);
    return self->html;
}


//  --------------------------------------------------------------------------
//  Self-test

//  Checks the shape every HTML body must have.

static void
s_test_html_document (const char *html)
{
    assert (strncmp (html, "<!DOCTYPE html>\n<html lang=\"en\">\n", 33) == 0);
    assert (strstr (html, "<meta charset=\"utf-8\">"));
    assert (strstr (html, "<title>") && strstr (html, "</title>"));
    assert (strstr (html, "<main ") && strstr (html, "</main>"));
    assert (strstr (html, "<h1 "));
    size_t size = strlen (html);
    assert (size > 8 && strcmp (html + size - 8, "</html>\n") == 0);
    //  Inline styles only; nothing active.
    assert (!strstr (html, "<style") && !strstr (html, "<link") && !strstr (html, "class="));
    assert (!strstr (html, "<script"));
    assert (!strstr (html, "{{") && !strstr (html, "}}"));
    //  Every opened element we use is closed.
    const char *tags [] = { "p", "a", "strong", "h1", "main", "body", "head", "html" };
    for (size_t i = 0; i < sizeof tags / sizeof tags [0]; i++) {
        char spaced [16], bare [16], close [16];
        snprintf (spaced, sizeof spaced, "<%s ", tags [i]);
        snprintf (bare, sizeof bare, "<%s>", tags [i]);
        snprintf (close, sizeof close, "</%s>", tags [i]);
        size_t opened = 0, closed = 0;
        for (const char *s = strstr (html, spaced); s; s = strstr (s + 1, spaced))
            opened++;
        for (const char *s = strstr (html, bare); s; s = strstr (s + 1, bare))
            opened++;
        for (const char *s = strstr (html, close); s; s = strstr (s + 1, close))
            closed++;
        assert (opened == closed);
    }
}

void
mail_template_test (bool verbose)
{
    assert (sodium_init () >= 0);   //  mail_mime makes random boundaries
    char errbuf [256];
    tl_buf_t *out = tl_buf_new (1024);
    assert (out);

    //  The engine: substitution, raw or escaped.
    const char *vars [] = { "name", "Ana & <Bo> \"O'Neil\"", "n2", "x", NULL };
    assert (mail_template_expand ("Hi {{name}}!", vars, false, out, errbuf, sizeof errbuf) == 0);
    assert (strcmp (tl_buf_data (out), "Hi Ana & <Bo> \"O'Neil\"!") == 0);
    tl_buf_reset (out);
    assert (mail_template_expand ("Hi {{name}}!", vars, true, out, errbuf, sizeof errbuf) == 0);
    assert (strcmp (tl_buf_data (out),
                    "Hi Ana &amp; &lt;Bo&gt; &quot;O&#39;Neil&quot;!") == 0);
    tl_buf_reset (out);
    assert (mail_template_expand ("{{n2}}{{n2}}{ x } }}{{name}}", vars, false, out,
                                  errbuf, sizeof errbuf) == 0);
    assert (strcmp (tl_buf_data (out), "xx{ x } }}Ana & <Bo> \"O'Neil\"") == 0);
    tl_buf_reset (out);
    assert (mail_template_expand ("", vars, true, out, errbuf, sizeof errbuf) == 0);
    assert (tl_buf_size (out) == 0);
    //  A variable's value is never expanded again.
    const char *nested [] = { "a", "{{b}}", "b", "no", NULL };
    assert (mail_template_expand ("{{a}}", nested, false, out, errbuf, sizeof errbuf) == 0);
    assert (strcmp (tl_buf_data (out), "{{b}}") == 0);

    //  Errors leave the output as it was and name the culprit.
    tl_buf_reset (out);
    assert (tl_buf_append (out, "keep", 4) == 0);
    assert (mail_template_expand ("Hi {{nobody}}", vars, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (strstr (errbuf, "nobody"));
    assert (mail_template_expand ("Hi {{name", vars, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (mail_template_expand ("Hi {{ name }}", vars, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (mail_template_expand ("Hi {{}}", vars, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (mail_template_expand ("Hi {{Name}}", vars, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (mail_template_expand ("Hi {{name}}", NULL, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    const char *twice [] = { "a", "1", "a", "2", NULL };
    assert (mail_template_expand ("{{a}}", twice, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (strstr (errbuf, "twice"));
    const char *bad_name [] = { "a-b", "1", NULL };
    assert (mail_template_expand ("x", bad_name, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    const char *bad_utf8 [] = { "a", "\xc3\x28", NULL };
    assert (mail_template_expand ("{{a}}", bad_utf8, false, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    const char *bad_link [] = { "link", "javascript:alert(1)", NULL };
    assert (mail_template_expand ("{{link}}", bad_link, true, out, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (strcmp (tl_buf_data (out), "keep") == 0);
    //  The output cap holds.
    tl_buf_t *tiny = tl_buf_new (8);
    assert (tiny);
    assert (mail_template_expand ("{{name}}", vars, true, tiny, errbuf,
                                  sizeof errbuf) == TL_ETOOBIG);
    assert (tl_buf_size (tiny) == 0);
    tl_buf_destroy (&tiny);
    tl_buf_destroy (&out);

    //  Every template renders with its documented variables, as a whole
    //  document, and makes a message mail_mime accepts.
    const char *link = "https://tally.example.com/verify?code=AbC123&x=1";
    const char *username = "ana <b>&</b>";
    struct {
        const char *name;
        const char *vars [12];
        const char *in_subject;
    } cases [] = {
        { "verify_email", { "username", username, "link", link, "code", "AbC123", NULL },
          "Verify your email" },
        { "password_reset", { "username", username, "link", link, "code", "XyZ789", NULL },
          "Reset your Tally password" },
        { "email_changed", { "username", username, "new_email", "new@example.org",
          "link", link, NULL }, "email address was changed" },
        { "event_invite", { "event_name", "Caf\xc3\xa9 & Code \"2024\"", "role", "coorganizer",
          "link", link, NULL }, "Caf\xc3\xa9 & Code \"2024\"" },
        { "order_confirmation", { "username", username, "event_name", "PyCon 2099",
          "tickets", "2", "total", "25.00 EUR", "link", link, NULL }, "PyCon 2099" },
        { "daily_reminder", { "username", username, "link", link, NULL }, "reminder" },
        { "monthly_report", { "username", username, "month", "March 2024",
          "tracker_count", "3", "link", link, NULL }, "March 2024" },
        { "mood_board", { "username", username, "year", "2024", "link", link, NULL },
          "2024" },
    };
    size_t ncases = sizeof cases / sizeof cases [0];
    assert (ncases == sizeof s_templates / sizeof s_templates [0]);
    for (size_t i = 0; i < ncases; i++) {
        assert (mail_template_exists (cases [i].name));
        mail_template_t *mail = NULL;
        int rc = mail_template_render (cases [i].name, cases [i].vars, &mail,
                                       errbuf, sizeof errbuf);
        if (rc)
            printf ("%s: %s\n", cases [i].name, errbuf);
        assert (rc == 0 && mail);
        const char *subject = mail_template_subject (mail);
        const char *text = mail_template_text (mail);
        const char *html = mail_template_html (mail);
        if (verbose)
            printf ("\n---- %s\nSubject: %s\n%s\n%s", cases [i].name, subject, text, html);
        assert (strstr (subject, cases [i].in_subject));
        assert (!strstr (subject, "{{") && !strstr (text, "{{"));
        s_test_html_document (html);
        //  Raw in the text, escaped in the HTML, the link in both.
        assert (strstr (text, link));
        assert (strstr (html, "href=\"https://tally.example.com/verify?code=AbC123&amp;x=1\""));
        if (strcmp (cases [i].name, "event_invite") == 0) {
            assert (strstr (text, "Caf\xc3\xa9 & Code \"2024\" on Tally as coorganizer"));
            assert (strstr (html, "Caf\xc3\xa9 &amp; Code &quot;2024&quot;"));
        }
        else {
            assert (strstr (text, "Hello ana <b>&</b>,"));
            assert (strstr (html, "Hello ana &lt;b&gt;&amp;&lt;/b&gt;,"));
            assert (!strstr (html, "<b>"));
        }
        if (strstr (cases [i].name, "verify") || strstr (cases [i].name, "reset"))
            assert (strstr (text, cases [i].vars [5]) && strstr (html, cases [i].vars [5]));
        //  A variable missing is an error naming it, not an empty string.
        const char *fewer [12];
        memcpy (fewer, cases [i].vars, sizeof fewer);
        for (size_t k = 0; fewer [k]; k += 2)
            if (strcmp (fewer [k], "link") == 0)
                fewer [k] = "lnk";
        mail_template_t *missing = NULL;
        assert (mail_template_render (cases [i].name, fewer, &missing, errbuf,
                                      sizeof errbuf) == TL_EINVAL);
        assert (missing == NULL);
        assert (strstr (errbuf, "'link'"));

        mail_mime_t *mime = mail_mime_new ();
        assert (mime);
        assert (mail_mime_set_from (mime, "tally@example.com", "Tally") == 0);
        assert (mail_mime_add_to (mime, "ana@example.com") == 0);
        assert (mail_mime_set_message_id (mime, "template-test") == 0);
        assert (mail_mime_set_subject (mime, subject) == 0);
        assert (mail_mime_set_text (mime, text) == 0);
        assert (mail_mime_set_html (mime, html) == 0);
        char *message = NULL;
        size_t size = 0;
        assert (mail_mime_build_str (mime, &message, &size) == 0);
        free (message);
        mail_mime_destroy (&mime);
        mail_template_destroy (&mail);
        assert (mail == NULL);
        mail_template_destroy (&mail);
    }

    //  Unknown templates; a subject value with a line break.
    mail_template_t *mail = NULL;
    assert (!mail_template_exists ("nope"));
    assert (mail_template_render ("nope", cases [0].vars, &mail, errbuf,
                                  sizeof errbuf) == TL_ENOTFOUND);
    assert (mail == NULL);
    assert (mail_template_render (NULL, cases [0].vars, &mail, errbuf,
                                  sizeof errbuf) == TL_ENOTFOUND);
    const char *injected [] = { "event_name", "Party\r\nBcc: all@example.com",
                                "role", "moderator", "link", link, NULL };
    assert (mail_template_render ("event_invite", injected, &mail, errbuf,
                                  sizeof errbuf) == TL_EINVAL);
    assert (mail == NULL);
}
