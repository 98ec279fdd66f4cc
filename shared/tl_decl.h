//  tl_decl.h — one service's declaration (proto/services/<name>.json) as
//  its runtime sees it: the methods it must serve and who may call each.
//
//  Callers are named in one vocabulary, shared with the envelope's
//  caller.kind (proto/PROTOCOL.md §2):
//      user            any logged-in user (the session's)
//      role:<role>     a logged-in user with that role (role:admin, …)
//      anonymous       an HTTP request with no session (routes with "auth": false)
//      gateway         a gateway itself (session.check)
//      operator        the operator's tool (tallyctl's key)
//      service:<name>  a service, from its connection's identity; service:* any
//  A method lists its callers in "callers"; a routed method without that
//  key defaults to ["user"] ("auth": true, the default) or ["anonymous"]
//  ("auth": false); a method without a route must list them. The runtime's
//  own jobs.* methods are for the operator; a service that subscribes to
//  events (tl_event.h) also has events.deliver, for any service (the
//  runtime checks that the event is the caller's).
#ifndef TL_DECL_H_INCLUDED
#define TL_DECL_H_INCLUDED
#include "tl_msg.h"

typedef struct _tl_decl_t tl_decl_t;

//  Parses `service`'s declaration out of one declaration file's JSON text.
//  Returns NULL when the file declares another service, or is malformed
//  (then *why, when given, says what is wrong: a static string).
tl_decl_t *tl_decl_parse (const char *json, size_t size, const char *service,
                          const char **why);

//  Calls fn (text, size, origin, arg) for each declaration file of this
//  process: the files of TALLY_PROTO_EXTRA (colon-separated, `origin` their
//  path) first, then the compiled-in proto/services (`origin` the file
//  name) unless TALLY_PROTO_BUILTIN=0. Stops at the first non-zero return,
//  and returns it (TL_ECONFIG, logged, for a file it cannot read).
typedef int (tl_decl_source_fn) (const char *text, size_t size, const char *origin, void *arg);
int tl_decl_sources (tl_decl_source_fn *fn, void *arg);

//  Finds `service`'s declaration among the process's: the files of
//  TALLY_PROTO_EXTRA (colon-separated) first, then the compiled-in
//  proto/services (unless TALLY_PROTO_BUILTIN=0), all read once. Returns it
//  (borrowed, for the life of the process), or NULL, logged, when none
//  declares it or a file is malformed.
const tl_decl_t *tl_decl_find (const char *service);

//  Destroys the declaration and nulls the caller's reference. Safe on NULL.
void tl_decl_destroy (tl_decl_t **self_p);

//  Methods, in declaration order (the runtime's jobs.* included).
size_t tl_decl_size (const tl_decl_t *self);
const char *tl_decl_method_at (const tl_decl_t *self, size_t index);
bool tl_decl_has (const tl_decl_t *self, const char *method);

//  The events the service declares it publishes / subscribes to.
//  Borrowed.
size_t tl_decl_publishes (const tl_decl_t *self, const char *const **events);
size_t tl_decl_subscribes (const tl_decl_t *self, const char *const **events);

//  Every service whose declaration (compiled in, or in TALLY_PROTO_EXTRA)
//  subscribes to `event`: up to `max` names into `services` (borrowed,
//  for the life of the process). Returns how many, or TL_ECONFIG when the
//  declarations cannot be read.
int tl_decl_subscribers (const char *event, const char **services, size_t max);

//  Whether `event` is declared in "publishes" by its service (the one it
//  is named after), among the same declarations.
bool tl_decl_published (const char *event);

//  Whether the caller of `request` (its caller.kind, roles) may call
//  `method`. false for an undeclared method.
bool tl_decl_allows (const tl_decl_t *self, const char *method, const tl_msg_t *request);

//  Whether the caller named by (kind, roles) matches one entry of the
//  vocabulary above.
bool tl_decl_caller_matches (const char *entry, const char *kind,
                             const char *const *roles, size_t nroles);

//  Self-test, run by ctest.
void tl_decl_test (bool verbose);

#endif
