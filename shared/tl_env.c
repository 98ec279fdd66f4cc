//  tl_env.c — configuration from the environment, read one way.
#include "tl_env.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_valid.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
tl_env (const char *name, const char *fallback)
{
    const char *value = getenv (name);
    return value && *value ? value : fallback;
}

bool
tl_env_flag (const char *name, bool fallback)
{
    const char *value = tl_env (name, NULL);
    if (!value)
        return fallback;
    static const char *yes [] = { "1", "true", "yes", "on", NULL };
    static const char *no [] = { "0", "false", "no", "off", NULL };
    for (int i = 0; yes [i]; i++) {
        if (strcasecmp (value, yes [i]) == 0)
            return true;
        if (strcasecmp (value, no [i]) == 0)
            return false;
    }
    return fallback;
}

int
tl_env_long (const char *name, long fallback, long min, long max, long *value)
{
    const char *text = tl_env (name, NULL);
    if (!text) {
        *value = fallback;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || end == text || *end || number < min || number > max) {
        tl_log (TL_LOG_ERROR, NULL, "%s must be a whole number from %ld to %ld", name, min, max);
        return TL_ECONFIG;
    }
    *value = number;
    return 0;
}

int
tl_env_public_url (char *url, size_t size)
{
    const char *value = tl_env ("TALLY_PUBLIC_URL", "http://127.0.0.1:8080");
    size_t length = strlen (value);
    while (length && value [length - 1] == '/')
        length--;
    if (!tl_valid_http_url (value) || length >= size) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_PUBLIC_URL must be an http(s) URL");
        return TL_ECONFIG;
    }
    memcpy (url, value, length);
    url [length] = 0;
    return 0;
}

void
tl_env_test (bool verbose)
{
    setenv ("TL_ENV_TEST", "", 1);
    assert (tl_env ("TL_ENV_TEST", "d") [0] == 'd');            //  empty: the default
    unsetenv ("TL_ENV_TEST");
    assert (tl_env ("TL_ENV_TEST", NULL) == NULL);
    setenv ("TL_ENV_TEST", "x", 1);
    assert (tl_env ("TL_ENV_TEST", "d") [0] == 'x');
    //  Flags
    const char *trues [] = { "1", "true", "YES", "on" };
    const char *falses [] = { "0", "False", "no", "OFF" };
    for (int i = 0; i < 4; i++) {
        setenv ("TL_ENV_TEST", trues [i], 1);
        assert (tl_env_flag ("TL_ENV_TEST", false));
        setenv ("TL_ENV_TEST", falses [i], 1);
        assert (!tl_env_flag ("TL_ENV_TEST", true));
    }
    setenv ("TL_ENV_TEST", "maybe", 1);
    assert (tl_env_flag ("TL_ENV_TEST", true) && !tl_env_flag ("TL_ENV_TEST", false));
    //  Numbers
    long n = 0;
    unsetenv ("TL_ENV_TEST");
    assert (tl_env_long ("TL_ENV_TEST", 8, 1, 64, &n) == 0 && n == 8);
    setenv ("TL_ENV_TEST", "12", 1);
    assert (tl_env_long ("TL_ENV_TEST", 8, 1, 64, &n) == 0 && n == 12);
    const char *bad [] = { "0", "65", "12x", "x", "-3", "99999999999999999999" };
    for (int i = 0; i < 6; i++) {
        setenv ("TL_ENV_TEST", bad [i], 1);
        assert (tl_env_long ("TL_ENV_TEST", 8, 1, 64, &n) == TL_ECONFIG);
    }
    unsetenv ("TL_ENV_TEST");
    //  The public URL: no trailing slash; not a URL: refused
    char url [64];
    setenv ("TALLY_PUBLIC_URL", "https://tally.example//", 1);
    assert (tl_env_public_url (url, sizeof url) == 0 && strcmp (url, "https://tally.example") == 0);
    setenv ("TALLY_PUBLIC_URL", "ftp://tally.example", 1);
    assert (tl_env_public_url (url, sizeof url) == TL_ECONFIG);
    unsetenv ("TALLY_PUBLIC_URL");
    assert (tl_env_public_url (url, sizeof url) == 0 && strcmp (url, "http://127.0.0.1:8080") == 0);
    if (verbose)
        printf ("(env ok) ");
}
