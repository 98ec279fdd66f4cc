//  gw_openapi.c — the OpenAPI 3.1 document, derived from the route table.
#include "gw_openapi.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>

//  {"$ref": "#/components/responses/<name>"}
static json_t *
s_ref (const char *name)
{
    char ref [128];
    snprintf (ref, sizeof ref, "#/components/responses/%s", name);
    return json_pack ("{s:s}", "$ref", ref);
}

//  The JSON Schema of a body from its declared fields.
static json_t *
s_body_schema (const json_t *fields)
{
    json_t *properties = json_object ();
    json_t *required = json_array ();
    const char *name;
    json_t *spec;
    json_object_foreach ((json_t *) fields, name, spec) {
        const char *type = json_string_value (json_object_get (spec, "type"));
        json_t *schema = json_pack ("{s:s}", "type", type ? type : "string");
        json_t *max = json_object_get (spec, "max");
        if (json_is_integer (max)) {
            if (type && strcmp (type, "string") == 0)
                json_object_set (schema, "maxLength", max);
            else
            if (type && strcmp (type, "array") == 0)
                json_object_set (schema, "maxItems", max);
        }
        json_t *about = json_object_get (spec, "description");
        if (json_is_string (about))
            json_object_set (schema, "description", about);
        json_object_set_new (properties, name, schema);
        if (json_is_true (json_object_get (spec, "required")))
            json_array_append_new (required, json_string (name));
    }
    json_t *schema = json_pack ("{s:s, s:o}", "type", "object", "properties", properties);
    if (json_array_size (required))
        json_object_set_new (schema, "required", required);
    else
        json_decref (required);
    return schema;
}

static json_t *
s_operation (const gw_route_t *route)
{
    char id [160];
    snprintf (id, sizeof id, "%s/%s", route->service, route->method);  //  unique
    json_t *op = json_pack ("{s:s, s:[s]}", "operationId", id, "tags", route->service);
    //  Path parameters, in the order of the template.
    json_t *parameters = json_array ();
    for (const char *p = strchr (route->pattern, '{'); p; p = strchr (p + 1, '{')) {
        const char *end = strchr (p, '}');
        if (!end)
            break;
        json_t *name = json_stringn (p + 1, (size_t) (end - p - 1));
        json_array_append_new (parameters, json_pack ("{s:o, s:s, s:b, s:{s:s}}",
            "name", name, "in", "path", "required", 1, "schema", "type", "string"));
    }
    if (json_array_size (parameters))
        json_object_set_new (op, "parameters", parameters);
    else
        json_decref (parameters);
    if (route->body == GW_BODY_JSON)
        json_object_set_new (op, "requestBody", json_pack ("{s:{s:{s:o}}}",
            "content", "application/json", "schema",
            route->fields ? s_body_schema (route->fields) : json_pack ("{s:s}", "type", "object")));
    else
    if (route->body == GW_BODY_UPLOAD)
        json_object_set_new (op, "requestBody", json_pack ("{s:b, s:{s:{}, s:{}, s:{}}}",
            "required", 1, "content", "image/*", "multipart/form-data", "application/json"));
    json_t *responses = json_pack ("{s:{s:s}, s:o, s:o, s:o, s:o}",
        "2XX", "description", "success",
        "400", s_ref ("BadRequest"), "404", s_ref ("NotFound"),
        "503", s_ref ("Unavailable"), "504", s_ref ("Timeout"));
    if (route->auth) {
        json_object_set_new (responses, "401", s_ref ("Unauthenticated"));
        json_object_set_new (op, "security", json_pack ("[{s:[]}, {s:[]}]",
                                                        "bearer", "session"));
    }
    else
        json_object_set_new (op, "security", json_array ());
    if (route->body != GW_BODY_NONE) {
        json_object_set_new (responses, "413", s_ref ("TooLarge"));
        json_object_set_new (responses, "415", s_ref ("UnsupportedMediaType"));
    }
    json_object_set_new (op, "responses", responses);
    return op;
}

static json_t *
s_error_response (const char *description)
{
    return json_pack ("{s:s, s:{s:{s:{s:s}}}}", "description", description,
                      "content", "application/json", "schema",
                      "$ref", "#/components/schemas/Error");
}

