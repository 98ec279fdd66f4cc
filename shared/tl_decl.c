//  tl_decl.c — one service's declaration as its runtime sees it: methods
//  and who may call each (tl_decl.h has the callers' vocabulary).
#include "tl_decl.h"
#include "tl_curve.h"
#include "tl_embed.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

#include <czmq.h>
#include <jansson.h>
#include <pthread.h>

extern const tl_embed_t tally_proto_decls [];

#define S_MAX_CALLERS 16

typedef struct {
    char name [TL_MAX_NAME_LEN + 1];
    char *callers [S_MAX_CALLERS];
    size_t ncallers;
} s_method_t;

#define S_MAX_EVENTS 32

struct _tl_decl_t {
    char *service;
    s_method_t *methods;
    size_t size;
    char *publishes [S_MAX_EVENTS];
    size_t npublishes;
    char *subscribes [S_MAX_EVENTS];
    size_t nsubscribes;
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
    for (size_t i = 0; i < self->npublishes; i++)
        free (self->publishes [i]);
    for (size_t i = 0; i < self->nsubscribes; i++)
        free (self->subscribes [i]);
    free (self->methods);
    free (self->service);
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
    if (streq (entry, "user") || streq (entry, "anonymous") || tl_curve_valid_peer (entry))
        return true;
    return strncmp (entry, "role:", 5) == 0 && entry [5] && strlen (entry + 5) <= TL_MAX_NAME_LEN;
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
    //  "auth": true (the default) is users, false anonymous callers, and
    //  "optional" both (a token sent is checked and its user passed on)
    json_t *auth = json_object_get (entry, "auth");
    bool optional = json_is_string (auth) && streq (json_string_value (auth), "optional");
    if ((optional || !json_is_false (auth)) && s_add_caller (method, "user"))
        return "out of memory";
    if ((optional || json_is_false (auth)) && s_add_caller (method, "anonymous"))
        return "out of memory";
    return NULL;
}

