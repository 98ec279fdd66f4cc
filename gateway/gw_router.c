//  gw_router.c — the gateway's route table (see gw_router.h).
//  A declaration is checked and split into segments when it is loaded;
//  a request path is split and percent-decoded once, on the stack, and
//  compared with each route of the same length. Literal segments win over
//  parameters, leftmost first: each route carries a mask with bit 31 - i
//  set when its segment i is a parameter, and the smallest mask wins. Two
//  routes of one method with the same mask and the same literals would be
//  ambiguous, so gw_router_load refuses the second.
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_error.h"
#include "tl_json.h"
#include "tl_limits.h"
#include "gw_router.h"

#define s_streq(a,b) (strcmp ((a), (b)) == 0)

//  The HTTP methods a route may declare, in the order Allow lists them.
static const char *s_http_methods [] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
#define S_HTTP_METHODS 5
#define S_GET 0

typedef struct {
    const char *text;           //  literal bytes, or the parameter's name
    size_t size;
    bool param;
} s_segment_t;

typedef struct {
    gw_route_t pub;             //  what callers see
    char *service;
    char *method;
    char *pattern;              //  "/api/v1/items/{id}", NULL with no route
    char *split;                //  the pattern, each '/' made a NUL
    int http_index;             //  in s_http_methods, -1 with no route
    int segments;
    uint32_t param_mask;        //  bit 31 - i: segment i is a parameter
    s_segment_t *segment;
    json_t *fields;             //  a reference, or NULL
    json_t *decl;               //  a reference to the declaration (its texts)
} s_route_t;

struct _gw_router_t {
    s_route_t **methods;        //  every declared method, in load order
    size_t method_count;
    s_route_t **routes;         //  those with a route, in load order
    size_t route_count;
    char *services [TL_ROUTER_MAX_SERVICES];
    char *descriptions [TL_ROUTER_MAX_SERVICES];    //  NULL when none
    size_t service_count;
};


//  --------------------------------------------------------------------------
//  Small helpers


static void
s_route_destroy (s_route_t **self_p)
{
    if (*self_p) {
        s_route_t *self = *self_p;
        free (self->service);
        free (self->method);
        free (self->pattern);
        free (self->split);
        free (self->segment);
        json_decref (self->fields);
        json_decref (self->decl);
        free (self);
        *self_p = NULL;
    }
}

//  True when `text` is 1..TL_MAX_NAME_LEN bytes, starts with a-z and goes
//  on with a-z, 0-9 or a character of `more`.

static bool
s_name_valid (const char *text, const char *more)
{
    size_t size = strlen (text);
    if (size == 0 || size > TL_MAX_NAME_LEN || text [0] < 'a' || text [0] > 'z')
        return false;
    for (size_t index = 1; index < size; index++) {
        char c = text [index];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr (more, c)))
            return false;
    }
    return true;
}

//  True for a path parameter's name: [A-Za-z_][A-Za-z0-9_]*, at most
//  TL_MAX_NAME_LEN bytes.

static bool
s_param_name_valid (const char *text, size_t size)
{
    if (size == 0 || size > TL_MAX_NAME_LEN || (text [0] >= '0' && text [0] <= '9'))
        return false;
    for (size_t index = 0; index < size; index++) {
        char c = text [index];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        ||    (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static bool
s_literal_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' || c == '-';
}

static bool
s_dot_segment (const char *text, size_t size)
{
    return (size == 1 && text [0] == '.')
        || (size == 2 && text [0] == '.' && text [1] == '.');
}

//  True when every key of `object` is in the NULL-terminated `allowed`;
//  else sets *unknown to the first key that is not.

static bool
s_keys_known (const json_t *object, const char **allowed, const char **unknown)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) object, key, value) {
        bool known = false;
        for (const char **name = allowed; *name && !known; name++)
            known = s_streq (key, *name);
        if (!known) {
            *unknown = key;
            return false;
        }
    }
    return true;
}


//  --------------------------------------------------------------------------
//  Checking a declaration. Each s_check_* writes what is wrong into `why`
//  and returns TL_EINVAL (or TL_ENOMEM); the caller adds the context.

//  Parses "METHOD /path" into the route.

static int
s_parse_route (s_route_t *route, const char *text, char *why, size_t why_size)
{
    const char *space = strchr (text, ' ');
    if (!space) {
        snprintf (why, why_size, "route must be \"METHOD /path\"");
        return TL_EINVAL;
    }
    route->http_index = -1;
    for (int index = 0; index < S_HTTP_METHODS; index++)
        if (strlen (s_http_methods [index]) == (size_t) (space - text)
        &&  memcmp (s_http_methods [index], text, (size_t) (space - text)) == 0)
            route->http_index = index;
    if (route->http_index < 0) {
        snprintf (why, why_size, "route method must be GET, POST, PUT, PATCH or DELETE");
        return TL_EINVAL;
    }
    const char *pattern = space + 1;
    if (pattern [0] != '/') {
        snprintf (why, why_size, "route path must start with '/'");
        return TL_EINVAL;
    }
    if (strlen (pattern) > TL_HTTP_MAX_URL_LEN) {
        snprintf (why, why_size, "route path is longer than %d bytes",
                  TL_HTTP_MAX_URL_LEN);
        return TL_EINVAL;
    }
    route->pattern = strdup (pattern);
    route->split = strdup (pattern);
    if (!route->pattern || !route->split)
        return TL_ENOMEM;

    s_segment_t segment [TL_HTTP_MAX_PATH_SEGMENTS];
    int count = 0;
    char *cursor = route->split + 1;
    //  "/" alone is the root: no segments.
    while (route->split [1]) {
        char *slash = strchr (cursor, '/');
        size_t size = slash? (size_t) (slash - cursor): strlen (cursor);
        if (slash)
            *slash = 0;
        if (size == 0) {
            snprintf (why, why_size, "route path has an empty segment");
            return TL_EINVAL;
        }
        if (count == TL_HTTP_MAX_PATH_SEGMENTS) {
            snprintf (why, why_size, "route path has more than %d segments",
                      TL_HTTP_MAX_PATH_SEGMENTS);
            return TL_EINVAL;
        }
        s_segment_t *seg = &segment [count];
        if (cursor [0] == '{') {
            if (size < 3 || cursor [size - 1] != '}'
            ||  !s_param_name_valid (cursor + 1, size - 2)) {
                snprintf (why, why_size, "route segment %d must be a literal "
                          "[A-Za-z0-9._~-]+ or a whole {name}", count + 1);
                return TL_EINVAL;
            }
            cursor [size - 1] = 0;
            seg->text = cursor + 1;
            seg->size = size - 2;
            seg->param = true;
            for (int other = 0; other < count; other++)
                if (segment [other].param && segment [other].size == seg->size
                &&  memcmp (segment [other].text, seg->text, seg->size) == 0) {
                    snprintf (why, why_size, "route parameter {%s} appears twice",
                              seg->text);
                    return TL_EINVAL;
                }
            route->param_mask |= 1u << (31 - count);
        }
        else {
            for (size_t index = 0; index < size; index++)
                if (!s_literal_char (cursor [index])) {
                    snprintf (why, why_size, "route segment %d must be a literal "
                              "[A-Za-z0-9._~-]+ or a whole {name}", count + 1);
                    return TL_EINVAL;
                }
            if (s_dot_segment (cursor, size)) {
                snprintf (why, why_size, "route segment %d must not be '.' or '..'",
                          count + 1);
                return TL_EINVAL;
            }
            seg->text = cursor;
            seg->size = size;
            seg->param = false;
        }
        count++;
        if (!slash)
            break;
        cursor = slash + 1;
    }
    route->segments = count;
    if (count) {
        route->segment = (s_segment_t *) malloc (count * sizeof (s_segment_t));
        if (!route->segment)
            return TL_ENOMEM;
        memcpy (route->segment, segment, count * sizeof (s_segment_t));
    }
    route->pub.http_method = s_http_methods [route->http_index];
    route->pub.pattern = route->pattern;
    return 0;
}

