//  tl_valid.c — checks of user-typed values (see tl_valid.h).
#include "tl_valid.h"
#include "tl_json.h"
#include "tl_limits.h"

#include <assert.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
s_is_alnum (int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

//  RFC 5322 atext.
static bool
s_is_atext (int c)
{
    return s_is_alnum (c) || (c && strchr ("!#$%&'*+/=?^_`{|}~-", c));
}

bool
tl_valid_email (const char *address)
{
    if (!address)
        return false;
    size_t size = strlen (address);
    if (size < 5 || size > TL_MAX_EMAIL_LEN)
        return false;
    const char *at = strchr (address, '@');
    if (!at || strchr (at + 1, '@'))
        return false;
    size_t local = (size_t) (at - address);
    if (local == 0 || local > TL_MAX_EMAIL_LOCAL_LEN)
        return false;
    //  Local part: dot-atom.
    for (size_t i = 0; i < local; i++) {
        char c = address [i];
        if (c == '.') {
            if (i == 0 || i == local - 1 || address [i + 1] == '.')
                return false;
        }
        else
        if (!s_is_atext ((unsigned char) c))
            return false;
    }
    //  Domain: labels of letters, digits and inner hyphens; at least two.
    size_t labels = 0;
    size_t label_size = 0;
    for (const char *s = at + 1;; s++) {
        if (*s == '.' || *s == 0) {
            if (label_size == 0 || label_size > 63 || s [-1] == '-')
                return false;
            labels++;
            label_size = 0;
            if (*s == 0)
                break;
            continue;
        }
        if (!s_is_alnum ((unsigned char) *s) && !(*s == '-' && label_size > 0))
            return false;
        label_size++;
    }
    return labels >= 2;
}

bool
tl_valid_username (const char *name)
{
    if (!name)
        return false;
    size_t size = strlen (name);
    if (size < TL_USERNAME_MIN || size > TL_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if (!s_is_alnum ((unsigned char) name [i]) && !strchr ("_.-", name [i]))
            return false;
    return true;
}

long
tl_valid_utf8_chars (const char *text, size_t size)
{
    if (!tl_json_utf8_valid (text, size) || memchr (text, 0, size))
        return -1;
    long count = 0;
    for (size_t i = 0; i < size; i++)
        if (((unsigned char) text [i] & 0xC0) != 0x80)
            count++;
    return count;
}

bool
tl_valid_timezone (const char *name)
{
    if (!name)
        return false;
    size_t size = strlen (name);
    if (size == 0 || size > TL_MAX_TIMEZONE_LEN)
        return false;
    //  Segments of [A-Za-z0-9_+-], none empty, none "." or "..".
    size_t segment = 0;
    for (size_t i = 0; i <= size; i++) {
        char c = name [i];
        if (c == '/' || c == 0) {
            if (segment == 0)
                return false;
            segment = 0;
            continue;
        }
        if (!s_is_alnum ((unsigned char) c) && !strchr ("_+-", c))
            return false;
        segment++;
    }
    const char *dir = getenv ("TZDIR");
    if (!dir || !*dir || strlen (dir) > 512)
        dir = "/usr/share/zoneinfo";
    char path [600];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    char magic [4] = "";
    size_t got = fread (magic, 1, 4, file);
    fclose (file);
    return got == 4 && memcmp (magic, "TZif", 4) == 0;
}

bool
tl_valid_local_time (const char *text)
{
    if (!text || strlen (text) != 5 || text [2] != ':')
        return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text [i] < '0' || text [i] > '9'))
            return false;
    int hours = (text [0] - '0') * 10 + text [1] - '0';
    int minutes = (text [3] - '0') * 10 + text [4] - '0';
    return hours < 24 && minutes < 60;
}

