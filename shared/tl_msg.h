//  tl_msg.h — one message of the Tally Mesh Protocol (proto/PROTOCOL.md):
//  the MessagePack envelope that travels, alone in its frame, between
//  gateways and their peers. Decoding is bounded and checks every known
//  key's type against the protocol; encoding writes only the keys set.
#ifndef TL_MSG_H_INCLUDED
#define TL_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

typedef enum {
    TL_MSG_REQUEST = 1,
    TL_MSG_REPLY,
    TL_MSG_READY,
    TL_MSG_HEARTBEAT,
    TL_MSG_DISCONNECT
} tl_msg_kind_t;

//  The envelope's string fields.
typedef enum {
    TL_MSG_ID,          //  request id (request, reply)
    TL_MSG_SERVICE,     //  service name (request, ready)
    TL_MSG_METHOD,      //  method name (request)
    TL_MSG_IDEM,        //  idempotency key (request)
    TL_MSG_TRACE,       //  X-Request-Id (request)
    TL_MSG_INSTANCE,    //  instance id (ready, heartbeat, disconnect)
    TL_MSG_PARENT,      //  id of the request a nested request serves
    TL_MSG_PEER,        //  identity a peer claims on an insecure mesh (ready, request)
    TL_MSG_USER_ID,     //  caller.user_id (request)
    TL_MSG_CALLER,      //  caller.kind (request): user, anonymous, operator,
                        //  gateway or service:<name> (tl_caller.h)
    TL_MSG_USER_TZ,     //  caller.tz (request): the user's IANA time zone
    TL_MSG_STR_FIELDS
} tl_msg_field_t;

typedef struct _tl_msg_t tl_msg_t;

//  Creates an empty message of `kind`. Returns NULL on allocation failure.
tl_msg_t *tl_msg_new (tl_msg_kind_t kind);

//  Destroys the message and nulls the caller's reference. Safe on NULL.
void tl_msg_destroy (tl_msg_t **self_p);

//  Decodes one frame. On success returns 0 and a new message in *msg_p
//  (the caller's). Returns TL_EPROTO for a wrong version or unknown kind,
//  TL_EINVAL for malformed bytes or a missing or mistyped field, TL_ETOOBIG
//  past a bound. Never reads outside `data`.
int tl_msg_decode (const void *data, size_t size, tl_msg_t **msg_p);

//  Encodes the message into a new buffer (*data_p, *size_p, the caller
//  frees it). Returns 0 or TL_ENOMEM.
int tl_msg_encode (const tl_msg_t *self, char **data_p, size_t *size_p);

//  Encodes and sends the message as one frame on a ZeroMQ socket, preceded
//  by the `routing_id` frame when it is not NULL (ROUTER sockets). Never
//  blocks. Returns 0, TL_EBUSY (high water mark), TL_EUNAVAIL (no such
//  peer), TL_EIO, or TL_ETOOBIG when the frame would pass
//  TL_MAX_FRAME_BYTES (nothing is sent: the receiving ZeroMQ would drop the
//  whole connection).
int tl_msg_send (const tl_msg_t *self, void *socket,
                 const void *routing_id, size_t routing_id_size);

tl_msg_kind_t tl_msg_kind (const tl_msg_t *self);
const char *tl_msg_kind_name (tl_msg_kind_t kind);

//  String fields: borrowed, NULL when absent. The setter copies; NULL unsets.
const char *tl_msg_str (const tl_msg_t *self, tl_msg_field_t field);
int tl_msg_set_str (tl_msg_t *self, tl_msg_field_t field, const char *value);

