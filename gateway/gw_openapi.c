//  gw_openapi.c — the OpenAPI 3.1 document, derived from the route table.
#include "gw_openapi.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>

//  The error answers of the API's table (../shared/API.md, Conventions),
//  each a response component that operations refer to.
typedef struct {
    int status;
    const char *name;
    const char *description;
} s_answer_t;

static const s_answer_t s_answers [] = {
    { 400, "BadRequest", "bad input" },
    { 401, "Unauthenticated", "missing or invalid credential" },
    { 403, "Forbidden", "authenticated but not allowed" },
    { 404, "NotFound", "no such resource (or not yours)" },
    { 409, "Conflict", "conflicts with the resource's current state" },
    { 413, "TooLarge", "body too large" },
    { 415, "UnsupportedMediaType", "wrong content type" },
    { 422, "Unprocessable", "valid input that breaks a rule" },
    { 429, "TooManyRequests", "too many attempts; see Retry-After" },
    { 503, "Unavailable", "the service is down or busy; see Retry-After" },
    { 503, "NotReady", "not ready: the body lists what is missing" },
    { 504, "Timeout", "the service did not answer in time" },
};
#define S_ANSWERS (sizeof s_answers / sizeof s_answers [0])

//  One rendering: which response components operations used, so that the
//  document defines those and no others.
typedef struct {
    bool used [S_ANSWERS];
} s_doc_t;

//  {"$ref": "#/components/responses/<name>"} for answer `index`.
static json_t *
s_ref (s_doc_t *doc, size_t index)
{
    char ref [128];
    doc->used [index] = true;
    snprintf (ref, sizeof ref, "#/components/responses/%s", s_answers [index].name);
    return json_pack ("{s:s}", "$ref", ref);
}

//  The same for the answer named `name`.
static json_t *
s_ref_named (s_doc_t *doc, const char *name)
{
    size_t index = 0;
    while (index < S_ANSWERS && strcmp (s_answers [index].name, name) != 0)
        index++;
    assert (index < S_ANSWERS);
    return s_ref (doc, index);
}

//  Adds the answer of `status` (the first of the table with it) to
//  `responses`, once.
static void
s_answer (s_doc_t *doc, json_t *responses, int status)
{
    char key [8];
    snprintf (key, sizeof key, "%d", status);
    if (json_object_get (responses, key))
        return;
    for (size_t index = 0; index < S_ANSWERS; index++)
        if (s_answers [index].status == status) {
            json_object_set_new (responses, key, s_ref (doc, index));
            return;
        }
    assert (false);             //  gw_router_load checks declared statuses
}

//  The JSON Schema of a body from its declared fields. Sets *required when
//  a field is required (then the body is too).
static json_t *
s_body_schema (const json_t *fields, bool *required_p)
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
    *required_p = json_array_size (required) > 0;
    if (*required_p)
        json_object_set_new (schema, "required", required);
    else
        json_decref (required);
    return schema;
}

//  The path parameters of `pattern`, in the order of the template, or NULL
//  when it has none.
static json_t *
s_path_parameters (const char *pattern)
{
    json_t *parameters = json_array ();
    for (const char *p = strchr (pattern, '{'); p; p = strchr (p + 1, '{')) {
        const char *end = strchr (p, '}');
        if (!end)
            break;
        json_t *name = json_stringn (p + 1, (size_t) (end - p - 1));
        json_array_append_new (parameters, json_pack ("{s:o, s:s, s:b, s:{s:s}}",
            "name", name, "in", "path", "required", 1, "schema", "type", "string"));
    }
    if (json_array_size (parameters))
        return parameters;
    json_decref (parameters);
    return NULL;
}

//  The request body of a route that takes one, or NULL.
static json_t *
s_request_body (const gw_route_t *route)
{
    if (route->body == GW_BODY_JSON) {
        bool required = false;
        json_t *schema = route->fields ? s_body_schema (route->fields, &required)
                                       : json_pack ("{s:s}", "type", "object");
        return json_pack ("{s:b, s:{s:{s:o}}}", "required", required,
                          "content", "application/json", "schema", schema);
    }
    if (route->body == GW_BODY_UPLOAD)
        return json_pack ("{s:b, s:{s:{}, s:{}, s:{}}}",
            "required", 1, "content", "image/*", "multipart/form-data", "application/json");
    if (route->body == GW_BODY_STREAM)
        return json_pack ("{s:b, s:{s:{}}}", "required", 1, "content", "text/csv");
    return NULL;
}

