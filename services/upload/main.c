//  main.c — tally-upload: images uploaded, cleaned, resized and served
//  (README.md). Starts libvips once, then registers the handlers, jobs and
//  subscriptions of each upload_*.c file and runs the service.
#include "upload_service.h"
#include "up_image.h"

int
main (void)
{
    tl_service_t *svc = tl_service_new ("upload", upload_migrations);
    int rc = svc ? 0 : 1;
    if (svc && up_image_init ("tally-upload") != 0) {
        tl_log (TL_LOG_ERROR, NULL, "libvips did not start");
        rc = 1;
    }
    if (svc && rc == 0) {
        rc = upload_config ();
        tl_service_set_thread_init (svc, upload_thread_init, NULL);
        rc = rc ? rc : upload_files_register (svc);
        rc = rc ? rc : upload_refs_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
