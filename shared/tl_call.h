//  tl_call.h — one request being handled by a service: what the handler
//  reads (method, params, body, caller, database) and the reply it builds.
//  A handler never sees HTTP, sockets or the envelope: only this.
#ifndef TL_CALL_H_INCLUDED
#define TL_CALL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

#include "tl_db.h"
#include "tl_msg.h"

typedef struct _tl_call_t tl_call_t;

//  A handler: reads the call and sets its reply (tl_call_reply or
//  tl_call_error). A handler that sets no reply answers 500.
typedef void (tl_handler_fn) (tl_call_t *call);

//  --- What the handler reads -------------------------------------------

const char *tl_call_method (tl_call_t *self);
//  Path or query parameter, borrowed, NULL when absent.
const char *tl_call_param (tl_call_t *self, const char *name);
//  The request body, or NULL when there is none. Owned by the call.
const msgpack_object *tl_call_body (tl_call_t *self);
//  The request body when it is a map (a JSON object). Otherwise answers
//  400 `invalid` with the field "body" and returns NULL. Owned by the call.
const msgpack_object *tl_call_body_map (tl_call_t *self);
//  The caller's user id (set by the gateway after authentication), or NULL.
const char *tl_call_user (tl_call_t *self);
//  Who is calling (tl_decl.h's vocabulary): user, anonymous, operator,
//  gateway or service:<name>. Borrowed; never NULL ("anonymous" when the
//  request says nothing).
const char *tl_call_caller (tl_call_t *self);
bool tl_call_has_role (tl_call_t *self, const char *role);
//  What the session check tells of the user, carried in the caller: the
//  user's IANA time zone (borrowed; "UTC" when the request says nothing)
//  and whether their email address is verified.
const char *tl_call_user_zone (tl_call_t *self);
bool tl_call_user_verified (tl_call_t *self);
//  The request id for logs (X-Request-Id), never NULL.
const char *tl_call_trace (tl_call_t *self);
//  Reads the optional string `name` of `map` (a map of the body; the body
//  itself when NULL) into *out (the caller's; left NULL when absent or
//  null), and tells in *given (may be NULL) whether it was there at all,
//  null included. Answers 400 on `field` (`name` when NULL) and returns
//  false when it is there but not a string of at most `max` bytes without
//  NUL.
bool tl_call_text (tl_call_t *self, const msgpack_object *map, const char *name,
                   const char *field, size_t max, char **out, bool *given);
//  Reads the optional `from` and `to` params (RFC 3339) into ms since the
//  epoch (INT64_MIN / INT64_MAX when absent). Answers 400 and returns
//  false when one is malformed or from > to.
bool tl_call_range (tl_call_t *self, int64_t *from_ms, int64_t *to_ms);
uint64_t tl_call_deadline (tl_call_t *self);
//  The handler thread's database connection (search_path = the service's
//  schema). Borrowed; inside a transaction when the call carries an
//  idempotency key.
tl_db_t *tl_call_db (tl_call_t *self);

//  --- The reply ----------------------------------------------------------

//  Starts a reply with `status` and returns the packer for its body: the
//  handler packs exactly one value (usually a map). Calling it again starts
//  over. Borrowed.
msgpack_packer *tl_call_reply (tl_call_t *self, int status);

//  A reply without a body (204, or 200 with nothing to say).
void tl_call_reply_empty (tl_call_t *self, int status);

//  Adds a reply header (Location, Content-Type, Retry-After...).
void tl_call_header (tl_call_t *self, const char *name, const char *value);

//  An error reply in the shape of API.md: {"error": {"code", "message"}}.
//  Replaces any reply started before.
void tl_call_error (tl_call_t *self, int status, const char *code,
                    const char *format, ...) __attribute__ ((format (printf, 4, 5)));

//  An error reply that says when to try again (429, 503): the same, with
//  Retry-After: `seconds`.
void tl_call_error_retry (tl_call_t *self, int status, int seconds, const char *code,
                          const char *format, ...) __attribute__ ((format (printf, 5, 6)));

//  The reply for a failed database call (`err`, a negative code of
//  tl_db): 504 `timeout` when the database did not answer in time, else 503
//  `database`.
void tl_call_db_error (tl_call_t *self, int err);

//  Runs the prepared statement `name` on the call's database and returns
//  its result (the caller's, PQclear it) when it has exactly one row.
//  Otherwise answers (tl_call_db_error, or 404 `not_found` "no such
//  <noun>") and returns NULL.
PGresult *tl_call_exec_one (tl_call_t *self, const char *name, int nparams,
                            const char *const *values, const char *noun);

