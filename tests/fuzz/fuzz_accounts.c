//  fuzz_accounts.c — fuzz target for what the accounts service reads from
//  clients before any database sees it: user names, email addresses,
//  passwords' lengths, time zones, local times, webhook URLs
//  (shared/tl_valid), session tokens and mailed codes (auth_token), and
//  list cursors and limits (tl_call_page). The first byte chooses nothing:
//  every input goes through every check, as one NUL-free string.
//  Beyond "no crash, no leak": an accepted value has the shape its check
//  promises (checked here independently), and a token's hash is stable.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_token.h"
#include "tl_private.h"      //  tl_call_new: the runtime's side, to run handlers
#include "tl_call.h"
#include "tl_json.h"
#include "tl_limits.h"
#include "tl_msg.h"
#include "tl_valid.h"

#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static bool
s_in (char c, const char *set)
{
    return c && strchr (set, c) != NULL;
}

static bool
s_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

//  Counts UTF-8 characters independently: -1 on anything malformed.
static long
s_utf8_count (const unsigned char *s, size_t n)
{
    long count = 0;
    for (size_t i = 0; i < n; count++) {
        unsigned char c = s [i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n || c == 0)
            return -1;
        unsigned int cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        ||  cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += len;
    }
    return count;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    //  Character counts over the raw bytes (NULs included)
    long chars = tl_valid_utf8_chars ((const char *) data, size);
    s_check (chars == s_utf8_count (data, size));

    char *text = (char *) malloc (size + 1);
    memcpy (text, data, size);
    text [size] = 0;
    size_t len = strlen (text);

    if (tl_valid_email (text)) {
        const char *at = strchr (text, '@');
        s_check (at && !strchr (at + 1, '@') && len <= TL_MAX_EMAIL_LEN);
        s_check (at - text >= 1 && at - text <= TL_MAX_EMAIL_LOCAL_LEN);
        s_check (strchr (at, '.') && text [len - 1] != '.' && text [0] != '.');
        for (size_t i = 0; i < len; i++)
            s_check (text [i] > 0x20 && text [i] < 0x7f && text [i] != '"');
    }
    if (tl_valid_username (text)) {
        s_check (len >= TL_USERNAME_MIN && len <= TL_USERNAME_MAX);
        for (size_t i = 0; i < len; i++)
            s_check (s_alnum (text [i]) || s_in (text [i], "_.-"));
    }
    if (tl_valid_local_time (text))
        s_check (len == 5 && text [2] == ':' && (text [0] < '2' || text [1] < '4')
                 && text [3] < '6');
    if (tl_valid_timezone (text)) {
        s_check (len <= TL_MAX_TIMEZONE_LEN && text [0] != '/' && !strstr (text, ".."));
        for (size_t i = 0; i < len; i++)
            s_check (s_alnum (text [i]) || s_in (text [i], "_+-/"));
    }
    if (tl_valid_http_url (text)) {
        s_check (strncasecmp (text, "http://", 7) == 0 || strncasecmp (text, "https://", 8) == 0);
        for (size_t i = 0; i < len; i++)
            s_check ((unsigned char) text [i] > 0x20 && (unsigned char) text [i] < 0x7f);
    }
    //  Tokens: the shape, and a stable hash of exactly 64 hex digits
    if (auth_token_valid (text)) {
        s_check (len == AUTH_TOKEN_TEXT_LEN);
        char one [65], two [65];
        s_check (auth_token_hash_hex (text, one) == 0 && auth_token_hash_hex (text, two) == 0);
        s_check (strlen (one) == 64 && strcmp (one, two) == 0);
    }
    else {
        unsigned char hash [AUTH_TOKEN_HASH_BYTES];
        s_check (auth_token_hash (text, hash) != 0);
    }
    //  Lists: the text as a cursor, and as a limit
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    if (request && len <= TL_HTTP_MAX_URL_LEN) {
        tl_msg_add_param (request, "cursor", text);
        tl_msg_add_param (request, "limit", len < 12 ? text : "10");
        tl_call_t *call = tl_call_new (&request, NULL);
        tl_page_t page;
        if (call && tl_call_page (call, &page)) {
            s_check (page.limit >= 1 && page.limit <= TL_LIST_LIMIT_MAX);
            if (page.after_time) {
                s_check (strlen (page.after_id) == 36);
                for (const char *c = page.after_time; *c; c++)
                    s_check ((*c >= '0' && *c <= '9') || s_in (*c, "-:.TZ+"));
            }
        }
        tl_call_destroy (&call);
    }
    tl_msg_destroy (&request);
    free (text);
    return 0;
}
