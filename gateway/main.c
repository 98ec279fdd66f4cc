//  main.c — tally-gateway: wires configuration, the routes declared in
//  proto/, the embedded broker and the HTTP daemon, and runs the one loop
//  that drives both: zmq_poll over the mesh backend and libmicrohttpd's
//  epoll descriptors (the public port and the ops port). On SIGTERM: /readyz fails at once, new connections stop
//  after TALLY_SHUTDOWN_DELAY_MS, requests in flight finish (up to the drain
//  grace period), then the gateway tells its peers goodbye and exits.
#include "gw_broker.h"
#include "gw_calls.h"
#include "gw_http.h"
#include "gw_metrics.h"
#include "gw_openapi.h"
#include "gw_router.h"
#include "tl_decl.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

#include <czmq.h>
#include <signal.h>
#include <sys/resource.h>


//  Ships a batch of recorded calls through this gateway's own broker.
static int
s_ship_calls (void *broker, tl_msg_t **request_p, gw_reply_fn *fn, void *arg)
{
    uint64_t handle;
    return gw_broker_submit ((gw_broker_t *) broker, request_p, fn, arg, &handle);
}

//  Routes one declaration file (tl_decl_sources).
static int
s_load_one (const char *text, size_t size, const char *origin, void *arg)
{
    char errbuf [256];
    if (gw_router_load ((gw_router_t *) arg, text, size, errbuf, sizeof errbuf) == 0)
        return 0;
    tl_log (TL_LOG_ERROR, NULL, "%s: %s", origin, errbuf);
    return TL_ECONFIG;
}

//  Loads the declarations (TALLY_PROTO_EXTRA's files, used by tests for
//  their services, and the compiled-in ones), and declares their services.
static int
s_load_routes (gw_router_t *router, gw_broker_t *broker)
{
    if (tl_decl_sources (s_load_one, router))
        return -1;
    const char *names [256];
    size_t count = gw_router_services (router, names, 256);
    for (size_t i = 0; broker && i < count; i++)
        gw_broker_declare (broker, names [i]);
    tl_log (TL_LOG_INFO, NULL, "%zu route(s) for %zu service(s)", gw_router_size (router), count);
    return 0;
}

int
main (int argc, char *argv [])
{
    tl_log_init ("gateway");
    signal (SIGPIPE, SIG_IGN);
    //  Each held stream is a socket: take every file the hard limit allows
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    zsys_init ();
    char name [TL_MAX_ID_LEN];
    char host [32] = "localhost";
    gethostname (host, sizeof host - 1);
    snprintf (name, sizeof name, "%s", tl_env ("TALLY_GATEWAY_NAME", ""));
    if (!*name)
        snprintf (name, sizeof name, "gateway@%s:%d", host, (int) getpid ());

    gw_http_config_t config = {
        .address = tl_env ("TALLY_HTTP_ADDR", "127.0.0.1:8080"),
        .ops_address = tl_env ("TALLY_OPS_ADDR", "127.0.0.1:9090"),
        .cors_origins = tl_env ("TALLY_CORS_ORIGINS", NULL),
        .access_log = tl_env_flag ("TALLY_ACCESS_LOG", true),
        .secure_cookies = strncmp (tl_env ("TALLY_PUBLIC_URL", ""), "https:", 6) == 0,
        .trust_proxy = tl_env_flag ("TALLY_TRUST_PROXY", false),
    };
    const char *mesh_bind = tl_env ("TALLY_MESH_BIND", "tcp://127.0.0.1:5555");
    long shutdown_delay = 0;
    if (tl_env_long ("TALLY_SHUTDOWN_DELAY_MS", 0, 0, 600000, &shutdown_delay))
        return 1;

    int rc = 1;
    if (argc == 2 && streq (argv [1], "--openapi")) {
        //  The API document derived from the declarations, to stdout.
        gw_router_t *router = gw_router_new ();
        gw_broker_t *none = NULL;
        char *text = router && s_load_routes (router, none) == 0
                   ? gw_openapi_render (router) : NULL;
        if (text)
            printf ("%s\n", text);
        free (text);
        gw_router_destroy (&router);
        return text ? 0 : 1;
    }
    gw_router_t *router = gw_router_new ();
    gw_metrics_t *metrics = gw_metrics_new ();
    gw_broker_t *broker = gw_broker_new (mesh_bind, name);
    gw_http_t *http = NULL;
    gw_calls_t *calls = NULL;
    if (!router || !metrics || !broker || s_load_routes (router, broker) != 0)
        goto done;
    http = gw_http_new (&config, router, broker, metrics);
    if (!http)
        goto done;
    //  Tally watches itself when the analytics service is declared
    if (tl_env_flag ("TALLY_RECORD_CALLS", true)
    &&  gw_router_method (router, "analytics", "calls.ingest")) {
        calls = gw_calls_new (GW_CALLS_CAPACITY, TALLY_VERSION_TEXT, s_ship_calls, broker);
        if (!calls)
            goto done;
        gw_http_set_calls (http, calls);
    }
    tl_log (TL_LOG_INFO, NULL, "gateway %s serving http://%s, ops http://%s, mesh backend %s",
            name, config.address, config.ops_address, mesh_bind);

    int64_t drain_started = 0;
    int64_t next_http_tick = 0;
    while (true) {
        int64_t now = zclock_mono ();
        if (zsys_interrupted && !drain_started) {
            drain_started = now;
            tl_log (TL_LOG_INFO, NULL, "draining: %zu request(s) in progress",
                    gw_http_active (http));
            gw_http_drain (http, shutdown_delay <= 0);
            gw_broker_set_draining (broker);
        }
        if (drain_started) {
            if (now - drain_started >= shutdown_delay)
                gw_http_drain (http, true);
            if ((gw_http_active (http) == 0 && now - drain_started >= shutdown_delay)
            ||  now - drain_started > TL_DRAIN_GRACE_MSEC + shutdown_delay)
                break;
        }
        long timeout = gw_http_timeout (http);
        if (timeout < 0 || timeout > 25)
            timeout = 25;           //  the broker ticks at least this often
        zmq_pollitem_t items [] = {
            { gw_broker_socket (broker), 0, ZMQ_POLLIN, 0 },
            { NULL, gw_http_fd (http), ZMQ_POLLIN, 0 },
            { NULL, gw_http_ops_fd (http), ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 3, timeout) < 0 && errno != EINTR)
            break;
        gw_broker_recv (broker);
        gw_broker_tick (broker);
        if (calls)
            gw_calls_tick (calls, zclock_mono ());
        if (zclock_mono () >= next_http_tick) {
            gw_http_tick (http);
            next_http_tick = zclock_mono () + 100;
        }
        gw_http_run (http);
    }
    tl_log (TL_LOG_INFO, NULL, "gateway %s stopped", name);
    rc = 0;
done:
    gw_http_destroy (&http);
    gw_broker_destroy (&broker);
    gw_calls_destroy (&calls);          //  after the broker: it answers no batch now
    gw_metrics_destroy (&metrics);
    gw_router_destroy (&router);
    return rc;
}