//  Runs the prepared statement `name` of a list's page (tl_call_page's
//  after_time, after_id and fetch among `values`) and returns its result
//  (the caller's, PQclear it). Otherwise answers — 400 `invalid` naming
//  the cursor when the database refused its values, tl_call_db_error for
//  anything else — and returns NULL.
PGresult *tl_call_exec_page (tl_call_t *self, const char *name, int nparams,
                             const char *const *values);

//  The same with one offending field: {"error": {…, "fields": {field: why}}}.
void tl_call_field_error (tl_call_t *self, int status, const char *code,
                          const char *field, const char *why);

int tl_call_status (tl_call_t *self);

//  --- Lists (API.md: ?limit= default 50, max 500, and ?cursor=) ------------

//  A page request. A cursor is "<RFC 3339 time with microseconds>_<uuid>":
//  the sort key of the last row of the page before (keyset paging), opaque
//  to clients.
typedef struct {
    long limit;                 //  1..TL_LIST_LIMIT_MAX
    char fetch [24];            //  limit + 1 as text: the query's LIMIT
    const char *after_time;     //  NULL on the first page; else into after_buf
    const char *after_id;       //  likewise
    char after_buf [80];
} tl_page_t;

//  Reads the call's `limit` and `cursor` params into *page. Answers 400
//  (field limit or cursor) and returns false when one is malformed.
bool tl_call_page (tl_call_t *self, tl_page_t *page);

//  Starts the 200 reply of a page, {"items": [...], "next_cursor": ...},
//  for a query that fetched `rows` rows with LIMIT page->fetch: packs the
//  map's head and the items array's head, sets *more when there is a page
//  after this one, and returns how many items the caller packs next (the
//  extra row is not shown). The packer is the call's, borrowed.
int tl_call_page_reply (tl_call_t *self, const tl_page_t *page, int rows, bool *more,
                        msgpack_packer **pk_p);

//  Ends a page's reply: packs "next_cursor", the cursor of the last item
//  shown (its sort time with microseconds, and its id) when `more`, else
//  nil.
void tl_call_page_end (msgpack_packer *pk, bool more, const char *time, const char *id);

//  --- Telling every gateway ----------------------------------------------

//  Tells every gateway `topic` with `body` (one packed MessagePack value of
//  at most TL_BROADCAST_MAX_BODY bytes, or NULL) through
//  tl_service_broadcast, once this call's writes are committed and before
//  its reply leaves (at once outside a transaction; never when the
//  transaction rolls back), waiting up to TL_BROADCAST_TIMEOUT_MS for the
//  gateways' acknowledgements. For caches the gateways keep of this
//  service's data. Returns 0, TL_EINVAL, TL_ETOOBIG or TL_ENOMEM.
int tl_call_broadcast (tl_call_t *self, const char *topic, const void *body, size_t size);

//  The same without waiting for the gateways (tl_service_broadcast_post):
//  for pushes to clients that can catch up on what they miss, so that an
//  absent gateway never slows the call.
int tl_call_broadcast_post (tl_call_t *self, const char *topic, const void *body, size_t size);

//  --- Calling another service --------------------------------------------

//  Calls `service`.`method` through the mesh on behalf of this call's
//  caller: the gateway gives the nested request this call's caller (it is
//  derived from the request in flight, never claimed) and a deadline no
//  later than this call's. `body` is one packed MessagePack value or NULL.
//  Waits for the reply until the deadline. Returns 0 and the reply in
//  *reply_p (the caller's), TL_ETIMEDOUT, or TL_EUNAVAIL outside a service.
int tl_call_call (tl_call_t *self, const char *service, const char *method,
                  const void *body, size_t body_size, tl_msg_t **reply_p);

//  The same for a call whose refusal is the caller's answer: returns the
//  reply (the caller's) when `service` answered 2xx; otherwise answers this
//  call — a 4xx passed on with its code and message, anything else (no
//  answer, 5xx) 503 `unavailable` — and returns NULL. A `service` with no
//  live instance is that 503 at once: the gateway does not hold the
//  request for one to come (`nowait`), since the caller may hold row locks
//  that other writers wait behind.
tl_msg_t *tl_call_ask (tl_call_t *self, const char *service, const char *method,
                       const void *body, size_t body_size);

//  The request as the gateway sent it (for tests and the runtime; a
//  handler reads the accessors above). Borrowed.
tl_msg_t *tl_call_request (tl_call_t *self);

//  Self-test.
void tl_call_test (bool verbose);

#endif