//  An event name: <service>.<name>, [a-z0-9_.] , at most TL_MAX_NAME_LEN.
static bool
s_valid_event (const char *event)
{
    size_t size = strlen (event);
    if (size == 0 || size > TL_MAX_NAME_LEN || !strchr (event, '.') || *event == '.')
        return false;
    for (const char *c = event; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.'))
            return false;
    return true;
}

//  Reads the list `key` of event names into events/count. Returns NULL or
//  why not. A publisher's events start with its name.
static const char *
s_parse_events (json_t *root, const char *key, const char *publisher, char **events,
                size_t *count)
{
    json_t *list = json_object_get (root, key);
    if (!list)
        return NULL;
    if (!json_is_array (list) || json_array_size (list) > S_MAX_EVENTS)
        return "\"publishes\" and \"subscribes\" are lists of at most 32 events";
    size_t i;
    json_t *value;
    json_array_foreach (list, i, value) {
        const char *event = json_string_value (value);
        if (!event || !s_valid_event (event))
            return "an event is named <service>.<name> in [a-z0-9_.]";
        if (publisher && (strncmp (event, publisher, strlen (publisher)) != 0
                          || event [strlen (publisher)] != '.'))
            return "a service publishes only events named after it";
        if (!(events [(*count)++] = strdup (event)))
            return "out of memory";
    }
    return NULL;
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
    if (self) {
        self->methods = calloc (declared + runtime + 1, sizeof (s_method_t));
        self->service = strdup (service);
    }
    if (!self || !self->methods || !self->service) {
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
    if (!*why)
        *why = s_parse_events (root, "publishes", service, self->publishes, &self->npublishes);
    if (!*why)
        *why = s_parse_events (root, "subscribes", NULL, self->subscribes, &self->nsubscribes);
    if (!*why && self->nsubscribes) {
        s_method_t *method = &self->methods [self->size++];
        snprintf (method->name, sizeof method->name, "events.deliver");
        if (s_add_caller (method, "service:*"))
            *why = "out of memory";
    }
    json_decref (root);
    if (*why)
        tl_decl_destroy (&self);
    return self;
}

size_t
tl_decl_publishes (const tl_decl_t *self, const char *const **events)
{
    *events = (const char *const *) self->publishes;
    return self->npublishes;
}

size_t
tl_decl_subscribes (const tl_decl_t *self, const char *const **events)
{
    *events = (const char *const *) self->subscribes;
    return self->nsubscribes;
}

//  Every declaration of the process, read once: the files of
//  TALLY_PROTO_EXTRA first (a test's stand-in replaces a built-in
//  declaration of the same service), then the compiled-in ones (unless
//  TALLY_PROTO_BUILTIN=0). Kept for the life of the process.
#define S_MAX_DECLS 64
static tl_decl_t *s_all [S_MAX_DECLS];
static size_t s_nall;
static int s_all_rc;
static pthread_once_t s_all_once = PTHREAD_ONCE_INIT;

static tl_decl_t *
s_all_find (const char *service)
{
    for (size_t i = 0; i < s_nall; i++)
        if (streq (s_all [i]->service, service))
            return s_all [i];
    return NULL;
}

//  Parses the service of one file's text into s_all, unless a file read
//  before declares it already.
static int
s_all_add (const char *text, size_t size, const char *origin, void *arg)
{
    json_t *root = json_loadb (text, size, 0, NULL);
    const char *name = json_string_value (json_object_get (root, "service"));
    const char *why = name ? NULL : "not a declaration";
    bool known = name && s_all_find (name);
    tl_decl_t *decl = name && !known ? tl_decl_parse (text, size, name, &why) : NULL;
    json_decref (root);
    if (known)
        return 0;
    if (!decl || s_nall == S_MAX_DECLS) {
        tl_log (TL_LOG_ERROR, NULL, "%s: %s", origin, why ? why : "too many declarations");
        tl_decl_destroy (&decl);
        return TL_ECONFIG;
    }
    s_all [s_nall++] = decl;
    return 0;
}

int
tl_decl_sources (tl_decl_source_fn *fn, void *arg)
{
    int rc = 0;
    const char *extra = tl_env ("TALLY_PROTO_EXTRA", NULL);
    char *list = extra ? strdup (extra) : NULL;
    char *save = NULL;
    for (char *path = list ? strtok_r (list, ":", &save) : NULL; path && !rc;
         path = strtok_r (NULL, ":", &save)) {
        zfile_t *file = zfile_new (NULL, path);
        zchunk_t *chunk = file && zfile_input (file) == 0 ? zfile_read (file, 1 << 20, 0) : NULL;
        if (!chunk)
            tl_log (TL_LOG_ERROR, NULL, "%s: cannot read the file", path);
        rc = chunk ? fn ((const char *) zchunk_data (chunk), zchunk_size (chunk), path, arg)
                   : TL_ECONFIG;
        zchunk_destroy (&chunk);
        zfile_destroy (&file);
    }
    free (list);
    bool builtin = tl_env_flag ("TALLY_PROTO_BUILTIN", true);
    for (const tl_embed_t *decl = tally_proto_decls; builtin && decl->name && !rc; decl++)
        rc = fn (decl->data, decl->size, decl->name, arg);
    return rc;
}

static void
s_all_load (void)
{
    s_all_rc = tl_decl_sources (s_all_add, NULL);
}

const tl_decl_t *
tl_decl_find (const char *service)
{
    pthread_once (&s_all_once, s_all_load);
    tl_decl_t *self = s_all_rc ? NULL : s_all_find (service);
    if (!self && !s_all_rc)
        tl_log (TL_LOG_ERROR, NULL, "no declaration of service %s (proto/services)", service);
    return self;
}

int
tl_decl_subscribers (const char *event, const char **services, size_t max)
{
    pthread_once (&s_all_once, s_all_load);
    if (s_all_rc)
        return s_all_rc;
    size_t count = 0;
    for (size_t i = 0; i < s_nall; i++) {
        for (size_t e = 0; e < s_all [i]->nsubscribes && count < max; e++)
            if (streq (s_all [i]->subscribes [e], event)) {
                services [count++] = s_all [i]->service;
                break;
            }
    }
    return (int) count;
}

bool
tl_decl_published (const char *event)
{
    pthread_once (&s_all_once, s_all_load);
    for (size_t i = 0; !s_all_rc && i < s_nall; i++)
        for (size_t e = 0; e < s_all [i]->npublishes; e++)
            if (streq (s_all [i]->publishes [e], event))
                return true;
    return false;
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
s_allows (const tl_decl_t *decl, const char *method, const char *kind, const char *role)
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
        " {\"name\": \"a.both\", \"route\": \"GET /api/v1/b\", \"auth\": \"optional\"},"
        " {\"name\": \"a.staff\", \"route\": \"GET /api/v1/s\", \"callers\": [\"role:admin\"]},"
        " {\"name\": \"a.sync\", \"callers\": [\"service:auth\", \"operator\"]},"
        " {\"name\": \"a.any\", \"callers\": [\"service:*\"]}]}";
    const char *why = NULL;
    tl_decl_t *decl = tl_decl_parse (json, strlen (json), "x", &why);
    assert (decl && !why);
    assert (tl_decl_size (decl) == 9);              //  six, and jobs.*
    assert (tl_decl_has (decl, "jobs.run_due") && !tl_decl_has (decl, "a.nope"));
    assert (s_allows (decl, "a.get", "user", NULL));
    assert (!s_allows (decl, "a.get", "anonymous", NULL));
    assert (!s_allows (decl, "a.get", NULL, NULL));             //  no caller: anonymous
    assert (!s_allows (decl, "a.get", "service:auth", NULL));
    assert (s_allows (decl, "a.open", "anonymous", NULL));
    assert (!s_allows (decl, "a.open", "user", NULL));
    assert (s_allows (decl, "a.both", "user", NULL));
    assert (s_allows (decl, "a.both", "anonymous", NULL));
    assert (!s_allows (decl, "a.both", "service:auth", NULL));
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
s_test_events (void)
{
    const char *json =
        "{\"service\": \"x\", \"publishes\": [\"x.thing.done\"],"
        " \"subscribes\": [\"auth.user.deleted\"],"
        " \"methods\": [{\"name\": \"a.get\", \"route\": \"GET /api/v1/a\"}]}";
    tl_decl_t *decl = tl_decl_parse (json, strlen (json), "x", NULL);
    assert (decl);
    const char *const *events = NULL;
    assert (tl_decl_publishes (decl, &events) == 1 && streq (events [0], "x.thing.done"));
    assert (tl_decl_subscribes (decl, &events) == 1 && streq (events [0], "auth.user.deleted"));
    //  A subscriber has events.deliver, for services
    assert (s_allows (decl, "events.deliver", "service:auth", NULL));
    assert (!s_allows (decl, "events.deliver", "operator", NULL));
    tl_decl_destroy (&decl);
    //  A service publishes only its own events; names are checked
    const char *bad [] = {
        "{\"service\": \"x\", \"publishes\": [\"y.thing\"], \"methods\": []}",
        "{\"service\": \"x\", \"publishes\": [\"xx.thing\"], \"methods\": []}",
        "{\"service\": \"x\", \"subscribes\": [\"Auth.User\"], \"methods\": []}",
        "{\"service\": \"x\", \"subscribes\": [\"nodot\"], \"methods\": []}",
        "{\"service\": \"x\", \"subscribes\": \"auth.user.deleted\", \"methods\": []}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *why = NULL;
        assert (!tl_decl_parse (bad [i], strlen (bad [i]), "x", &why) && why);
    }
    //  The compiled-in declarations: auth's deletions reach the tracker
    //  and the mailer
    const char *services [8];
    int count = tl_decl_subscribers ("auth.user.deleted", services, 8);
    assert (count >= 2);
    bool tracker = false, mailer = false;
    for (int i = 0; i < count; i++) {
        tracker = tracker || streq (services [i], "tracker");
        mailer = mailer || streq (services [i], "mailer");
    }
    assert (tracker && mailer);
    assert (tl_decl_subscribers ("auth.nothing", services, 8) == 0);
}

static void
s_test_builtin (void)
{
    //  Every compiled-in declaration parses, and auth's says who checks sessions
    const tl_decl_t *auth = tl_decl_find ("auth");
    assert (auth && tl_decl_find ("auth") == auth);
    assert (s_allows (auth, "session.check", "gateway", NULL));
    assert (!s_allows (auth, "session.check", "service:tracker", NULL));
    assert (!s_allows (auth, "admin.user.create", "user", "super_admin"));
    assert (s_allows (auth, "admin.user.create", "operator", NULL));
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
    s_test_events ();
    s_test_builtin ();
    if (verbose)
        printf ("(decl ok) ");
}