//  Checks a `fields` declaration.

static int
s_check_fields (const json_t *fields, char *why, size_t why_size)
{
    static const char *types [] = {
        "string", "integer", "number", "boolean", "object", "array", NULL
    };
    static const char *keys [] = {
        "type", "required", "max", "description", NULL
    };
    if (!json_is_object (fields)) {
        snprintf (why, why_size, "\"fields\" must be an object");
        return TL_EINVAL;
    }
    if (json_object_size (fields) > TL_DECL_MAX_FIELDS) {
        snprintf (why, why_size, "more than %d fields", TL_DECL_MAX_FIELDS);
        return TL_EINVAL;
    }
    const char *name;
    json_t *spec;
    json_object_foreach ((json_t *) fields, name, spec) {
        if (!s_name_valid (name, "_")) {
            snprintf (why, why_size, "field '%.64s' must be named like "
                      "[a-z][a-z0-9_]* (at most %d characters)", name,
                      TL_MAX_NAME_LEN);
            return TL_EINVAL;
        }
        const char *unknown;
        if (!json_is_object (spec)) {
            snprintf (why, why_size, "field '%s' must be an object", name);
            return TL_EINVAL;
        }
        if (!s_keys_known (spec, keys, &unknown)) {
            snprintf (why, why_size, "field '%s': unknown key '%.64s'", name, unknown);
            return TL_EINVAL;
        }
        const char *type = json_string_value (json_object_get (spec, "type"));
        const char **known = types;
        while (type && *known && !s_streq (*known, type))
            known++;
        if (!type || !*known) {
            snprintf (why, why_size, "field '%s': \"type\" must be string, "
                      "integer, number, boolean, object or array", name);
            return TL_EINVAL;
        }
        const json_t *required = json_object_get (spec, "required");
        if (required && !json_is_boolean (required)) {
            snprintf (why, why_size, "field '%s': \"required\" must be true or false",
                      name);
            return TL_EINVAL;
        }
        const json_t *description = json_object_get (spec, "description");
        if (description && !json_is_string (description)) {
            snprintf (why, why_size, "field '%s': \"description\" must be a string",
                      name);
            return TL_EINVAL;
        }
        const json_t *max = json_object_get (spec, "max");
        if (max) {
            if (!s_streq (type, "string") && !s_streq (type, "array")) {
                snprintf (why, why_size, "field '%s': \"max\" applies only to "
                          "strings and arrays", name);
                return TL_EINVAL;
            }
            if (!json_is_integer (max) || json_integer_value (max) < 0
            ||  json_integer_value (max) > INT32_MAX) {
                snprintf (why, why_size, "field '%s': \"max\" must be an integer "
                          "from 0 to %d", name, INT32_MAX);
                return TL_EINVAL;
            }
        }
    }
    return 0;
}

//  Checks an `errors` declaration: distinct statuses of the API's error
//  table that the service itself may answer.

static int
s_check_errors (const json_t *errors, char *why, size_t why_size)
{
    static const int known [] = { 400, 401, 403, 404, 409, 413, 415, 422, 429 };
    const size_t known_count = sizeof known / sizeof known [0];
    bool seen [sizeof known / sizeof known [0]] = { false };
    if (!json_is_array (errors)) {
        snprintf (why, why_size, "\"errors\" must be an array of statuses");
        return TL_EINVAL;
    }
    size_t index;
    const json_t *status;
    json_array_foreach (errors, index, status) {
        size_t which = 0;
        while (which < known_count && (!json_is_integer (status)
                                   ||  json_integer_value (status) != known [which]))
            which++;
        if (which == known_count) {
            snprintf (why, why_size, "\"errors\"[%zu] must be one of 400, 401, 403, "
                      "404, 409, 413, 415, 422, 429", index);
            return TL_EINVAL;
        }
        if (seen [which]) {
            snprintf (why, why_size, "\"errors\": %d listed twice", known [which]);
            return TL_EINVAL;
        }
        seen [which] = true;
    }
    return 0;
}

//  Checks one entry of "methods" (its name already checked) and fills the
//  route from it.

static int
s_check_method (s_route_t *route, const json_t *decl, char *why, size_t why_size)
{
    static const char *keys [] = {
        "name", "route", "auth", "idempotent", "body", "fields", "timeout_ms",
        "credentials", "description", "summary", "callers", "errors", "stream", NULL
    };
    const char *unknown;
    if (!s_keys_known (decl, keys, &unknown)) {
        snprintf (why, why_size, "unknown key '%.64s'", unknown);
        return TL_EINVAL;
    }
    const json_t *value = json_object_get (decl, "route");
    if (value) {
        if (!json_is_string (value)) {
            snprintf (why, why_size, "route must be \"METHOD /path\"");
            return TL_EINVAL;
        }
        int rc = s_parse_route (route, json_string_value (value), why, why_size);
        if (rc)
            return rc;
    }
    else
        route->http_index = -1;

    const char *http = route->pub.http_method;
    bool reads = http && (s_streq (http, "GET") || s_streq (http, "DELETE"));
    route->pub.auth = true;
    route->pub.idempotent = http && (s_streq (http, "GET") || s_streq (http, "PUT")
                                 ||  s_streq (http, "DELETE"));
    route->pub.body = reads? GW_BODY_NONE: GW_BODY_JSON;
    route->pub.timeout_ms = TL_DEFAULT_DEADLINE_MSEC;

    if ((value = json_object_get (decl, "auth"))) {
        if (json_is_string (value) && s_streq (json_string_value (value), "optional")) {
            route->pub.auth = false;
            route->pub.auth_optional = true;
        }
        else
        if (!json_is_boolean (value)) {
            snprintf (why, why_size, "\"auth\" must be true, false or \"optional\"");
            return TL_EINVAL;
        }
        else
            route->pub.auth = json_is_true (value);
    }
    if ((value = json_object_get (decl, "credentials"))) {
        if (!json_is_boolean (value)) {
            snprintf (why, why_size, "\"credentials\" must be true or false");
            return TL_EINVAL;
        }
        //  The session token goes to the service that issues it, no other.
        if (json_is_true (value) && !s_streq (route->pub.service, "auth")) {
            snprintf (why, why_size, "\"credentials\" are for the auth service only");
            return TL_EINVAL;
        }
        route->pub.credentials = json_is_true (value);
    }
    if ((value = json_object_get (decl, "stream"))) {
        if (!json_is_boolean (value)) {
            snprintf (why, why_size, "\"stream\" must be true or false");
            return TL_EINVAL;
        }
        route->pub.stream = json_is_true (value);
        if (route->pub.stream && (!http || !s_streq (http, "GET") || !route->pub.auth)) {
            snprintf (why, why_size, "\"stream\" is for an authenticated GET route");
            return TL_EINVAL;
        }
    }
    if ((value = json_object_get (decl, "idempotent"))) {
        if (!json_is_boolean (value)) {
            snprintf (why, why_size, "\"idempotent\" must be true or false");
            return TL_EINVAL;
        }
        route->pub.idempotent = json_is_true (value);
    }
    if ((value = json_object_get (decl, "body"))) {
        const char *body = json_string_value (value);
        if (body && s_streq (body, "none"))
            route->pub.body = GW_BODY_NONE;
        else
        if (body && s_streq (body, "json"))
            route->pub.body = GW_BODY_JSON;
        else
        if (body && s_streq (body, "upload"))
            route->pub.body = GW_BODY_UPLOAD;
        else
        if (body && s_streq (body, "stream"))
            route->pub.body = GW_BODY_STREAM;
        else {
            snprintf (why, why_size,
                      "\"body\" must be \"none\", \"json\", \"upload\" or \"stream\"");
            return TL_EINVAL;
        }
    }
    if ((value = json_object_get (decl, "timeout_ms"))) {
        if (!json_is_integer (value) || json_integer_value (value) < 1
        ||  json_integer_value (value) > TL_MAX_DEADLINE_MSEC) {
            snprintf (why, why_size, "\"timeout_ms\" must be an integer from 1 to %d",
                      TL_MAX_DEADLINE_MSEC);
            return TL_EINVAL;
        }
        route->pub.timeout_ms = (int) json_integer_value (value);
    }
    if ((value = json_object_get (decl, "fields"))) {
        int rc = s_check_fields (value, why, why_size);
        if (rc)
            return rc;
        if (route->pub.body != GW_BODY_JSON) {
            snprintf (why, why_size, "\"fields\" needs \"body\": \"json\"");
            return TL_EINVAL;
        }
        route->fields = json_incref ((json_t *) value);
        route->pub.fields = route->fields;
    }
    if ((value = json_object_get (decl, "errors"))) {
        int rc = s_check_errors (value, why, why_size);
        if (rc)
            return rc;
    }
    static const char *texts [] = { "description", "summary" };
    for (int index = 0; index < 2; index++) {
        value = json_object_get (decl, texts [index]);
        if (value && !json_is_string (value)) {
            snprintf (why, why_size, "\"%s\" must be a string", texts [index]);
            return TL_EINVAL;
        }
    }
    route->decl = json_incref ((json_t *) decl);
    route->pub.summary = json_string_value (json_object_get (decl, "summary"));
    route->pub.description = json_string_value (json_object_get (decl, "description"));
    route->pub.errors = json_object_get (decl, "errors");
    return 0;
}

