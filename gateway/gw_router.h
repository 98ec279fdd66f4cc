//  gw_router.h — the gateway's route table, built from the service
//  declarations of proto/PROTOCOL.md section 7 (proto/services/*.json).
//  Each declared method with a `route` becomes one route: "METHOD /path"
//  where a segment is a literal or a whole-segment {param}. Declarations
//  are checked strictly when loaded; matching a request path is read-only
//  and allocates nothing but the parameter values, so one table can serve
//  every request (and several threads) once loaded.
#ifndef GW_ROUTER_H_INCLUDED
#define GW_ROUTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "tl_limits.h"

typedef enum {
    GW_BODY_NONE,               //  no body is read
    GW_BODY_JSON,               //  JSON, at most TL_HTTP_MAX_JSON_BODY
    GW_BODY_UPLOAD,             //  raw bytes, at most TL_HTTP_MAX_UPLOAD_BODY
    GW_BODY_STREAM              //  raw bytes streamed in chunks (gw_bodies.h)
} gw_body_kind_t;

//  One declared method. Read-only for callers; every pointer is owned by
//  the router and lives as long as it does.
typedef struct {
    const char *service;        //  "tracker"
    const char *method;         //  "logs.get"
    const char *http_method;    //  "GET"; NULL for a method with no route
    const char *pattern;        //  "/api/v1/trackers/{id}"; NULL likewise
    bool auth;                  //  needs a session (default true)
    bool auth_optional;         //  "auth": "optional": no session needed, but
                                //  a token sent is checked and its caller passed
    bool idempotent;            //  safe to run twice
    bool credentials;           //  auth only: pass session_token and client_ip
    bool stream;                //  a Server-Sent Events stream the gateway holds
                                //  (gw_streams); the method answers its catch-up
    gw_body_kind_t body;
    int timeout_ms;             //  1 .. TL_MAX_DEADLINE_MSEC
    const json_t *fields;       //  NULL when none
    const char *summary;        //  one line for the OpenAPI document; NULL when none
    const char *description;    //  NULL when none
    const json_t *errors;       //  4xx statuses the service itself may answer
                                //  (an array of integers); NULL when none
} gw_route_t;

//  Path parameters of a match. Names are borrowed from the route table;
//  values are the caller's (percent-decoded, NUL-terminated), released by
//  gw_params_reset.
typedef struct {
    int count;
    struct {
        const char *name;
        char *value;
    } items [TL_MAX_PARAMS];
} gw_params_t;

typedef struct _gw_router_t gw_router_t;

//  Creates an empty route table. Returns NULL on allocation failure.
gw_router_t *gw_router_new (void);

//  Destroys the table and nulls the caller's reference. Safe on NULL.
//  Routes, names and params taken from it must no longer be used.
void gw_router_destroy (gw_router_t **self_p);

//  Loads one declaration file (one service) of `len` bytes. All or nothing:
//  on any error the table is unchanged. Checks: the JSON shape and types
//  of PROTOCOL.md section 7 (unknown keys are errors, except "description"
//  and "summary" strings for documentation), service `[a-z][a-z0-9_-]*`
//  and method `[a-z][a-z0-9_.]*` names (at most TL_MAX_NAME_LEN), route
//  "METHOD /path" with METHOD one of GET POST PUT PATCH DELETE and each
//  segment a literal `[A-Za-z0-9._~-]+` (not "." or "..") or a whole
//  `{name}`, "credentials" only for service "auth", "stream" only
//  for an authenticated GET route, field declarations ({type, required, max}, "max" only for
//  strings and arrays, only with body "json"), "errors" a list of distinct
//  statuses of the API's error table (400, 401, 403, 404, 409, 413, 415,
//  422, 429), timeout_ms 1..120000, no
//  service or method declared twice, no two routes with the same method and
//  shape. A method without "route" is reachable over the mesh only
//  (gw_router_method) and is not a route. Returns 0, or TL_EINVAL /
//  TL_ETOOBIG / TL_ENOMEM with a message in errbuf naming the service and
//  the method, e.g. "service 'tracker', method 'logs.get': route GET
//  /api/v1/x/{id} declared twice (also tracker.logs.read)".
int gw_router_load (gw_router_t *self, const char *json, size_t len,
                    char *errbuf, size_t errsize);

//  Finds the route for a request. `path` is the raw request path, still
//  percent-encoded (a '?' ends it); it must start with '/', be at most
//  TL_HTTP_MAX_URL_LEN bytes and TL_HTTP_MAX_PATH_SEGMENTS segments; an
//  empty segment ("//", a trailing '/') never matches. Segments are
//  percent-decoded before they are compared; a segment with an invalid %XX,
//  a control character (NUL included) or invalid UTF-8 after decoding, and
//  a "." or ".." segment, match nothing. Literal segments win over
//  parameters, leftmost first (/trackers/export beats /trackers/{id}).
//  HEAD matches GET routes. Returns the route (and *status 200), with its
//  parameters in `params` when not NULL (params is overwritten, not freed:
//  call gw_params_reset on an earlier result first). Otherwise returns
//  NULL and *status 404 when no route has this path, 405 when routes of
//  other methods have it (OPTIONS always gets 405 or 404), with `allow`
//  (when allow_size > 0) set to their methods in a fixed order, e.g.
//  "GET, HEAD, POST, OPTIONS" (whole names only, if it is too small), or
//  503 if a parameter value could not be allocated.
const gw_route_t *gw_router_match (gw_router_t *self, const char *http_method,
                                   const char *path, gw_params_t *params,
                                   char *allow, size_t allow_size, int *status);

//  Frees the parameter values and empties `p`. Safe on an empty one.
void gw_params_reset (gw_params_t *p);

//  Returns the value of parameter `name` (borrowed), or NULL.
const char *gw_params_get (const gw_params_t *p, const char *name);

//  Returns the number of routes (methods with a route), in load order.
size_t gw_router_size (gw_router_t *self);

//  Returns route `index` (0 .. size - 1), or NULL past the end.
const gw_route_t *gw_router_at (gw_router_t *self, size_t index);

//  Returns the declaration of `method` of `service`, routed or not (for
//  requests that arrive over the mesh), or NULL when none is declared.
const gw_route_t *gw_router_method (gw_router_t *self, const char *service,
                                    const char *method);

//  Fills `names` with up to `max` distinct service names, in load order
//  (borrowed), and returns how many services are declared in all (which
//  may be more than max).
size_t gw_router_services (gw_router_t *self, const char **names, size_t max);

//  Returns the "description" of declared `service` (borrowed), or NULL
//  when it has none or is not declared.
const char *gw_router_service_description (gw_router_t *self, const char *service);

//  Self-test, run by ctest.
void gw_router_test (bool verbose);

#endif
