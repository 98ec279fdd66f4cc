//  gw_openapi.h — the OpenAPI 3.1 document of the HTTP API, derived from
//  the same route table the gateway serves (proto/services/*.json), so that
//  the document cannot drift from the routes. proto/openapi.yaml is its
//  output (`make openapi`); a test fails when that file is stale.
#ifndef GW_OPENAPI_H_INCLUDED
#define GW_OPENAPI_H_INCLUDED

#include <stdbool.h>
#include "gw_router.h"

//  Renders the document for every routed method of `router`, plus the
//  gateway's own endpoints, as JSON (which is YAML) with sorted keys.
//  Returns a new string (the caller frees) or NULL.
char *gw_openapi_render (gw_router_t *router);

//  Self-test.
void gw_openapi_test (bool verbose);

#endif