//  The answers of a route: success, what the gateway itself answers (400
//  for a bad query or body, 401 without a session on an `auth` route, 404
//  for an unknown id in the path, 413 and 415 for a body), what the
//  declaration says the service answers (`errors`), and 503/504.
static json_t *
s_responses (s_doc_t *doc, const gw_route_t *route, bool has_path_params)
{
    json_t *responses = route->stream
        ? json_pack ("{s:{s:s, s:{s:{s:{s:s}}}}}", "200", "description",
                     "a Server-Sent Event stream (gw_streams.h), held open",
                     "content", "text/event-stream", "schema", "type", "string")
        : json_pack ("{s:{s:s}}", "2XX", "description", "success");
    s_answer (doc, responses, 400);
    if (route->stream)
        s_answer (doc, responses, 429);
    if (route->auth || route->auth_optional)
        s_answer (doc, responses, 401);
    if (has_path_params)
        s_answer (doc, responses, 404);
    if (route->body != GW_BODY_NONE) {
        s_answer (doc, responses, 413);
        s_answer (doc, responses, 415);
    }
    size_t index;
    const json_t *status;
    json_array_foreach (route->errors, index, status)
        s_answer (doc, responses, (int) json_integer_value (status));
    json_object_set_new (responses, "503", s_ref_named (doc, "Unavailable"));
    json_object_set_new (responses, "504", s_ref_named (doc, "Timeout"));
    return responses;
}

static json_t *
s_operation (s_doc_t *doc, const gw_route_t *route)
{
    char id [160];
    snprintf (id, sizeof id, "%s/%s", route->service, route->method);  //  unique
    char fallback [160];
    snprintf (fallback, sizeof fallback, "%s.%s", route->service, route->method);
    json_t *op = json_pack ("{s:s, s:s, s:[s]}", "operationId", id,
        "summary", route->summary ? route->summary
                 : route->description ? route->description : fallback,
        "tags", route->service);
    if (route->description)
        json_object_set_new (op, "description", json_string (route->description));
    json_t *parameters = s_path_parameters (route->pattern);
    json_t *body = s_request_body (route);
    json_object_set_new (op, "responses", s_responses (doc, route, parameters != NULL));
    if (parameters)
        json_object_set_new (op, "parameters", parameters);
    if (body)
        json_object_set_new (op, "requestBody", body);
    if (route->auth)
        json_object_set_new (op, "security", json_pack ("[{s:[]}, {s:[]}]",
                                                        "bearer", "session"));
    else
    if (route->auth_optional)           //  {}: no credential at all will do
        json_object_set_new (op, "security", json_pack ("[{}, {s:[]}, {s:[]}]",
                                                        "bearer", "session"));
    else
        json_object_set_new (op, "security", json_array ());
    return op;
}

//  A gateway endpoint: always answered by the gateway itself, never a 4xx
//  (redocly.yaml's ignore file says so for operation-4xx-response).
static json_t *
s_gateway_operation (const char *id, const char *summary, json_t *responses)
{
    return json_pack ("{s:s, s:s, s:[s], s:[], s:o}", "operationId", id,
                      "summary", summary, "tags", "gateway", "security",
                      "responses", responses);
}

static json_t *
s_components (s_doc_t *doc)
{
    json_t *error = json_pack (
        "{s:s, s:[s], s:{s:{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}, s:{s:s, s:{s:s}}}}}}",
        "type", "object", "required", "error", "properties", "error",
        "type", "object", "required", "code", "message", "properties",
        "code", "type", "string", "message", "type", "string",
        "fields", "type", "object", "additionalProperties", "type", "string");
    json_t *responses = json_object ();
    for (size_t index = 0; index < S_ANSWERS; index++) {
        if (!doc->used [index])
            continue;
        json_t *response = json_pack ("{s:s, s:{s:{s:{s:s}}}}",
            "description", s_answers [index].description, "content", "application/json",
            "schema", "$ref", "#/components/schemas/Error");
        if (s_answers [index].status == 429)
            json_object_set_new (response, "headers", json_pack ("{s:{s:s, s:{s:s}}}",
                "Retry-After", "description", "seconds to wait before trying again",
                "schema", "type", "integer"));
        json_object_set_new (responses, s_answers [index].name, response);
    }
    return json_pack ("{s:{s:o}, s:o, s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}}}",
        "schemas", "Error", error,
        "responses", responses,
        "securitySchemes",
        "bearer", "type", "http", "scheme", "bearer",
        "session", "type", "apiKey", "in", "cookie", "name", "tally_session");
}