uint64_t tl_msg_deadline (const tl_msg_t *self);       //  ms since epoch, 0 unset
void tl_msg_set_deadline (tl_msg_t *self, uint64_t deadline_ms);
int tl_msg_status (const tl_msg_t *self);               //  0 unset
void tl_msg_set_status (tl_msg_t *self, int status);
int tl_msg_capacity (const tl_msg_t *self);
void tl_msg_set_capacity (tl_msg_t *self, int capacity);
//  db_ok: 1 true, 0 false, -1 absent.
int tl_msg_db_ok (const tl_msg_t *self);
void tl_msg_set_db_ok (tl_msg_t *self, bool ok);
bool tl_msg_idempotent (const tl_msg_t *self);
void tl_msg_set_idempotent (tl_msg_t *self, bool idempotent);

//  A request that must not wait for a service with no live instance
//  (envelope key "nowait"): the gateway answers it 503 `no_instance` at
//  once instead of holding it until an instance comes or the deadline
//  passes. Durable jobs' calls carry it: they are retried with back-off.
bool tl_msg_nowait (const tl_msg_t *self);
void tl_msg_set_nowait (tl_msg_t *self, bool nowait);
//  Slots (PROTOCOL.md §3): a ready's `slot`, the index of the slot that
//  announces itself, -1 when absent (the ready of a link); and `slots`,
//  a link's promise that its requests go to its slots only.
int tl_msg_slot (const tl_msg_t *self);
void tl_msg_set_slot (tl_msg_t *self, int slot);
bool tl_msg_slots (const tl_msg_t *self);
void tl_msg_set_slots (tl_msg_t *self, bool slots);

//  Caller roles (up to TL_MAX_ROLES). Borrowed. clear_caller removes the
//  whole caller (kind, user id, time zone, verified, roles); copy_caller
//  copies `from`'s caller over self's.
size_t tl_msg_roles (const tl_msg_t *self, const char ***roles_p);
int tl_msg_add_role (tl_msg_t *self, const char *role);
void tl_msg_clear_caller (tl_msg_t *self);
//  caller.verified: 1 true, 0 false, -1 absent.
int tl_msg_user_verified (const tl_msg_t *self);
void tl_msg_set_user_verified (tl_msg_t *self, bool verified);
int tl_msg_copy_caller (tl_msg_t *self, const tl_msg_t *from);

//  Params (request) and headers (reply): string maps in insertion order.
//  get returns the value (borrowed) or NULL; add copies both strings.
const char *tl_msg_param (const tl_msg_t *self, const char *name);
int tl_msg_add_param (tl_msg_t *self, const char *name, const char *value);
size_t tl_msg_param_count (const tl_msg_t *self);
void tl_msg_param_at (const tl_msg_t *self, size_t index,
                      const char **name, const char **value);
const char *tl_msg_header (const tl_msg_t *self, const char *name);
int tl_msg_add_header (tl_msg_t *self, const char *name, const char *value);
size_t tl_msg_header_count (const tl_msg_t *self);
void tl_msg_header_at (const tl_msg_t *self, size_t index,
                       const char **name, const char **value);

//  The body. set_body takes a copy of one packed MessagePack value (it is
//  scanned first: returns TL_EINVAL when `mp` is not exactly one value).
//  body() returns the unpacked value, or NULL when there is none; it is
//  owned by the message and unpacked on first use (a decoded message keeps
//  its body packed until then). body_raw() returns the packed bytes
//  (borrowed, or NULL): a decoded message's as they came in its frame.
int tl_msg_set_body (tl_msg_t *self, const void *mp, size_t size);
const msgpack_object *tl_msg_body (tl_msg_t *self);
const char *tl_msg_body_raw (tl_msg_t *self, size_t *size);

//  Returns a deep copy (NULL on allocation failure).
tl_msg_t *tl_msg_dup (tl_msg_t *self);

//  For self-tests of the frame limit: sets a bin body of `size` filler
//  bytes. Returns 0, TL_ENOMEM or TL_ETOOBIG (past 4 GiB).
int tl_msg_set_filler_body (tl_msg_t *self, size_t size);

//  Milliseconds since the Unix epoch, from the real-time clock.
uint64_t tl_msg_now_ms (void);

//  Self-test.
void tl_msg_test (bool verbose);

#endif