static json_t *
s_components (void)
{
    json_t *error = json_pack (
        "{s:s, s:[s], s:{s:{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}, s:{s:s, s:{s:s}}}}}}",
        "type", "object", "required", "error", "properties", "error",
        "type", "object", "required", "code", "message", "properties",
        "code", "type", "string", "message", "type", "string",
        "fields", "type", "object", "additionalProperties", "type", "string");
    return json_pack ("{s:{s:o}, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}}}",
        "schemas", "Error", error,
        "responses",
        "BadRequest", s_error_response ("bad input"),
        "Unauthenticated", s_error_response ("missing or invalid credential"),
        "NotFound", s_error_response ("no such resource (or not yours)"),
        "TooLarge", s_error_response ("body too large"),
        "UnsupportedMediaType", s_error_response ("wrong content type"),
        "Unavailable", s_error_response ("the service is down or busy; see Retry-After"),
        "Timeout", s_error_response ("the service did not answer in time"),
        "NotReady", s_error_response ("not ready: the body lists what is missing"),
        "securitySchemes",
        "bearer", "type", "http", "scheme", "bearer",
        "session", "type", "apiKey", "in", "cookie", "name", "tally_session");
}

char *
gw_openapi_render (gw_router_t *router)
{
    json_t *paths = json_object ();
    json_object_set_new (paths, "/healthz", json_pack ("{s:{s:s, s:[], s:{s:{s:s}}}}",
        "get", "operationId", "gateway.healthz", "security", "responses", "200",
        "description", "the process serves"));
    json_object_set_new (paths, "/readyz", json_pack ("{s:{s:s, s:[], s:{s:{s:s}, s:o}}}",
        "get", "operationId", "gateway.readyz", "security", "responses",
        "200", "description", "every service has a live instance whose database answers",
        "503", s_ref ("NotReady")));
    json_object_set_new (paths, "/metrics", json_pack ("{s:{s:s, s:[], s:{s:{s:s}}}}",
        "get", "operationId", "gateway.metrics", "security", "responses", "200",
        "description", "Prometheus text format"));
    for (size_t i = 0; i < gw_router_size (router); i++) {
        const gw_route_t *route = gw_router_at (router, i);
        if (!route || !route->pattern)
            continue;
        json_t *item = json_object_get (paths, route->pattern);
        if (!item) {
            item = json_object ();
            json_object_set_new (paths, route->pattern, item);
        }
        char verb [8];
        size_t n = 0;
        for (; route->http_method [n] && n < sizeof verb - 1; n++)
            verb [n] = (char) (route->http_method [n] | 0x20);  //  lower case
        verb [n] = 0;
        json_object_set_new (item, verb, s_operation (route));
    }
    json_t *doc = json_pack ("{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o}",
        "openapi", "3.1.0",
        "info", "title", "Tally API", "version", "1",
        "description", "Generated from proto/services/*.json by tally-gateway --openapi.",
        "servers", "url", "/",
        "paths", paths, "components", s_components ());
    if (!doc)
        return NULL;
    char *text = json_dumps (doc, JSON_INDENT (2) | JSON_SORT_KEYS);
    json_decref (doc);
    return text;
}

void
gw_openapi_test (bool verbose)
{
    gw_router_t *router = gw_router_new ();
    const char *decl =
        "{\"service\": \"things\", \"methods\": ["
        " {\"name\": \"things.get\", \"route\": \"GET /api/v1/things/{id}\"},"
        " {\"name\": \"things.create\", \"route\": \"POST /api/v1/things\", \"auth\": false,"
        "  \"fields\": {\"name\": {\"type\": \"string\", \"required\": true, \"max\": 10}}},"
        " {\"name\": \"things.internal\"}]}";
    char errbuf [128];
    assert (gw_router_load (router, decl, strlen (decl), errbuf, sizeof errbuf) == 0);
    char *text = gw_openapi_render (router);
    assert (text);
    json_t *doc = json_loads (text, 0, NULL);
    assert (doc);
    json_t *get = json_object_get (json_object_get (json_object_get (doc, "paths"),
                                                    "/api/v1/things/{id}"), "get");
    assert (strcmp (json_string_value (json_object_get (get, "operationId")), "things/things.get") == 0);
    assert (json_array_size (json_object_get (get, "parameters")) == 1);
    assert (json_object_get (json_object_get (get, "responses"), "401"));
    json_t *post = json_object_get (json_object_get (json_object_get (doc, "paths"),
                                                     "/api/v1/things"), "post");
    json_t *schema = json_object_get (json_object_get (json_object_get (
        json_object_get (post, "requestBody"), "content"), "application/json"), "schema");
    assert (json_integer_value (json_object_get (json_object_get (json_object_get (
        schema, "properties"), "name"), "maxLength")) == 10);
    assert (json_array_size (json_object_get (schema, "required")) == 1);
    assert (!json_object_get (json_object_get (post, "responses"), "401"));
    //  A method without a route is not in the document.
    assert (!strstr (text, "things.internal"));
    json_decref (doc);
    free (text);
    gw_router_destroy (&router);
    if (verbose)
        printf ("(openapi ok) ");
}
