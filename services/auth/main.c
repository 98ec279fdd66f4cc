//  main.c — tally-auth: accounts, sessions and staff roles (README.md).
//  Reads its configuration, sets up password hashing, registers the
//  handlers and jobs of auth_accounts.c, auth_sessions.c and auth_jobs.c,
//  and runs the service.
#include "auth_password.h"
#include "auth_service.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_valid.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const tl_embed_t auth_migrations [];

static int
s_thread_init (tl_db_t *db, void *arg)
{
    int rc = auth_accounts_prepare (db);
    rc = rc ? rc : auth_sessions_prepare (db);
    rc = rc ? rc : auth_jobs_prepare (db);
    return rc;
}

static const char *
s_env (const char *name, const char *fallback)
{
    const char *value = getenv (name);
    return value && *value ? value : fallback;
}

//  Reads the environment into auth_config. Returns 0 or TL_ECONFIG.
static int
s_configure (void)
{
    const char *url = s_env ("TALLY_PUBLIC_URL", "http://127.0.0.1:8080");
    size_t size = strlen (url);
    while (size && url [size - 1] == '/')
        size--;
    if (!tl_valid_http_url (url) || size >= sizeof auth_config.public_url) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_PUBLIC_URL must be an http(s) URL");
        return TL_ECONFIG;
    }
    memcpy (auth_config.public_url, url, size);
    auth_config.public_url [size] = 0;

    const char *verify = s_env ("TALLY_REQUIRE_VERIFICATION", "true");
    auth_config.require_verification = strcmp (verify, "false") != 0 && strcmp (verify, "0") != 0;

    //  The services that hold user data, told when a user is deleted
    char *list = strdup (s_env ("TALLY_USER_DATA_SERVICES", "tracker,mailer"));
    char *save = NULL;
    for (char *name = strtok_r (list, ", ", &save); name; name = strtok_r (NULL, ", ", &save)) {
        if (auth_config.subscriber_count == AUTH_MAX_SUBSCRIBERS
        ||  strlen (name) > TL_MAX_NAME_LEN) {
            tl_log (TL_LOG_ERROR, NULL, "TALLY_USER_DATA_SERVICES: too many or too long");
            free (list);
            return TL_ECONFIG;
        }
        strcpy (auth_config.subscribers [auth_config.subscriber_count++], name);
    }
    free (list);

    //  Hash cost (never below libsodium's INTERACTIVE) and concurrency
    unsigned long long ops = strtoull (s_env ("TALLY_ARGON2_OPSLIMIT", "0"), NULL, 10);
    size_t mem = (size_t) strtoull (s_env ("TALLY_ARGON2_MEMLIMIT", "0"), NULL, 10);
    int hashes = atoi (s_env ("TALLY_AUTH_MAX_HASHES", "0"));
    if (hashes == 0)
        hashes = AUTH_HASHES_DEFAULT;
    int rc = auth_password_init (ops, mem, hashes);
    if (rc) {
        tl_log (TL_LOG_ERROR, NULL, "argon2id limits or TALLY_AUTH_MAX_HASHES invalid: %s",
                tl_strerror (rc));
        return TL_ECONFIG;
    }
    return 0;
}

int
main (void)
{
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    tl_log_init ("auth");
    int rc = s_configure ();
    tl_service_t *svc = rc ? NULL : tl_service_new ("auth", auth_migrations);
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = auth_accounts_register (svc);
        rc = rc ? rc : auth_sessions_register (svc);
        rc = rc ? rc : auth_jobs_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    else
        rc = rc ? rc : TL_ENOMEM;
    tl_service_destroy (&svc);
    auth_password_shutdown ();
    curl_global_cleanup ();
    return rc ? 1 : 0;
}