//  True when two routes would match exactly the same requests.

static bool
s_same_shape (const s_route_t *one, const s_route_t *two)
{
    if (one->http_index != two->http_index || one->segments != two->segments
    ||  one->param_mask != two->param_mask)
        return false;
    for (int index = 0; index < one->segments; index++) {
        const s_segment_t *a = &one->segment [index];
        const s_segment_t *b = &two->segment [index];
        if (!a->param
        &&  (a->size != b->size || memcmp (a->text, b->text, a->size) != 0))
            return false;
    }
    return true;
}


//  --------------------------------------------------------------------------
//  Creates an empty route table.

gw_router_t *
gw_router_new (void)
{
    gw_router_t *self = (gw_router_t *) calloc (1, sizeof (gw_router_t));
    if (!self)
        return NULL;
    self->methods = (s_route_t **) calloc (TL_ROUTER_MAX_METHODS, sizeof (s_route_t *));
    self->routes = (s_route_t **) calloc (TL_ROUTER_MAX_METHODS, sizeof (s_route_t *));
    if (!self->methods || !self->routes)
        gw_router_destroy (&self);
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys the table and nulls the reference.

void
gw_router_destroy (gw_router_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        gw_router_t *self = *self_p;
        for (size_t index = 0; index < self->method_count; index++)
            s_route_destroy (&self->methods [index]);
        for (size_t index = 0; index < self->service_count; index++) {
            free (self->services [index]);
            free (self->descriptions [index]);
        }
        free (self->methods);
        free (self->routes);
        free (self);
        *self_p = NULL;
    }
}


//  Checks a parsed declaration into `staged` (at most `room` methods).
//  Returns 0 and the count in *staged_count, or a code with errbuf set.

