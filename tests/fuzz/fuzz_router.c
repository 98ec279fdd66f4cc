//  fuzz_router.c — fuzz target for the gateway's route table (gw_router).
//  The first line of an input is a request line, "METHOD path", matched
//  against a fixed, realistic table; the outcome must be consistent (a
//  route with its parameters, or 404, or 405 with an Allow list). Then the
//  whole input is loaded as a declaration into a fresh table; when it
//  loads, each of its routes must be reachable by a path built from its
//  pattern.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_router.h"
#include "tl_error.h"
#include "tl_limits.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static const char *s_tracker =
    "{\"service\": \"tracker\", \"methods\": ["
    " {\"name\": \"trackers.list\", \"route\": \"GET /api/v1/trackers\"},"
    " {\"name\": \"trackers.create\", \"route\": \"POST /api/v1/trackers\","
    "  \"fields\": {\"name\": {\"type\": \"string\", \"required\": true, \"max\": 100}}},"
    " {\"name\": \"trackers.get\", \"route\": \"GET /api/v1/trackers/{id}\"},"
    " {\"name\": \"trackers.update\", \"route\": \"PATCH /api/v1/trackers/{id}\"},"
    " {\"name\": \"trackers.delete\", \"route\": \"DELETE /api/v1/trackers/{id}\"},"
    " {\"name\": \"trackers.export\", \"route\": \"GET /api/v1/trackers.csv\"},"
    " {\"name\": \"logs.list\", \"route\": \"GET /api/v1/trackers/{id}/logs\"},"
    " {\"name\": \"logs.create\", \"route\": \"POST /api/v1/trackers/{id}/logs\"},"
    " {\"name\": \"logs.get\", \"route\": \"GET /api/v1/trackers/{id}/logs/{log_id}\"},"
    " {\"name\": \"logs.csv\", \"route\": \"GET /api/v1/trackers/{id}/logs.csv\"},"
    " {\"name\": \"logs.import\", \"route\": \"POST /api/v1/trackers/{id}/logs.csv\","
    "  \"body\": \"upload\"},"
    " {\"name\": \"board.get\", \"route\": \"GET /api/v1/trackers/{id}/board\"}"
    "]}";

static const char *s_events =
    "{\"service\": \"event\", \"methods\": ["
    " {\"name\": \"events.list\", \"route\": \"GET /api/v1/events\", \"auth\": false},"
    " {\"name\": \"roles.accept\", \"route\": \"POST /api/v1/events/{id}/roles/accept\"},"
    " {\"name\": \"roles.delete\", \"route\": \"DELETE /api/v1/events/{id}/roles/{user_id}\"},"
    " {\"name\": \"sub.get\", \"route\": \"GET /api/v1/events/{id}/{service}/{sub_id}\"},"
    " {\"name\": \"me.orders\", \"route\": \"GET /api/v1/me/orders\"},"
    " {\"name\": \"health\", \"route\": \"GET /healthz\", \"auth\": false},"
    " {\"name\": \"internal.cleanup\"}"
    "]}";

//  Matches one request against a table and checks the outcome.

static void
s_match (gw_router_t *router, const char *method, const char *path,
         size_t allow_size)
{
    char allow [80];
    gw_params_t params;
    int status = 0;
    memset (allow, 'x', sizeof (allow));
    const gw_route_t *route = gw_router_match (router, method, path, &params,
                                               allow, allow_size, &status);
    if (route) {
        s_check (status == 200);
        s_check (params.count >= 0 && params.count <= TL_MAX_PARAMS);
        for (int index = 0; index < params.count; index++) {
            s_check (params.items [index].name && params.items [index].value);
            s_check (params.items [index].value [0]);
            s_check (gw_params_get (&params, params.items [index].name));
        }
        s_check (route->http_method && route->pattern);
        s_check (strcmp (route->http_method, method) == 0
             ||  (strcmp (method, "HEAD") == 0
             &&   strcmp (route->http_method, "GET") == 0));
        gw_params_reset (&params);
    }
    else {
        s_check (status == 404 || status == 405);
        s_check (params.count == 0);
        if (allow_size) {
            s_check (strlen (allow) < allow_size);
            size_t length = strlen (allow);
            //  Every method fits in 44 bytes; then the list ends in OPTIONS.
            if (status == 405 && allow_size >= 44)
                s_check (length >= 7 && strcmp (allow + length - 7, "OPTIONS") == 0);
            if (status == 404)
                s_check (allow [0] == 0);
        }
    }
    s_check (params.count == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static gw_router_t *fixed = NULL;
    if (!fixed) {
        fixed = gw_router_new ();
        s_check (fixed);
        s_check (gw_router_load (fixed, s_tracker, strlen (s_tracker), NULL, 0) == 0);
        s_check (gw_router_load (fixed, s_events, strlen (s_events), NULL, 0) == 0);
    }
    //  First line: "METHOD path" (NUL bytes end the strings early).
    size_t line = 0;
    while (line < size && data [line] != '\n')
        line++;
    char *request = (char *) malloc (line + 1);
    s_check (request);
    memcpy (request, data, line);
    request [line] = 0;
    char *space = strchr (request, ' ');
    if (space) {
        *space = 0;
        s_match (fixed, request, space + 1, 80);
        s_match (fixed, request, space + 1, line % 24);
    }
    else
        s_match (fixed, "GET", request, 80);
    free (request);

    //  The whole input as a declaration.
    gw_router_t *router = gw_router_new ();
    s_check (router);
    char errbuf [300];
    int rc = gw_router_load (router, (const char *) data, size, errbuf, sizeof (errbuf));
    s_check (rc == 0 || rc == TL_EINVAL || rc == TL_ETOOBIG || rc == TL_ENOMEM);
    if (rc) {
        s_check (errbuf [0]);
        for (const char *c = errbuf; *c; c++)
            s_check (*c >= 0x20 && *c < 0x7f);
        s_check (gw_router_size (router) == 0);
    }
    else {
        s_check (gw_router_services (router, NULL, 0) == 1);
        //  Every route answers a path made from its own pattern.
        for (size_t index = 0; index < gw_router_size (router); index++) {
            const gw_route_t *route = gw_router_at (router, index);
            s_check (route && route->pattern && route->http_method);
            s_check (gw_router_method (router, route->service, route->method) == route);
            size_t length = strlen (route->pattern);
            char *path = (char *) malloc (length + 1);
            s_check (path);
            size_t out = 0;
            for (size_t at = 0; at < length; at++) {
                if (route->pattern [at] == '{') {
                    path [out++] = 'p';
                    while (route->pattern [at] != '}')
                        at++;
                }
                else
                    path [out++] = route->pattern [at];
            }
            path [out] = 0;
            gw_params_t params;
            int status = 0;
            const gw_route_t *found = gw_router_match (router, route->http_method,
                                                       path, &params, NULL, 0, &status);
            if (!found)
                fprintf (stderr, "%s %s (%s): %d\n", route->http_method, path,
                         route->pattern, status);
            s_check (found && status == 200);
            s_check (strcmp (found->http_method, route->http_method) == 0);
            gw_params_reset (&params);
            free (path);
        }
    }
    gw_router_destroy (&router);
    return 0;
}
