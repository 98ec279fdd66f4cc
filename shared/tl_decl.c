//  tl_decl.c — one service's declaration as its runtime sees it: methods
//  and who may call each (tl_decl.h has the callers' vocabulary).
#include "tl_decl.h"
#include "tl_embed.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

#include <czmq.h>
#include <jansson.h>

extern const tl_embed_t tally_proto_decls [];

#define S_MAX_CALLERS 16

typedef struct {
    char name [TL_MAX_NAME_LEN + 1];
    char *callers [S_MAX_CALLERS];
    size_t ncallers;
} s_method_t;

struct _tl_decl_t {
    s_method_t *methods;
    size_t size;
};

//  The runtime's own methods (tl_service.c), for the operator only.
static const char *s_runtime_methods [] = { "jobs.list", "jobs.retry", "jobs.run_due", NULL };

void
tl_decl_destroy (tl_decl_t **self_p)
{
    assert (self_p);
    tl_decl_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        for (size_t c = 0; c < self->methods [i].ncallers; c++)
            free (self->methods [i].callers [c]);
    free (self->methods);
    free (self);
    *self_p = NULL;
}

static int
s_add_caller (s_method_t *method, const char *caller)
{
    if (method->ncallers == S_MAX_CALLERS)
        return TL_ETOOBIG;
    char *copy = strdup (caller);
    if (!copy)
        return TL_ENOMEM;
    method->callers [method->ncallers++] = copy;
    return 0;
}

//  Whether `entry` is a word of the callers' vocabulary.
static bool
s_valid_caller (const char *entry)
{
    if (streq (entry, "user") || streq (entry, "anonymous") || streq (entry, "gateway")
    ||  streq (entry, "operator"))
        return true;
    const char *rest = strncmp (entry, "role:", 5) == 0 ? entry + 5
                     : strncmp (entry, "service:", 8) == 0 ? entry + 8 : NULL;
    return rest && *rest && strlen (rest) <= TL_MAX_NAME_LEN;
}

//  Reads one method entry into `method`. Returns NULL or why not.
static const char *
s_parse_method (json_t *entry, s_method_t *method)
{
    const char *name = json_string_value (json_object_get (entry, "name"));
    if (!name || !*name || strlen (name) > TL_MAX_NAME_LEN)
        return "a method without a valid name";
    snprintf (method->name, sizeof method->name, "%s", name);
    json_t *callers = json_object_get (entry, "callers");
    if (callers) {
        if (!json_is_array (callers) || json_array_size (callers) == 0)
            return "\"callers\" must be a non-empty list";
        size_t i;
        json_t *value;
        json_array_foreach (callers, i, value) {
            const char *caller = json_string_value (value);
            if (!caller || !s_valid_caller (caller))
                return "\"callers\" names an unknown kind of caller";
            if (s_add_caller (method, caller))
                return "too many callers";
        }
        return NULL;
    }
    if (!json_object_get (entry, "route"))
        return "a method without a route must list its \"callers\"";
    json_t *auth = json_object_get (entry, "auth");
    bool needs_session = !json_is_false (auth);
    return s_add_caller (method, needs_session ? "user" : "anonymous") ? "out of memory" : NULL;
}

//  The method called `name` among the first `limit`, or NULL.
static const s_method_t *
s_find (const tl_decl_t *self, const char *name, size_t limit)
{
    for (size_t i = 0; i < limit; i++)
        if (streq (self->methods [i].name, name))
            return &self->methods [i];
    return NULL;
}

tl_decl_t *
tl_decl_parse (const char *text, size_t size, const char *service, const char **why)
{
    const char *dummy;
    why = why ? why : &dummy;
    *why = NULL;
    json_t *root = json_loadb (text, size, 0, NULL);
    const char *name = json_string_value (json_object_get (root, "service"));
    json_t *methods = json_object_get (root, "methods");
    if (!root || !name || !json_is_array (methods)) {
        *why = "not a declaration (service, methods)";
        json_decref (root);
        return NULL;
    }
    if (!streq (name, service)) {
        json_decref (root);
        return NULL;
    }
    size_t declared = json_array_size (methods);
    size_t runtime = sizeof s_runtime_methods / sizeof s_runtime_methods [0] - 1;
    tl_decl_t *self = calloc (1, sizeof *self);
    if (self)
        self->methods = calloc (declared + runtime, sizeof (s_method_t));
    if (!self || !self->methods) {
        *why = "out of memory";
        free (self);
        json_decref (root);
        return NULL;
    }
    for (size_t i = 0; i < declared && !*why; i++) {
        *why = s_parse_method (json_array_get (methods, i), &self->methods [self->size]);
        self->size++;
        if (!*why && s_find (self, self->methods [self->size - 1].name, self->size - 1))
            *why = "a method is declared twice";
    }
    for (size_t i = 0; i < runtime && !*why; i++) {
        s_method_t *method = &self->methods [self->size++];
        snprintf (method->name, sizeof method->name, "%s", s_runtime_methods [i]);
        if (s_add_caller (method, "operator"))
            *why = "out of memory";
    }
    json_decref (root);
    if (*why)
        tl_decl_destroy (&self);
    return self;
}