static int
s_load (gw_router_t *self, const json_t *root, s_route_t **staged,
        size_t room, size_t *staged_count, char *errbuf, size_t errsize)
{
    static const char *keys [] = { "service", "description", "methods", "publishes",
                                   "subscribes", NULL };
    const char *unknown;
    char why [256];
    if (!json_is_object (root)) {
        tl_error_format (errbuf, errsize, "declaration: must be a JSON object");
        return TL_EINVAL;
    }
    if (!s_keys_known (root, keys, &unknown)) {
        tl_error_format (errbuf, errsize, "declaration: unknown key '%.64s'", unknown);
        return TL_EINVAL;
    }
    const char *service = json_string_value (json_object_get (root, "service"));
    if (!service || !s_name_valid (service, "_-")) {
        tl_error_format (errbuf, errsize, "declaration: \"service\" must be a name "
                     "[a-z][a-z0-9_-]* of at most %d characters", TL_MAX_NAME_LEN);
        return TL_EINVAL;
    }
    for (size_t index = 0; index < self->service_count; index++)
        if (s_streq (self->services [index], service)) {
            tl_error_format (errbuf, errsize, "service '%s' declared twice", service);
            return TL_EINVAL;
        }
    if (self->service_count == TL_ROUTER_MAX_SERVICES) {
        tl_error_format (errbuf, errsize, "service '%s': more than %d services",
                     service, TL_ROUTER_MAX_SERVICES);
        return TL_ETOOBIG;
    }
    const json_t *description = json_object_get (root, "description");
    if (description && !json_is_string (description)) {
        tl_error_format (errbuf, errsize, "service '%s': \"description\" must be a string",
                     service);
        return TL_EINVAL;
    }
    const json_t *methods = json_object_get (root, "methods");
    if (!json_is_array (methods)) {
        tl_error_format (errbuf, errsize, "service '%s': \"methods\" must be an array",
                     service);
        return TL_EINVAL;
    }
    if (json_array_size (methods) > room) {
        tl_error_format (errbuf, errsize, "service '%s': more than %d methods in all",
                     service, TL_ROUTER_MAX_METHODS);
        return TL_ETOOBIG;
    }
    size_t index;
    const json_t *decl;
    json_array_foreach (methods, index, decl) {
        const char *name = json_string_value (json_object_get (decl, "name"));
        if (!json_is_object (decl) || !name || !s_name_valid (name, "_.")) {
            tl_error_format (errbuf, errsize, "service '%s', methods[%zu]: must be an "
                         "object with a \"name\" [a-z][a-z0-9_.]* of at most %d "
                         "characters", service, index, TL_MAX_NAME_LEN);
            return TL_EINVAL;
        }
        for (size_t other = 0; other < *staged_count; other++)
            if (s_streq (staged [other]->method, name)) {
                tl_error_format (errbuf, errsize, "service '%s': method '%s' declared "
                             "twice", service, name);
                return TL_EINVAL;
            }
        s_route_t *route = (s_route_t *) calloc (1, sizeof (s_route_t));
        if (!route) {
            tl_error_format (errbuf, errsize, "out of memory");
            return TL_ENOMEM;
        }
        staged [(*staged_count)++] = route;
        route->service = strdup (service);
        route->method = strdup (name);
        if (!route->service || !route->method) {
            tl_error_format (errbuf, errsize, "out of memory");
            return TL_ENOMEM;
        }
        route->pub.service = route->service;
        route->pub.method = route->method;
        why [0] = 0;
        int rc = s_check_method (route, decl, why, sizeof (why));
        if (rc) {
            tl_error_format (errbuf, errsize, "service '%s', method '%s': %s",
                         service, name, rc == TL_ENOMEM? "out of memory": why);
            return rc;
        }
        if (route->http_index < 0)
            continue;
        //  Ambiguous with a route loaded before, or one in this file?
        const s_route_t *twin = NULL;
        for (size_t other = 0; other < self->route_count && !twin; other++)
            if (s_same_shape (self->routes [other], route))
                twin = self->routes [other];
        for (size_t other = 0; other + 1 < *staged_count && !twin; other++)
            if (staged [other]->http_index >= 0 && s_same_shape (staged [other], route))
                twin = staged [other];
        if (twin) {
            tl_error_format (errbuf, errsize, "service '%s', method '%s': route %s %s "
                         "declared twice (also %s.%s)", service, name,
                         route->pub.http_method, route->pattern,
                         twin->service, twin->method);
            return TL_EINVAL;
        }
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Loads one declaration file, all or nothing.

int
gw_router_load (gw_router_t *self, const char *json, size_t len,
                char *errbuf, size_t errsize)
{
    assert (self);
    if (errbuf && errsize)
        errbuf [0] = 0;
    if (len > TL_DECL_MAX_BYTES) {
        tl_error_format (errbuf, errsize, "declaration: larger than %ld bytes",
                     (long) TL_DECL_MAX_BYTES);
        return TL_ETOOBIG;
    }
    char why [256];
    int rc;
    json_t *root = tl_json_parse (json, len, why, sizeof (why), &rc);
    if (!root) {
        tl_error_format (errbuf, errsize, "declaration: %s", why);
        return rc;
    }
    size_t room = TL_ROUTER_MAX_METHODS - self->method_count;
    s_route_t **staged = (s_route_t **) calloc (room? room: 1, sizeof (s_route_t *));
    size_t staged_count = 0;
    if (!staged) {
        tl_error_format (errbuf, errsize, "out of memory");
        rc = TL_ENOMEM;
    }
    else
        rc = s_load (self, root, staged, room, &staged_count, errbuf, errsize);
    if (rc == 0) {
        const char *service = json_string_value (json_object_get (root, "service"));
        const char *description = json_string_value (json_object_get (root, "description"));
        self->services [self->service_count] = strdup (service);
        self->descriptions [self->service_count] = description ? strdup (description) : NULL;
        if (!self->services [self->service_count]
        ||  (description && !self->descriptions [self->service_count])) {
            free (self->services [self->service_count]);
            free (self->descriptions [self->service_count]);
            self->services [self->service_count] = NULL;
            self->descriptions [self->service_count] = NULL;
            tl_error_format (errbuf, errsize, "out of memory");
            rc = TL_ENOMEM;
        }
    }
    if (rc == 0) {
        self->service_count++;
        for (size_t index = 0; index < staged_count; index++) {
            self->methods [self->method_count++] = staged [index];
            if (staged [index]->http_index >= 0)
                self->routes [self->route_count++] = staged [index];
        }
    }
    else
    if (staged)
        for (size_t index = 0; index < staged_count; index++)
            s_route_destroy (&staged [index]);
    free (staged);
    json_decref (root);
    return rc;
}


//  --------------------------------------------------------------------------
//  Matching

typedef struct {
    const char *text;
    size_t size;
} s_piece_t;

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Splits and percent-decodes `path` into `piece` (at most
//  TL_HTTP_MAX_PATH_SEGMENTS), decoding into `scratch` (at least
//  TL_HTTP_MAX_URL_LEN bytes). Returns the segment count, or -1 when the
//  path can match nothing.

static int
s_split_path (const char *path, char *scratch, s_piece_t *piece)
{
    if (!path || path [0] != '/')
        return -1;
    size_t size = 0;
    while (size <= TL_HTTP_MAX_URL_LEN && path [size] && path [size] != '?')
        size++;
    if (size > TL_HTTP_MAX_URL_LEN)
        return -1;
    if (size == 1)
        return 0;               //  the root
    int count = 0;
    size_t out = 0;
    size_t index = 1;
    while (true) {
        if (count == TL_HTTP_MAX_PATH_SEGMENTS)
            return -1;
        size_t start = out;
        while (index < size && path [index] != '/') {
            char c = path [index];
            if (c == '%') {
                if (size - index < 3)
                    return -1;
                int high = s_hex (path [index + 1]);
                int low = s_hex (path [index + 2]);
                if (high < 0 || low < 0)
                    return -1;
                c = (char) (high * 16 + low);
                index += 3;
            }
            else
                index++;
            unsigned char byte = (unsigned char) c;
            if (byte < 0x20 || byte == 0x7f)
                return -1;      //  NUL and other control characters
            scratch [out++] = c;
        }
        size_t length = out - start;
        if (length == 0 || s_dot_segment (scratch + start, length)
        ||  !tl_json_utf8_valid (scratch + start, length))
            return -1;
        piece [count].text = scratch + start;
        piece [count].size = length;
        count++;
        if (index == size)
            return count;
        index++;                //  past the '/'
    }
}

static bool
s_route_matches (const s_route_t *route, const s_piece_t *piece, int count)
{
    if (route->segments != count)
        return false;
    for (int index = 0; index < count; index++) {
        const s_segment_t *seg = &route->segment [index];
        if (!seg->param
        &&  (seg->size != piece [index].size
        ||   memcmp (seg->text, piece [index].text, seg->size) != 0))
            return false;
    }
    return true;
}

//  Writes "GET, HEAD, POST, OPTIONS" for the methods in `mask`.

static void
s_write_allow (unsigned mask, char *allow, size_t allow_size)
{
    if (!allow || allow_size == 0)
        return;
    const char *names [S_HTTP_METHODS + 2];
    int count = 0;
    for (int index = 0; index < S_HTTP_METHODS; index++)
        if (mask & (1u << index)) {
            names [count++] = s_http_methods [index];
            if (index == S_GET)
                names [count++] = "HEAD";
        }
    names [count++] = "OPTIONS";
    size_t used = 0;
    allow [0] = 0;
    for (int index = 0; index < count; index++) {
        size_t need = strlen (names [index]) + (used? 2: 0);
        if (used + need + 1 > allow_size)
            break;
        snprintf (allow + used, allow_size - used, "%s%s",
                  used? ", ": "", names [index]);
        used += need;
    }
}


//  --------------------------------------------------------------------------
//  Finds the route for a request.

const gw_route_t *
gw_router_match (gw_router_t *self, const char *http_method, const char *path,
                 gw_params_t *params, char *allow, size_t allow_size, int *status)
{
    assert (self);
    int dummy;
    if (!status)
        status = &dummy;
    if (params)
        memset (params, 0, sizeof (*params));
    if (allow && allow_size)
        allow [0] = 0;

    int wanted = -1;
    if (http_method) {
        if (s_streq (http_method, "HEAD"))
            wanted = S_GET;
        for (int index = 0; index < S_HTTP_METHODS && wanted < 0; index++)
            if (s_streq (http_method, s_http_methods [index]))
                wanted = index;
    }
    char scratch [TL_HTTP_MAX_URL_LEN];
    s_piece_t piece [TL_HTTP_MAX_PATH_SEGMENTS];
    int count = s_split_path (path, scratch, piece);
    if (count < 0) {
        *status = 404;
        return NULL;
    }
    const s_route_t *best = NULL;
    unsigned allowed = 0;
    for (size_t index = 0; index < self->route_count; index++) {
        const s_route_t *route = self->routes [index];
        if (!s_route_matches (route, piece, count))
            continue;
        allowed |= 1u << route->http_index;
        if (route->http_index == wanted
        &&  (!best || route->param_mask < best->param_mask))
            best = route;
    }
    if (!best) {
        *status = allowed? 405: 404;
        if (allowed)
            s_write_allow (allowed, allow, allow_size);
        return NULL;
    }
    if (params) {
        for (int index = 0; index < count; index++) {
            if (!best->segment [index].param)
                continue;
            char *value = (char *) malloc (piece [index].size + 1);
            if (!value) {
                gw_params_reset (params);
                *status = 503;
                return NULL;
            }
            memcpy (value, piece [index].text, piece [index].size);
            value [piece [index].size] = 0;
            params->items [params->count].name = best->segment [index].text;
            params->items [params->count].value = value;
            params->count++;
        }
    }
    *status = 200;
    return &best->pub;
}


//  --------------------------------------------------------------------------
//  Frees the parameter values.

void
gw_params_reset (gw_params_t *p)
{
    assert (p);
    for (int index = 0; index < p->count && index < TL_MAX_PARAMS; index++) {
        free (p->items [index].value);
        p->items [index].value = NULL;
        p->items [index].name = NULL;
    }
    p->count = 0;
}


//  --------------------------------------------------------------------------
//  Returns a parameter's value, or NULL.

const char *
gw_params_get (const gw_params_t *p, const char *name)
{
    assert (p);
    assert (name);
    for (int index = 0; index < p->count && index < TL_MAX_PARAMS; index++)
        if (s_streq (p->items [index].name, name))
            return p->items [index].value;
    return NULL;
}


//  --------------------------------------------------------------------------
//  Number of routes.

size_t
gw_router_size (gw_router_t *self)
{
    assert (self);
    return self->route_count;
}


//  --------------------------------------------------------------------------
//  Route at `index`, or NULL.

const gw_route_t *
gw_router_at (gw_router_t *self, size_t index)
{
    assert (self);
    return index < self->route_count? &self->routes [index]->pub: NULL;
}


//  --------------------------------------------------------------------------
//  Declaration of one method, routed or not.

const gw_route_t *
gw_router_method (gw_router_t *self, const char *service, const char *method)
{
    assert (self);
    if (!service || !method)
        return NULL;
    for (size_t index = 0; index < self->method_count; index++) {
        const s_route_t *route = self->methods [index];
        if (s_streq (route->service, service) && s_streq (route->method, method))
            return &route->pub;
    }
    return NULL;
}


//  --------------------------------------------------------------------------
//  Declared service names.

size_t
gw_router_services (gw_router_t *self, const char **names, size_t max)
{
    assert (self);
    for (size_t index = 0; names && index < max && index < self->service_count; index++)
        names [index] = self->services [index];
    return self->service_count;
}


//  --------------------------------------------------------------------------
//  A declared service's description.

const char *
gw_router_service_description (gw_router_t *self, const char *service)
{
    assert (self);
    for (size_t index = 0; service && index < self->service_count; index++)
        if (s_streq (self->services [index], service))
            return self->descriptions [index];
    return NULL;
}


//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type: assert.h
//  follows NDEBUG afresh at each inclusion.

#undef NDEBUG
#include <assert.h>

static const char *s_test_tracker =
    "{ \"service\": \"tracker\", \"description\": \"Trackers and logs\","
    "  \"methods\": ["
    "    { \"name\": \"trackers.list\", \"route\": \"GET /api/v1/trackers\" },"
    "    { \"name\": \"trackers.create\", \"route\": \"POST /api/v1/trackers\","
    "      \"fields\": { \"name\": {\"type\": \"string\", \"required\": true, \"max\": 100},"
    "                    \"type\": {\"type\": \"string\", \"required\": true} } },"
    "    { \"name\": \"trackers.get\", \"route\": \"GET /api/v1/trackers/{id}\","
    "      \"timeout_ms\": 5000 },"
    "    { \"name\": \"trackers.update\", \"route\": \"PATCH /api/v1/trackers/{id}\" },"
    "    { \"name\": \"trackers.delete\", \"route\": \"DELETE /api/v1/trackers/{id}\" },"
    "    { \"name\": \"trackers.export\", \"route\": \"GET /api/v1/trackers/export\","
    "      \"summary\": \"literal beats parameter\" },"
    "    { \"name\": \"logs.get\", \"route\": \"GET /api/v1/trackers/{id}/logs/{log_id}\" },"
    "    { \"name\": \"logs.csv\", \"route\": \"GET /api/v1/trackers/{id}/logs.csv\" },"
    "    { \"name\": \"logs.import\", \"route\": \"POST /api/v1/trackers/{id}/logs.csv\","
    "      \"body\": \"upload\", \"idempotent\": true },"
    "    { \"name\": \"all.csv\", \"route\": \"GET /api/v1/trackers.csv\" },"
    "    { \"name\": \"x.mine\", \"route\": \"GET /api/v1/{a}/mine\" },"
    "    { \"name\": \"x.any\", \"route\": \"GET /api/v1/{a}/{b}\" },"
    "    { \"name\": \"x.first\", \"route\": \"GET /api/v1/first/{b}\" },"
    "    { \"name\": \"root\", \"route\": \"GET /\", \"auth\": false },"
    "    { \"name\": \"x.public\", \"route\": \"GET /api/v1/public/{id}\", \"auth\": \"optional\" },"
    "    { \"name\": \"internal.sweep\", \"timeout_ms\": 120000 }"
    "  ] }";

static const char *s_test_auth =
    "{ \"service\": \"auth\", \"methods\": ["
    "    { \"name\": \"session.check\", \"auth\": false },"
    "    { \"name\": \"me.delete\", \"route\": \"DELETE /api/v1/me\", \"body\": \"json\","
    "      \"fields\": { \"password\": {\"type\": \"string\", \"required\": true} } },"
    "    { \"name\": \"me.get\", \"route\": \"GET /api/v1/me\" },"
    "    { \"name\": \"me.put\", \"route\": \"PUT /api/v1/me\", \"idempotent\": false },"
    "    { \"name\": \"login\", \"route\": \"POST /api/v1/auth/login\", \"auth\": false }"
    "] }";

//  Matches and checks the outcome; returns the route (or NULL).

static const gw_route_t *
s_expect (gw_router_t *self, const char *http, const char *path,
          int status, const char *method, gw_params_t *params)
{
    char allow [64];
    int got = 0;
    const gw_route_t *route = gw_router_match (self, http, path, params,
                                               allow, sizeof (allow), &got);
    if (got != status
    ||  (method && (!route || !s_streq (route->method, method)))
    ||  (!method && route)) {
        fprintf (stderr, "%s %s: status %d, route %s; expected %d, %s\n",
                 http, path, got, route? route->method: "none", status,
                 method? method: "none");
        assert (false);
    }
    return route;
}

static void
s_expect_allow (gw_router_t *self, const char *http, const char *path,
                const char *expected)
{
    char allow [64];
    int status = 0;
    assert (gw_router_match (self, http, path, NULL, allow, sizeof (allow),
                             &status) == NULL);
    assert (status == 405);
    if (!s_streq (allow, expected)) {
        fprintf (stderr, "%s %s: Allow '%s', expected '%s'\n", http, path,
                 allow, expected);
        assert (false);
    }
}

//  Loads one declaration that must fail with `rc` and a message that
//  contains `part`; the table must not change.

static void
s_expect_bad (gw_router_t *self, const char *json, int rc, const char *part)
{
    size_t routes = gw_router_size (self);
    size_t services = gw_router_services (self, NULL, 0);
    char errbuf [300];
    int got = gw_router_load (self, json, strlen (json), errbuf, sizeof (errbuf));
    if (got != rc || !strstr (errbuf, part)) {
        fprintf (stderr, "declaration %s: rc %d '%s'; expected %d '%s'\n",
                 json, got, errbuf, rc, part);
        assert (false);
    }
    assert (gw_router_size (self) == routes);
    assert (gw_router_services (self, NULL, 0) == services);
}

void
gw_router_test (bool verbose)
{
    gw_router_t *router = gw_router_new ();
    assert (router);
    char errbuf [300];
    int rc = gw_router_load (router, s_test_tracker, strlen (s_test_tracker),
                             errbuf, sizeof (errbuf));
    if (rc)
        fprintf (stderr, "%s\n", errbuf);
    assert (rc == 0);
    assert (gw_router_load (router, s_test_auth, strlen (s_test_auth),
                            errbuf, sizeof (errbuf)) == 0);
    assert (gw_router_size (router) == 19);

    //  Iteration, services, defaults.
    const gw_route_t *route = gw_router_at (router, 0);
    assert (route && s_streq (route->service, "tracker"));
    assert (s_streq (route->method, "trackers.list"));
    assert (s_streq (route->http_method, "GET"));
    assert (s_streq (route->pattern, "/api/v1/trackers"));
    assert (route->auth && route->idempotent && route->body == GW_BODY_NONE);
    assert (route->timeout_ms == TL_DEFAULT_DEADLINE_MSEC && !route->fields);
    assert (gw_router_at (router, 19) == NULL);
    route = gw_router_at (router, 1);
    assert (s_streq (route->method, "trackers.create"));
    assert (!route->idempotent && route->body == GW_BODY_JSON && route->fields);
    assert (json_object_size (route->fields) == 2);
    route = gw_router_at (router, 2);
    assert (route->timeout_ms == 5000);
    route = gw_router_at (router, 8);
    assert (s_streq (route->method, "logs.import"));
    assert (route->body == GW_BODY_UPLOAD && route->idempotent);
    const char *names [4];
    assert (gw_router_services (router, names, 4) == 2);
    assert (s_streq (names [0], "tracker") && s_streq (names [1], "auth"));
    assert (gw_router_services (router, names, 1) == 2);
    route = gw_router_method (router, "auth", "session.check");
    assert (route && !route->http_method && !route->pattern && !route->auth);
    assert (!route->idempotent && route->body == GW_BODY_JSON);
    route = gw_router_method (router, "tracker", "internal.sweep");
    assert (route && route->timeout_ms == 120000);
    route = gw_router_method (router, "auth", "me.delete");
    assert (route && route->body == GW_BODY_JSON && route->idempotent && route->fields);
    route = gw_router_method (router, "auth", "me.put");
    assert (route && !route->idempotent && route->body == GW_BODY_JSON);
    assert (!gw_router_method (router, "auth", "nope"));
    assert (!gw_router_method (router, "tracker", "session.check"));

    //  Matching, parameters, literal over parameter.
    gw_params_t params;
    s_expect (router, "GET", "/api/v1/trackers", 200, "trackers.list", &params);
    assert (params.count == 0);
    s_expect (router, "HEAD", "/api/v1/trackers", 200, "trackers.list", NULL);
    s_expect (router, "POST", "/api/v1/trackers", 200, "trackers.create", NULL);
    s_expect (router, "GET", "/api/v1/trackers/42", 200, "trackers.get", &params);
    assert (params.count == 1);
    assert (s_streq (params.items [0].name, "id"));
    assert (s_streq (params.items [0].value, "42"));
    assert (s_streq (gw_params_get (&params, "id"), "42"));
    assert (gw_params_get (&params, "log_id") == NULL);
    gw_params_reset (&params);
    gw_params_reset (&params);
    s_expect (router, "GET", "/api/v1/trackers/export", 200, "trackers.export", &params);
    assert (params.count == 0);
    s_expect (router, "DELETE", "/api/v1/trackers/export", 200, "trackers.delete", &params);
    assert (s_streq (gw_params_get (&params, "id"), "export"));
    gw_params_reset (&params);
    s_expect (router, "GET", "/api/v1/trackers/7/logs/9?x=1", 200, "logs.get", &params);
    assert (params.count == 2);
    assert (s_streq (gw_params_get (&params, "id"), "7"));
    assert (s_streq (gw_params_get (&params, "log_id"), "9"));
    gw_params_reset (&params);
    s_expect (router, "GET", "/api/v1/trackers/7/logs.csv", 200, "logs.csv", NULL);
    s_expect (router, "POST", "/api/v1/trackers/7/logs.csv", 200, "logs.import", NULL);
    s_expect (router, "GET", "/api/v1/trackers.csv", 200, "all.csv", NULL);
    //  Leftmost literal wins: first/{b} over {a}/mine over {a}/{b}.
    s_expect (router, "GET", "/api/v1/first/mine", 200, "x.first", NULL);
    s_expect (router, "GET", "/api/v1/other/mine", 200, "x.mine", NULL);
    s_expect (router, "GET", "/api/v1/other/yours", 200, "x.any", NULL);
    s_expect (router, "GET", "/", 200, "root", NULL);
    s_expect (router, "GET", "/?q=1", 200, "root", NULL);
    route = s_expect (router, "GET", "/api/v1/public/7", 200, "x.public", &params);
    assert (!route->auth && route->auth_optional);
    gw_params_reset (&params);
    route = s_expect (router, "GET", "/", 200, "root", NULL);
    assert (!route->auth && !route->auth_optional);

    //  Percent-decoding of parameters and literals.
    s_expect (router, "GET", "/api/v1/trackers/a%20b%2Fc%c3%a9", 200, "trackers.get", &params);
    assert (s_streq (params.items [0].value, "a b/c\xC3\xA9"));
    gw_params_reset (&params);
    s_expect (router, "GET", "/api/v1/tr%61ckers/%65xport", 200, "trackers.export", NULL);
    s_expect (router, "GET", "/api/v1/trackers/%00", 404, NULL, &params);
    assert (params.count == 0);
    s_expect (router, "GET", "/api/v1/trackers/a%0Ab", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%zz", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%4", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%C0%80", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%ED%A0%80", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/\xFF", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/..", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/%2e", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/trackers/...", 200, "trackers.get", &params);
    gw_params_reset (&params);

    //  Not the same path: trailing slash, empty segments, no leading slash.
    s_expect (router, "GET", "/api/v1/trackers/", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1//trackers", 404, NULL, NULL);
    s_expect (router, "GET", "//", 404, NULL, NULL);
    s_expect (router, "GET", "", 404, NULL, NULL);
    s_expect (router, "GET", "api/v1/trackers", 404, NULL, NULL);
    s_expect (router, "GET", NULL, 404, NULL, NULL);
    s_expect (router, "GET", "/API/v1/trackers", 404, NULL, NULL);
    s_expect (router, "GET", "/api/v1/nothing/here/at/all", 404, NULL, NULL);

    //  405 with Allow; OPTIONS and unknown methods never match.
    s_expect_allow (router, "PUT", "/api/v1/trackers", "GET, HEAD, POST, OPTIONS");
    s_expect_allow (router, "POST", "/api/v1/trackers/1",
                    "GET, HEAD, PATCH, DELETE, OPTIONS");
    s_expect_allow (router, "POST", "/api/v1/trackers/export",
                    "GET, HEAD, PATCH, DELETE, OPTIONS");
    s_expect_allow (router, "OPTIONS", "/api/v1/me",
                    "GET, HEAD, PUT, DELETE, OPTIONS");
    s_expect_allow (router, "BREW", "/", "GET, HEAD, OPTIONS");
    s_expect_allow (router, "get", "/", "GET, HEAD, OPTIONS");
    s_expect (router, "OPTIONS", "/nowhere", 404, NULL, NULL);
    char small [12];
    int status;
    assert (!gw_router_match (router, "PUT", "/api/v1/trackers", NULL, small,
                              sizeof (small), &status));
    assert (status == 405 && s_streq (small, "GET, HEAD"));
    assert (!gw_router_match (router, "PUT", "/api/v1/trackers", NULL, NULL, 0, NULL));

    //  Long paths: at most TL_HTTP_MAX_PATH_SEGMENTS segments and
    //  TL_HTTP_MAX_URL_LEN bytes.
    char path [TL_HTTP_MAX_URL_LEN + 16];
    gw_router_t *deep = gw_router_new ();
    char decl [600];
    strcpy (decl, "{\"service\": \"deep\", \"methods\": [{\"name\": \"d\", \"route\": \"GET ");
    for (int index = 0; index < TL_HTTP_MAX_PATH_SEGMENTS; index++)
        strcat (decl, index == 5? "/{p}": "/s");
    strcat (decl, "\"}]}");
    assert (gw_router_load (deep, decl, strlen (decl), errbuf, sizeof (errbuf)) == 0);
    path [0] = 0;
    for (int index = 0; index < TL_HTTP_MAX_PATH_SEGMENTS; index++)
        strcat (path, "/s");
    s_expect (deep, "GET", path, 200, "d", &params);
    assert (params.count == 1 && s_streq (params.items [0].value, "s"));
    gw_params_reset (&params);
    strcat (path, "/s");
    s_expect (deep, "GET", path, 404, NULL, NULL);
    strcpy (decl, "{\"service\": \"deeper\", \"methods\": [{\"name\": \"d\", \"route\": \"GET ");
    for (int index = 0; index <= TL_HTTP_MAX_PATH_SEGMENTS; index++)
        strcat (decl, "/s");
    strcat (decl, "\"}]}");
    s_expect_bad (deep, decl, TL_EINVAL, "more than 32 segments");
    gw_router_destroy (&deep);
    memset (path, 'a', sizeof (path));
    path [0] = '/';
    path [TL_HTTP_MAX_URL_LEN + 1] = 0;             //  4097 bytes: too long
    s_expect (router, "GET", path, 404, NULL, NULL);
    path [TL_HTTP_MAX_URL_LEN + 15] = 0;
    s_expect (router, "GET", path, 404, NULL, NULL);
    strcpy (path, "/api/v1/trackers/");
    memset (path + 17, 'x', TL_HTTP_MAX_URL_LEN + 1 - 17);
    path [TL_HTTP_MAX_URL_LEN + 1] = 0;             //  4097 bytes: too long
    s_expect (router, "GET", path, 404, NULL, NULL);
    path [TL_HTTP_MAX_URL_LEN + 1] = '?';           //  the query is not counted
    path [TL_HTTP_MAX_URL_LEN + 2] = 0;
    s_expect (router, "GET", path, 404, NULL, NULL);
    path [TL_HTTP_MAX_URL_LEN] = '?';
    s_expect (router, "GET", path, 200, "trackers.get", &params);
    gw_params_reset (&params);
    path [TL_HTTP_MAX_URL_LEN] = 0;                 //  4096 bytes: fine
    s_expect (router, "GET", path, 200, "trackers.get", &params);
    assert (strlen (params.items [0].value) == TL_HTTP_MAX_URL_LEN - 17);
    gw_params_reset (&params);

    //  Bad declarations: clear messages, table unchanged.
    s_expect_bad (router, "", TL_EINVAL, "declaration: invalid JSON: empty body");
    s_expect_bad (router, "{\"service\": ", TL_EINVAL, "invalid JSON at line 1");
    s_expect_bad (router, "[]", TL_EINVAL, "must be a JSON object");
    s_expect_bad (router, "{\"service\": \"Bad\", \"methods\": []}", TL_EINVAL,
                  "\"service\" must be a name");
    s_expect_bad (router, "{\"methods\": []}", TL_EINVAL, "\"service\" must be a name");
    s_expect_bad (router, "{\"service\": \"tracker\", \"methods\": []}", TL_EINVAL,
                  "service 'tracker' declared twice");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [], \"extra\": 1}",
                  TL_EINVAL, "unknown key 'extra'");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": {}}", TL_EINVAL,
                  "service 'x': \"methods\" must be an array");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"A\"}]}",
                  TL_EINVAL, "service 'x', methods[0]: must be an object with a \"name\"");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [1]}",
                  TL_EINVAL, "service 'x', methods[0]");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\"},"
                  "{\"name\": \"a\"}]}", TL_EINVAL, "service 'x': method 'a' declared twice");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"rout\": \"GET /a\"}]}", TL_EINVAL,
                  "service 'x', method 'a': unknown key 'rout'");
    const char *bad_routes [][2] = {
        { "GET/a", "route must be \\\"METHOD /path\\\"" },
        { "HEAD /a", "route method must be GET, POST" },
        { "get /a", "route method must be" },
        { "GET a", "route path must start with '/'" },
        { "GET  /a", "route path must start with '/'" },
        { "GET /a/", "route path has an empty segment" },
        { "GET /a//b", "route path has an empty segment" },
        { "GET /a b", "route segment 1 must be a literal" },
        { "GET /a/{id", "route segment 2 must be a literal" },
        { "GET /a/{id}x", "route segment 2 must be a literal" },
        { "GET /a/x{id}", "route segment 2 must be a literal" },
        { "GET /a/{}", "route segment 2 must be a literal" },
        { "GET /a/{i-d}", "route segment 2 must be a literal" },
        { "GET /a/%41", "route segment 2 must be a literal" },
        { "GET /a/..", "route segment 2 must not be '.' or '..'" },
        { "GET /a?x=1", "route segment 1 must be a literal" },
        { "GET /{id}/{id}", "route parameter {id} appears twice" },
    };
    for (size_t index = 0; index < sizeof (bad_routes) / sizeof (bad_routes [0]); index++) {
        char text [300];
        snprintf (text, sizeof (text), "{\"service\": \"x\", \"methods\": "
                  "[{\"name\": \"m.n\", \"route\": \"%s\"}]}", bad_routes [index][0]);
        char part [200];
        snprintf (part, sizeof (part), "service 'x', method 'm.n': %s",
                  bad_routes [index][1]);
        //  The expected text holds \" for the JSON; the message has ".
        char *escape;
        while ((escape = strstr (part, "\\\"")))
            memmove (escape, escape + 1, strlen (escape));
        s_expect_bad (router, text, TL_EINVAL, part);
    }
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": \"GET /a\", \"auth\": \"maybe\"}]}", TL_EINVAL,
                  "\"auth\" must be true, false or \"optional\"");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": 5}]}", TL_EINVAL, "route must be");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": \"GET /api/v1/trackers/{tracker}\"}]}", TL_EINVAL,
                  "service 'x', method 'a': route GET /api/v1/trackers/{tracker} "
                  "declared twice (also tracker.trackers.get)");
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": \"POST /b/{x}\"}, {\"name\": \"b\", \"route\": "
                  "\"POST /b/{y}\"}]}", TL_EINVAL,
                  "service 'x', method 'b': route POST /b/{y} declared twice (also x.a)");
    const char *bad_options [][2] = {
        { "\"auth\": 1", "\"auth\" must be true, false or \"optional\"" },
        { "\"idempotent\": \"yes\"", "\"idempotent\" must be true or false" },
        { "\"body\": \"xml\"", "\"body\" must be \"none\", \"json\", \"upload\" or \"stream\"" },
        { "\"body\": null", "\"body\" must be" },
        { "\"timeout_ms\": 0", "\"timeout_ms\" must be an integer from 1 to 120000" },
        { "\"timeout_ms\": 120001", "\"timeout_ms\" must be" },
        { "\"timeout_ms\": 5.0", "\"timeout_ms\" must be" },
        { "\"description\": 1", "\"description\" must be a string" },
        { "\"fields\": []", "\"fields\" must be an object" },
        { "\"fields\": {\"a\": 1}", "field 'a' must be an object" },
        { "\"fields\": {\"a\": {}}", "field 'a': \"type\" must be string" },
        { "\"fields\": {\"a\": {\"type\": \"float\"}}", "field 'a': \"type\" must be" },
        { "\"fields\": {\"a\": {\"type\": \"string\", \"max\": -1}}",
          "field 'a': \"max\" must be an integer from 0" },
        { "\"fields\": {\"a\": {\"type\": \"string\", \"max\": \"5\"}}",
          "field 'a': \"max\" must be an integer" },
        { "\"fields\": {\"a\": {\"type\": \"integer\", \"max\": 5}}",
          "field 'a': \"max\" applies only to strings and arrays" },
        { "\"fields\": {\"a\": {\"type\": \"string\", \"required\": 1}}",
          "field 'a': \"required\" must be true or false" },
        { "\"fields\": {\"a\": {\"type\": \"string\", \"min\": 1}}",
          "field 'a': unknown key 'min'" },
        { "\"fields\": {\"A\": {\"type\": \"string\"}}", "field 'A' must be named" },
        { "\"fields\": {\"a\": {\"type\": \"string\"}}, \"body\": \"upload\"",
          "\"fields\" needs \"body\": \"json\"" },
        { "\"errors\": 409", "\"errors\" must be an array of statuses" },
        { "\"errors\": [409, 500]", "\"errors\"[1] must be one of 400, 401" },
        { "\"errors\": [\"409\"]", "\"errors\"[0] must be one of" },
        { "\"errors\": [418]", "\"errors\"[0] must be one of" },
        { "\"errors\": [422, 409, 422]", "\"errors\": 422 listed twice" },
        { "\"stream\": 1", "\"stream\" must be true or false" },
        { "\"stream\": true", "\"stream\" is for an authenticated GET route" },
    };
    for (size_t index = 0; index < sizeof (bad_options) / sizeof (bad_options [0]); index++) {
        char text [300];
        snprintf (text, sizeof (text), "{\"service\": \"x\", \"methods\": "
                  "[{\"name\": \"m\", \"route\": \"POST /x\", %s}]}",
                  bad_options [index][0]);
        char part [200];
        snprintf (part, sizeof (part), "service 'x', method 'm': %s",
                  bad_options [index][1]);
        s_expect_bad (router, text, TL_EINVAL, part);
    }
    //  GET's default body is none, so fields need an explicit body there.
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": \"GET /x\", \"fields\": {}}]}", TL_EINVAL,
                  "\"fields\" needs \"body\": \"json\"");
    //  A failed load in the middle of a file leaves nothing behind.
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"route\": \"GET /new\"}, {\"name\": \"b\", \"route\": \"GET /\"}]}",
                  TL_EINVAL, "(also tracker.root)");
    s_expect (router, "GET", "/new", 404, NULL, NULL);
    assert (!gw_router_method (router, "x", "a"));
    //  Control characters and non-ASCII in names are not echoed raw.
    s_expect_bad (router, "{\"service\": \"x\", \"methods\": [{\"name\": \"a\","
                  " \"\\u00e9\\n\": 1}]}", TL_EINVAL, "unknown key '?\?\?'");
    //  Duplicate keys in a declaration are a JSON error.
    s_expect_bad (router, "{\"service\": \"x\", \"service\": \"y\", \"methods\": []}",
                  TL_EINVAL, "duplicate");
    //  A service with no methods is fine; it is listed.
    const char *mailer = "{\"service\": \"mailer\", \"methods\": []}";
    assert (gw_router_load (router, mailer, strlen (mailer), errbuf, sizeof (errbuf)) == 0);
    assert (gw_router_services (router, names, 4) == 3);
    assert (s_streq (names [2], "mailer"));
    assert (!gw_router_service_description (router, "mailer"));
    assert (!gw_router_service_description (router, "nobody"));
    //  Texts and declared errors are kept for the OpenAPI document.
    const char *texts = "{\"service\": \"texts\", \"description\": \"About\","
        " \"methods\": [{\"name\": \"a\", \"route\": \"POST /texts\","
        " \"summary\": \"Make one\", \"description\": \"Longer\", \"errors\": [409, 422]},"
        " {\"name\": \"b\", \"route\": \"GET /texts\"}]}";
    assert (gw_router_load (router, texts, strlen (texts), errbuf, sizeof (errbuf)) == 0);
    assert (s_streq (gw_router_service_description (router, "texts"), "About"));
    const gw_route_t *made = gw_router_method (router, "texts", "a");
    assert (made && s_streq (made->summary, "Make one"));
    assert (s_streq (made->description, "Longer"));
    assert (json_array_size (made->errors) == 2);
    assert (json_integer_value (json_array_get (made->errors, 1)) == 422);
    made = gw_router_method (router, "texts", "b");
    assert (made && !made->summary && !made->description && !made->errors);
    gw_router_destroy (&router);
    assert (router == NULL);
    gw_router_destroy (&router);

    //  The limits on methods and services hold.
    router = gw_router_new ();
    char *big = (char *) malloc (TL_ROUTER_MAX_METHODS * 40 + 200);
    assert (big);
    strcpy (big, "{\"service\": \"big\", \"methods\": [");
    size_t used = strlen (big);
    for (int index = 0; index <= TL_ROUTER_MAX_METHODS; index++)
        used += sprintf (big + used, "%s{\"name\": \"m%d\"}", index? ",": "", index);
    strcpy (big + used, "]}");
    s_expect_bad (router, big, TL_ETOOBIG, "more than 1024 methods");
    free (big);
    for (int index = 0; index < TL_ROUTER_MAX_SERVICES; index++) {
        char text [100];
        snprintf (text, sizeof (text), "{\"service\": \"s%d\", \"methods\": []}", index);
        assert (gw_router_load (router, text, strlen (text), NULL, 0) == 0);
    }
    s_expect_bad (router, "{\"service\": \"one-more\", \"methods\": []}", TL_ETOOBIG,
                  "more than 64 services");
    gw_router_destroy (&router);
    if (verbose)
        printf ("(gw_router: load, match, params, 404/405, bad declarations) ");
}