//  One tag a service with routes, described by its declaration.
static json_t *
s_tags (gw_router_t *router)
{
    json_t *tags = json_pack ("[{s:s, s:s}]", "name", "gateway", "description",
                              "The gateway's own endpoints: health, readiness, metrics.");
    const char *names [TL_ROUTER_MAX_SERVICES];
    size_t count = gw_router_services (router, names, TL_ROUTER_MAX_SERVICES);
    for (size_t index = 0; index < count && index < TL_ROUTER_MAX_SERVICES; index++) {
        bool routed = false;
        for (size_t at = 0; at < gw_router_size (router) && !routed; at++)
            routed = strcmp (gw_router_at (router, at)->service, names [index]) == 0;
        if (!routed)
            continue;
        const char *about = gw_router_service_description (router, names [index]);
        char fallback [64];
        snprintf (fallback, sizeof fallback, "The %s service.", names [index]);
        json_array_append_new (tags, json_pack ("{s:s, s:s}", "name", names [index],
                                                "description", about ? about : fallback));
    }
    return tags;
}

static json_t *
s_paths (s_doc_t *doc, gw_router_t *router)
{
    json_t *paths = json_object ();
    json_object_set_new (paths, "/healthz", json_pack ("{s:o}", "get", s_gateway_operation (
        "gateway.healthz", "Liveness: 200 while the process serves",
        json_pack ("{s:{s:s}}", "200", "description", "the process serves"))));
    json_object_set_new (paths, "/readyz", json_pack ("{s:o}", "get", s_gateway_operation (
        "gateway.readyz", "Readiness: every service has a live instance and its database answers",
        json_pack ("{s:{s:s}, s:o}", "200",
                   "description", "every service has a live instance whose database answers",
                   "503", s_ref_named (doc, "NotReady")))));
    json_object_set_new (paths, "/metrics", json_pack ("{s:o}", "get", s_gateway_operation (
        "gateway.metrics", "Prometheus metrics: requests, latencies, workers, queues",
        json_pack ("{s:{s:s}}", "200", "description", "Prometheus text format"))));
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
        json_object_set_new (item, verb, s_operation (doc, route));
    }
    return paths;
}

char *
gw_openapi_render (gw_router_t *router)
{
    s_doc_t doc = { { false } };
    json_t *paths = s_paths (&doc, router);
    //  The project grants no licence (it ships none): the document says so.
    json_t *info = json_pack ("{s:s, s:s, s:s, s:{s:s, s:s}}",
        "title", "Tally API", "version", "1",
        "description", "Generated from proto/services/*.json by tally-gateway --openapi.",
        "license", "name", "All rights reserved (no licence granted)",
        "identifier", "LicenseRef-All-Rights-Reserved");
    json_t *doc_json = json_pack ("{s:s, s:o, s:[{s:s, s:s}], s:o, s:o, s:o}",
        "openapi", "3.1.0", "info", info,
        "servers", "url", "/", "description", "the gateway that serves this API",
        "tags", s_tags (router), "paths", paths, "components", s_components (&doc));
    if (!doc_json)
        return NULL;
    char *text = json_dumps (doc_json, JSON_INDENT (2) | JSON_SORT_KEYS);
    json_decref (doc_json);
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
        "  \"summary\": \"Make a thing\", \"errors\": [409, 422],"
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
    //  Summaries: declared, or the method's name; declared errors, and
    //  404 only where the path names something.
    assert (strcmp (json_string_value (json_object_get (post, "summary")), "Make a thing") == 0);
    assert (strcmp (json_string_value (json_object_get (get, "summary")), "things.things.get") == 0);
    assert (json_is_true (json_object_get (json_object_get (post, "requestBody"), "required")));
    json_t *answers = json_object_get (post, "responses");
    assert (json_object_get (answers, "409") && json_object_get (answers, "422"));
    assert (json_object_get (answers, "413") && json_object_get (answers, "415"));
    assert (!json_object_get (answers, "404") && !json_object_get (answers, "403"));
    assert (json_object_get (json_object_get (get, "responses"), "404"));
    assert (!json_object_get (json_object_get (get, "responses"), "413"));
    //  Only the answers used are components; every service with routes a tag.
    json_t *components = json_object_get (json_object_get (doc, "components"), "responses");
    assert (json_object_get (components, "Conflict"));
    assert (!json_object_get (components, "Forbidden"));
    json_t *tags = json_object_get (doc, "tags");
    assert (json_array_size (tags) == 2);
    assert (strcmp (json_string_value (json_object_get (json_array_get (tags, 1), "name")),
                    "things") == 0);
    assert (json_object_get (json_object_get (json_object_get (doc, "info"), "license"), "name"));
    //  A method without a route is not in the document.
    assert (!strstr (text, "things.internal"));
    json_decref (doc);
    free (text);
    gw_router_destroy (&router);
    if (verbose)
        printf ("(openapi ok) ");
}
