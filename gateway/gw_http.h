//  gw_http.h — the gateway's HTTP side, over libmicrohttpd in external
//  epoll mode. Each request is routed by the declarations (gw_router),
//  checked (method, size, content type, JSON, declared fields),
//  authenticated with the auth service when its route needs it, turned into
//  a mesh request and submitted to the broker; the connection is suspended
//  meanwhile and resumed by the reply or the deadline, so the loop thread
//  never waits. Replies become JSON (or raw bytes) with ETag, 304,
//  X-Request-Id, CORS and security headers. Also serves /healthz, /livez
//  and /readyz; and on a second listener, the ops port, which the public
//  never reaches, those three and /metrics.
#ifndef GW_HTTP_H_INCLUDED
#define GW_HTTP_H_INCLUDED

#include <stdbool.h>
#include "gw_broker.h"
#include "gw_metrics.h"
#include "gw_router.h"

typedef struct {
    const char *address;            //  "127.0.0.1:8080"
    const char *ops_address;        //  "127.0.0.1:9090": /metrics and the probes
    const char *cors_origins;       //  comma-separated exact origins, or NULL
    bool access_log;                //  one JSON line per request
    bool secure_cookies;            //  served behind TLS
    bool trust_proxy;               //  client address from X-Forwarded-For
} gw_http_config_t;

typedef struct _gw_http_t gw_http_t;

//  Starts listening. Borrows the router, broker and metrics, which must
//  outlive it. Returns NULL (with the reason logged) if it cannot listen.
gw_http_t *gw_http_new (const gw_http_config_t *config, gw_router_t *router,
                        gw_broker_t *broker, gw_metrics_t *metrics);

//  Stops the daemon (closing every connection) and nulls the reference.
void gw_http_destroy (gw_http_t **self_p);

//  The epoll descriptors to poll for input: the public port's (its socket,
//  which gw_http accepts itself, and the two libmicrohttpd daemons it hands
//  connections to: one for requests, one for streams with a small head)
//  and the ops listener's.
int gw_http_fd (gw_http_t *self);
int gw_http_ops_fd (gw_http_t *self);

//  Runs whatever is ready on both listeners; never blocks.
void gw_http_run (gw_http_t *self);

//  Milliseconds until libmicrohttpd needs to run again (-1: no timer).
long gw_http_timeout (gw_http_t *self);

//  Notices clients that hung up while their request waits on the mesh,
//  cancels those requests and closes the connections. Call every ~100 ms.
void gw_http_tick (gw_http_t *self);

//  Starts a drain: /readyz answers 503 from now on and, once `stop_accepting`
//  is true, the public listening socket is closed (the ops port stays
//  open until the gateway stops).
void gw_http_drain (gw_http_t *self, bool stop_accepting);

//  Records every routed call this gateway serves into `calls` (borrowed,
//  NULL: none), for analytics (gw_calls.h).
typedef struct _gw_calls_t gw_calls_t;
void gw_http_set_calls (gw_http_t *self, gw_calls_t *calls);

//  Requests that are being handled (received, not yet answered).
size_t gw_http_active (gw_http_t *self);

//  Self-test.
void gw_http_test (bool verbose);

#endif