bool
tl_valid_http_url (const char *url)
{
    if (!url)
        return false;
    size_t size = strlen (url);
    if (size < 8 || size > TL_MAX_URL_LEN)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) url [i] <= 0x20 || (unsigned char) url [i] >= 0x7f)
            return false;
    const char *rest = strncasecmp (url, "http://", 7) == 0 ? url + 7
                     : strncasecmp (url, "https://", 8) == 0 ? url + 8 : NULL;
    if (!rest || *rest == '/' || *rest == 0)
        return false;
    CURLU *parsed = curl_url ();
    if (!parsed)
        return false;
    bool ok = curl_url_set (parsed, CURLUPART_URL, url, 0) == CURLUE_OK;
    char *host = NULL, *fragment = NULL;
    if (ok)
        ok = curl_url_get (parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK
          && host && *host
          && curl_url_get (parsed, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT;
    curl_free (host);
    curl_free (fragment);
    curl_url_cleanup (parsed);
    return ok;
}

bool
tl_valid_uuid (const char *text)
{
    if (!text || strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = text [i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return true;
}

void
tl_valid_uuid_new (char out [37])
{
    unsigned char b [16];
    randombytes_buf (b, sizeof b);
    b [6] = (unsigned char) ((b [6] & 0x0f) | 0x40);     //  version 4
    b [8] = (unsigned char) ((b [8] & 0x3f) | 0x80);     //  RFC 4122 variant
    snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
              b [0], b [1], b [2], b [3], b [4], b [5], b [6], b [7],
              b [8], b [9], b [10], b [11], b [12], b [13], b [14], b [15]);
}

bool
tl_valid_idempotency_key (const char *key)
{
    size_t size = key ? strlen (key) : 0;
    if (size == 0 || size > TL_MAX_IDEM_KEY_LEN)
        return false;
    for (const unsigned char *c = (const unsigned char *) key; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type.

void
tl_valid_test (bool verbose)
{
    //  Idempotency keys: visible ASCII, 1..255
    assert (tl_valid_idempotency_key ("order-42:retry") && tl_valid_idempotency_key ("~"));
    assert (!tl_valid_idempotency_key ("") && !tl_valid_idempotency_key (NULL));
    assert (!tl_valid_idempotency_key ("a b") && !tl_valid_idempotency_key ("tab\there"));
    assert (!tl_valid_idempotency_key ("caf\xc3\xa9"));
    char long_key [TL_MAX_IDEM_KEY_LEN + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    assert (!tl_valid_idempotency_key (long_key));
    long_key [TL_MAX_IDEM_KEY_LEN] = 0;
    assert (tl_valid_idempotency_key (long_key));
    //  Email addresses
    const char *good_mail [] = {
        "ann@example.com", "a.b-c+tag@mail.example.org", "x_y@sub.domain.co",
        "o'hara@example.ie", "1@2.io", NULL
    };
    const char *bad_mail [] = {
        "a@b", "a@b.", "@example.com", "ann@", "ann", "ann@@example.com",
        "ann@exa mple.com", ".ann@example.com", "ann.@example.com",
        "a..b@example.com", "ann@-example.com", "ann@example-.com",
        "ann@example..com", "\"ann\"@example.com", "ann@[127.0.0.1]",
        "ann@exämple.com", "ann@example.com\n", "", NULL
    };
    for (int i = 0; good_mail [i]; i++)
        assert (tl_valid_email (good_mail [i]));
    for (int i = 0; bad_mail [i]; i++)
        assert (!tl_valid_email (bad_mail [i]));
    assert (!tl_valid_email (NULL));
    char long_mail [300];
    memset (long_mail, 'a', 65);
    strcpy (long_mail + 65, "@example.com");
    assert (!tl_valid_email (long_mail));          //  local part over 64
    memset (long_mail, 'a', sizeof long_mail);
    long_mail [10] = '@';
    for (int i = 20; i < 250; i += 20)
        long_mail [i] = '.';
    long_mail [260] = 0;
    assert (!tl_valid_email (long_mail));          //  over 254 in all

    //  User names
    assert (tl_valid_username ("ann"));
    assert (tl_valid_username ("Ann_B.c-9"));
    assert (tl_valid_username ("abcdefghijabcdefghijabcdefghijab"));     //  32
    assert (!tl_valid_username ("abcdefghijabcdefghijabcdefghijabc"));   //  33
    assert (!tl_valid_username ("an"));
    assert (!tl_valid_username ("ann b"));
    assert (!tl_valid_username ("ann@x"));
    assert (!tl_valid_username ("änn"));
    assert (!tl_valid_username (""));
    assert (!tl_valid_username (NULL));

    //  UTF-8 characters
    assert (tl_valid_utf8_chars ("abc", 3) == 3);
    assert (tl_valid_utf8_chars ("h\xc3\xa9llo \xf0\x9f\x98\x80", 11) == 7);
    assert (tl_valid_utf8_chars ("\xff", 1) == -1);
    assert (tl_valid_utf8_chars ("a\0b", 3) == -1);
    assert (tl_valid_utf8_chars ("\xc3", 1) == -1);

    //  Time zones (tzdata is a dependency: deploy/bootstrap.sh)
    assert (tl_valid_timezone ("UTC"));
    assert (tl_valid_timezone ("Europe/Paris"));
    assert (tl_valid_timezone ("America/Argentina/Buenos_Aires"));
    assert (tl_valid_timezone ("Etc/GMT+5"));
    assert (!tl_valid_timezone ("Mars/Olympus_Mons"));
    assert (!tl_valid_timezone ("../../etc/passwd"));
    assert (!tl_valid_timezone ("/etc/localtime"));
    assert (!tl_valid_timezone ("Europe/./Paris"));
    assert (!tl_valid_timezone ("Europe//Paris"));
    assert (!tl_valid_timezone ("Europe"));         //  a folder
    assert (!tl_valid_timezone ("zone.tab"));       //  not TZif (and a dot)
    assert (!tl_valid_timezone ("iso3166.tab"));
    assert (!tl_valid_timezone (""));
    assert (!tl_valid_timezone (NULL));

    //  Local times
    assert (tl_valid_local_time ("00:00"));
    assert (tl_valid_local_time ("23:59"));
    assert (tl_valid_local_time ("07:30"));
    assert (!tl_valid_local_time ("24:00"));
    assert (!tl_valid_local_time ("12:60"));
    assert (!tl_valid_local_time ("7:30"));
    assert (!tl_valid_local_time ("07:30:00"));
    assert (!tl_valid_local_time ("ab:cd"));
    assert (!tl_valid_local_time (NULL));

    //  Web URLs
    assert (tl_valid_http_url ("https://example.com/hook"));
    assert (tl_valid_http_url ("http://127.0.0.1:8080/x?y=1"));
    assert (tl_valid_http_url ("HTTPS://hooks.example.org"));
    assert (!tl_valid_http_url ("ftp://example.com/"));
    assert (!tl_valid_http_url ("javascript:alert(1)"));
    assert (!tl_valid_http_url ("https://"));
    assert (!tl_valid_http_url ("https:///path"));
    assert (!tl_valid_http_url ("https://exa mple.com/"));
    assert (!tl_valid_http_url ("https://example.com/\n"));
    assert (!tl_valid_http_url ("example.com"));
    assert (!tl_valid_http_url ("https://example.com/hook#part"));   //  never sent
    assert (!tl_valid_http_url (NULL));
    char long_url [TL_MAX_URL_LEN + 10];
    strcpy (long_url, "https://example.com/");
    memset (long_url + 20, 'a', sizeof long_url - 21);
    long_url [sizeof long_url - 1] = 0;
    assert (!tl_valid_http_url (long_url));
    //  UUIDs
    assert (tl_valid_uuid ("0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d11"));
    assert (tl_valid_uuid ("0B7E7C5E-62A4-4A63-9A7B-2B1C7F0E9D11"));
    assert (!tl_valid_uuid ("0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d1"));
    assert (!tl_valid_uuid ("0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9d111"));
    assert (!tl_valid_uuid ("0b7e7c5e_62a4-4a63-9a7b-2b1c7f0e9d11"));
    assert (!tl_valid_uuid ("0b7e7c5e-62a4-4a63-9a7b-2b1c7f0e9dxz"));
    assert (!tl_valid_uuid (""));
    assert (!tl_valid_uuid (NULL));
    assert (sodium_init () >= 0);
    char made [37], again [37];
    tl_valid_uuid_new (made);
    tl_valid_uuid_new (again);
    assert (tl_valid_uuid (made) && made [14] == '4' && strchr ("89ab", made [19]));
    assert (strcmp (made, again) != 0);
    if (verbose)
        printf ("(tl_valid: email, username, utf8, zone, time, url, uuid) ");
}