//  Reads the file at `path` (at most 1 MiB) and parses `service` out of it.
static tl_decl_t *
s_load_file (const char *path, const char *service, bool *failed)
{
    zfile_t *file = zfile_new (NULL, path);
    zchunk_t *chunk = file && zfile_input (file) == 0 ? zfile_read (file, 1 << 20, 0) : NULL;
    const char *why = chunk ? NULL : "cannot read the file";
    tl_decl_t *self = chunk ? tl_decl_parse ((const char *) zchunk_data (chunk),
                                             zchunk_size (chunk), service, &why)
                            : NULL;
    zchunk_destroy (&chunk);
    zfile_destroy (&file);
    if (why) {
        tl_log (TL_LOG_ERROR, NULL, "%s: %s", path, why);
        *failed = true;
    }
    return self;
}

tl_decl_t *
tl_decl_load (const char *service)
{
    bool failed = false;
    tl_decl_t *self = NULL;
    const char *extra = getenv ("TALLY_PROTO_EXTRA");
    char *list = extra && *extra ? strdup (extra) : NULL;
    char *save = NULL;
    for (char *path = list ? strtok_r (list, ":", &save) : NULL; path && !self && !failed;
         path = strtok_r (NULL, ":", &save))
        self = s_load_file (path, service, &failed);
    free (list);
    const char *builtin = getenv ("TALLY_PROTO_BUILTIN");
    bool use_builtin = !builtin || !streq (builtin, "0");
    for (const tl_embed_t *decl = tally_proto_decls; use_builtin && decl->name && !self && !failed;
         decl++) {
        const char *why = NULL;
        self = tl_decl_parse (decl->data, decl->size, service, &why);
        if (why) {
            tl_log (TL_LOG_ERROR, NULL, "proto/services/%s: %s", decl->name, why);
            failed = true;
        }
    }
    if (!self && !failed)
        tl_log (TL_LOG_ERROR, NULL, "no declaration of service %s (proto/services)", service);
    if (failed)
        tl_decl_destroy (&self);
    return self;
}

size_t
tl_decl_size (const tl_decl_t *self)
{
    return self->size;
}

const char *
tl_decl_method_at (const tl_decl_t *self, size_t index)
{
    return index < self->size ? self->methods [index].name : NULL;
}

bool
tl_decl_has (const tl_decl_t *self, const char *method)
{
    return s_find (self, method, self->size) != NULL;
}

bool
tl_decl_caller_matches (const char *entry, const char *kind,
                        const char *const *roles, size_t nroles)
{
    if (!kind)
        kind = "anonymous";         //  a request that says nothing of its caller
    if (strncmp (entry, "role:", 5) == 0) {
        if (!streq (kind, "user"))
            return false;
        for (size_t i = 0; i < nroles; i++)
            if (streq (roles [i], entry + 5))
                return true;
        return false;
    }
    if (streq (entry, "service:*"))
        return strncmp (kind, "service:", 8) == 0 && kind [8];
    return streq (entry, kind);
}

bool
tl_decl_allows (const tl_decl_t *self, const char *method, const tl_msg_t *request)
{
    const s_method_t *m = s_find (self, method, self->size);
    if (!m)
        return false;
    const char **roles = NULL;
    size_t nroles = tl_msg_roles (request, &roles);
    const char *kind = tl_msg_str (request, TL_MSG_CALLER);
    for (size_t i = 0; i < m->ncallers; i++)
        if (tl_decl_caller_matches (m->callers [i], kind, roles, nroles))
            return true;
    return false;
}

//  ---------------------------------------------------------------------
//  Self-test

static tl_msg_t *
s_request_from (const char *kind, const char *role)
{
    tl_msg_t *msg = tl_msg_new (TL_MSG_REQUEST);
    if (kind)
        tl_msg_set_str (msg, TL_MSG_CALLER, kind);
    if (role)
        tl_msg_add_role (msg, role);
    return msg;
}

static bool
s_allows (tl_decl_t *decl, const char *method, const char *kind, const char *role)
{
    tl_msg_t *msg = s_request_from (kind, role);
    bool allowed = tl_decl_allows (decl, method, msg);
    tl_msg_destroy (&msg);
    return allowed;
}

