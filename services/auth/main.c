//  main.c — tally-auth: accounts, sessions and staff roles (README.md).
//  Reads its configuration, sets up password hashing, registers the
//  handlers and jobs of auth_accounts.c, auth_sessions.c and auth_jobs.c,
//  and runs the service.
#include "auth_password.h"
#include "auth_service.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_valid.h"

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
    rc = rc ? rc : auth_avatar_prepare (db);
    return rc;
}

//  Reads the environment into auth_config. Returns 0 or TL_ECONFIG.
static int
s_configure (void)
{
    if (tl_env_public_url (auth_config.public_url, sizeof auth_config.public_url))
        return TL_ECONFIG;

    auth_config.require_verification = tl_env_flag ("TALLY_REQUIRE_VERIFICATION", true);

    //  Hash cost (never below libsodium's INTERACTIVE) and concurrency
    unsigned long long ops = strtoull (tl_env ("TALLY_ARGON2_OPSLIMIT", "0"), NULL, 10);
    size_t mem = (size_t) strtoull (tl_env ("TALLY_ARGON2_MEMLIMIT", "0"), NULL, 10);
    int hashes = atoi (tl_env ("TALLY_AUTH_MAX_HASHES", "0"));
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
    tl_service_t *svc = tl_service_new ("auth", auth_migrations);
    int rc = svc ? s_configure () : TL_ENOMEM;
    if (rc == 0) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = auth_accounts_register (svc);
        rc = rc ? rc : auth_sessions_register (svc);
        rc = rc ? rc : auth_jobs_register (svc);
        rc = rc ? rc : auth_avatar_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    auth_password_shutdown ();
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
