//  main.c — tally-mailer: delivers the mail and webhooks other services ask
//  for, from a durable outbox (see mailer_outbox.h and README.md).
#include "mailer_outbox.h"
#include "tl_log.h"
#include "tl_service.h"

#include <curl/curl.h>
#include <sodium.h>

extern const tl_embed_t mailer_migrations [];

int
main (void)
{
    //  Both keep global state: set up once, before any thread starts.
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    tl_log_init ("mailer");
    tl_service_t *svc = tl_service_new ("mailer", mailer_migrations);
    int rc = svc ? mailer_outbox_register (svc) : -1;
    if (rc == 0)
        rc = tl_service_run (svc);
    tl_service_destroy (&svc);
    curl_global_cleanup ();
    return rc ? 1 : 0;
}