static void
s_test_defaults_and_lists (void)
{
    const char *json =
        "{\"service\": \"x\", \"methods\": ["
        " {\"name\": \"a.get\", \"route\": \"GET /api/v1/a\"},"
        " {\"name\": \"a.open\", \"route\": \"GET /api/v1/o\", \"auth\": false},"
        " {\"name\": \"a.staff\", \"route\": \"GET /api/v1/s\", \"callers\": [\"role:admin\"]},"
        " {\"name\": \"a.sync\", \"callers\": [\"service:auth\", \"operator\"]},"
        " {\"name\": \"a.any\", \"callers\": [\"service:*\"]}]}";
    const char *why = NULL;
    tl_decl_t *decl = tl_decl_parse (json, strlen (json), "x", &why);
    assert (decl && !why);
    assert (tl_decl_size (decl) == 8);              //  five, and jobs.*
    assert (tl_decl_has (decl, "jobs.run_due") && !tl_decl_has (decl, "a.nope"));
    assert (s_allows (decl, "a.get", "user", NULL));
    assert (!s_allows (decl, "a.get", "anonymous", NULL));
    assert (!s_allows (decl, "a.get", NULL, NULL));             //  no caller: anonymous
    assert (!s_allows (decl, "a.get", "service:auth", NULL));
    assert (s_allows (decl, "a.open", "anonymous", NULL));
    assert (!s_allows (decl, "a.open", "user", NULL));
    assert (s_allows (decl, "a.staff", "user", "admin"));
    assert (!s_allows (decl, "a.staff", "user", "super_admin"));
    assert (!s_allows (decl, "a.staff", "service:admin", "admin"));  //  roles are users'
    assert (s_allows (decl, "a.sync", "service:auth", NULL));
    assert (s_allows (decl, "a.sync", "operator", NULL));
    assert (!s_allows (decl, "a.sync", "service:tracker", NULL));
    assert (!s_allows (decl, "a.sync", "user", NULL));
    assert (s_allows (decl, "a.any", "service:tracker", NULL));
    assert (!s_allows (decl, "a.any", "service:", NULL));
    assert (!s_allows (decl, "a.any", "operator", NULL));
    assert (s_allows (decl, "jobs.list", "operator", NULL));
    assert (!s_allows (decl, "jobs.list", "service:x", NULL));
    assert (!s_allows (decl, "a.nope", "operator", NULL));
    tl_decl_destroy (&decl);
    tl_decl_destroy (&decl);
    //  Another service's file is not this one's, and says nothing wrong
    decl = tl_decl_parse (json, strlen (json), "y", &why);
    assert (!decl && !why);
}

static void
s_test_refusals (void)
{
    const char *bad [] = {
        "{\"service\": \"x\", \"methods\": [{\"name\": \"a\"}]}",   //  no route, no callers
        "{\"service\": \"x\", \"methods\": [{\"name\": \"a\", \"callers\": []}]}",
        "{\"service\": \"x\", \"methods\": [{\"name\": \"a\", \"callers\": [\"root\"]}]}",
        "{\"service\": \"x\", \"methods\": [{\"name\": \"a\", \"callers\": [\"role:\"]}]}",
        "{\"service\": \"x\", \"methods\": [{\"name\": \"a\", \"callers\": [\"operator\"]},"
        " {\"name\": \"a\", \"callers\": [\"operator\"]}]}",
        "{\"service\": \"x\"}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *why = NULL;
        tl_decl_t *decl = tl_decl_parse (bad [i], strlen (bad [i]), "x", &why);
        assert (!decl && why);
    }
}

static void
s_test_builtin (void)
{
    //  Every compiled-in declaration parses, and auth's says who checks sessions
    tl_decl_t *auth = tl_decl_load ("auth");
    assert (auth);
    assert (s_allows (auth, "session.check", "gateway", NULL));
    assert (!s_allows (auth, "session.check", "service:tracker", NULL));
    assert (!s_allows (auth, "admin.user.create", "user", "super_admin"));
    assert (s_allows (auth, "admin.user.create", "operator", NULL));
    tl_decl_destroy (&auth);
    for (const tl_embed_t *decl = tally_proto_decls; decl->name; decl++) {
        json_t *root = json_loadb (decl->data, decl->size, 0, NULL);
        const char *name = json_string_value (json_object_get (root, "service"));
        const char *why = NULL;
        tl_decl_t *parsed = name ? tl_decl_parse (decl->data, decl->size, name, &why) : NULL;
        assert (parsed && !why);
        tl_decl_destroy (&parsed);
        json_decref (root);
    }
}

void
tl_decl_test (bool verbose)
{
    s_test_defaults_and_lists ();
    s_test_refusals ();
    s_test_builtin ();
    if (verbose)
        printf ("(decl ok) ");
}
