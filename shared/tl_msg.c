//  tl_msg.c — one message of the Tally Mesh Protocol (proto/PROTOCOL.md).
//  A decoded message copies its fields out of the frame, and its body as
//  the packed bytes that came: the body is unpacked (into the message's own
//  zone) only when someone asks for tl_msg_body.
#include "tl_msg.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>

typedef struct {
    char *name;
    char *value;
} s_pair_t;

struct _tl_msg_t {
    tl_msg_kind_t kind;
    char *str [TL_MSG_STR_FIELDS];
    uint64_t deadline;
    int status;
    int capacity;
    int db_ok;                  //  -1 absent
    bool idempotent;
    bool nowait;
    int verified;               //  caller.verified, -1 absent
    int slot;                   //  ready of a slot: its index + 1; 0 absent
    bool slots;                 //  ready of a link: requests go to its slots
    char *roles [TL_MAX_ROLES];
    size_t nroles;
    s_pair_t params [TL_MAX_PARAMS];
    size_t nparams;
    s_pair_t headers [TL_MAX_HEADERS];
    size_t nheaders;
    //  Body: packed bytes, unpacked object, or both.
    char *body_raw;
    size_t body_size;
    msgpack_zone *zone;         //  holds body_obj, unpacked on first use
    msgpack_object body_obj;
    bool has_body_obj;
};

static const char *s_kind_names [] = {
    NULL, "request", "reply", "ready", "heartbeat", "disconnect"
};

static const char *s_field_keys [TL_MSG_STR_FIELDS] = {
    "id", "service", "method", "idem", "trace", "instance", "parent", "peer", NULL, NULL, NULL
};

static const size_t s_field_max [TL_MSG_STR_FIELDS] = {
    TL_MAX_ID_LEN, TL_MAX_NAME_LEN, TL_MAX_NAME_LEN, TL_MAX_IDEM_KEY_LEN,
    TL_HTTP_MAX_REQUEST_ID, TL_MAX_ID_LEN, TL_MAX_ID_LEN, TL_MAX_ID_LEN, TL_MAX_ID_LEN,
    TL_MAX_ID_LEN, TL_MAX_TIMEZONE_LEN
};

uint64_t
tl_msg_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

tl_msg_t *
tl_msg_new (tl_msg_kind_t kind)
{
    tl_msg_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->kind = kind;
    self->db_ok = -1;
    self->verified = -1;
    return self;
}

static void
s_pairs_free (s_pair_t *pairs, size_t *count)
{
    for (size_t i = 0; i < *count; i++) {
        free (pairs [i].name);
        free (pairs [i].value);
    }
    *count = 0;
}

static void
s_body_clear (tl_msg_t *self)
{
    free (self->body_raw);
    self->body_raw = NULL;
    self->body_size = 0;
    self->has_body_obj = false;
    if (self->zone) {
        msgpack_zone_free (self->zone);
        self->zone = NULL;
    }
}

void
tl_msg_destroy (tl_msg_t **self_p)
{
    assert (self_p);
    tl_msg_t *self = *self_p;
    if (!self)
        return;
    tl_msg_clear_caller (self);
    for (int i = 0; i < TL_MSG_STR_FIELDS; i++)
        free (self->str [i]);
    s_pairs_free (self->params, &self->nparams);
    s_pairs_free (self->headers, &self->nheaders);
    s_body_clear (self);
    free (self);
    *self_p = NULL;
}

tl_msg_kind_t
tl_msg_kind (const tl_msg_t *self)
{
    return self->kind;
}

const char *
tl_msg_kind_name (tl_msg_kind_t kind)
{
    return kind >= TL_MSG_REQUEST && kind <= TL_MSG_DISCONNECT
         ? s_kind_names [kind] : "unknown";
}

const char *
tl_msg_str (const tl_msg_t *self, tl_msg_field_t field)
{
    assert (field < TL_MSG_STR_FIELDS);
    return self->str [field];
}

int
tl_msg_set_str (tl_msg_t *self, tl_msg_field_t field, const char *value)
{
    assert (field < TL_MSG_STR_FIELDS);
    char *copy = NULL;
    if (value && !(copy = strdup (value)))
        return TL_ENOMEM;
    free (self->str [field]);
    self->str [field] = copy;
    return 0;
}

uint64_t tl_msg_deadline (const tl_msg_t *self) { return self->deadline; }
void tl_msg_set_deadline (tl_msg_t *self, uint64_t ms) { self->deadline = ms; }
int tl_msg_status (const tl_msg_t *self) { return self->status; }
void tl_msg_set_status (tl_msg_t *self, int status) { self->status = status; }
int tl_msg_capacity (const tl_msg_t *self) { return self->capacity; }
void tl_msg_set_capacity (tl_msg_t *self, int capacity) { self->capacity = capacity; }
int tl_msg_db_ok (const tl_msg_t *self) { return self->db_ok; }
void tl_msg_set_db_ok (tl_msg_t *self, bool ok) { self->db_ok = ok ? 1 : 0; }
bool tl_msg_idempotent (const tl_msg_t *self) { return self->idempotent; }
void tl_msg_set_idempotent (tl_msg_t *self, bool on) { self->idempotent = on; }
bool tl_msg_nowait (const tl_msg_t *self) { return self->nowait; }
void tl_msg_set_nowait (tl_msg_t *self, bool on) { self->nowait = on; }
int tl_msg_slot (const tl_msg_t *self) { return self->slot - 1; }
void tl_msg_set_slot (tl_msg_t *self, int slot) { self->slot = slot >= 0 ? slot + 1 : 0; }
bool tl_msg_slots (const tl_msg_t *self) { return self->slots; }
void tl_msg_set_slots (tl_msg_t *self, bool slots) { self->slots = slots; }

size_t
tl_msg_roles (const tl_msg_t *self, const char ***roles_p)
{
    *roles_p = (const char **) self->roles;
    return self->nroles;
}

int
tl_msg_add_role (tl_msg_t *self, const char *role)
{
    if (self->nroles == TL_MAX_ROLES)
        return TL_ETOOBIG;
    char *copy = strdup (role);
    if (!copy)
        return TL_ENOMEM;
    self->roles [self->nroles++] = copy;
    return 0;
}

void
tl_msg_clear_caller (tl_msg_t *self)
{
    for (size_t i = 0; i < self->nroles; i++)
        free (self->roles [i]);
    self->nroles = 0;
    free (self->str [TL_MSG_USER_ID]);
    self->str [TL_MSG_USER_ID] = NULL;
    free (self->str [TL_MSG_CALLER]);
    self->str [TL_MSG_CALLER] = NULL;
    free (self->str [TL_MSG_USER_TZ]);
    self->str [TL_MSG_USER_TZ] = NULL;
    self->verified = -1;
}

int tl_msg_user_verified (const tl_msg_t *self) { return self->verified; }
void tl_msg_set_user_verified (tl_msg_t *self, bool on) { self->verified = on ? 1 : 0; }

int
tl_msg_copy_caller (tl_msg_t *self, const tl_msg_t *from)
{
    tl_msg_clear_caller (self);
    int rc = tl_msg_set_str (self, TL_MSG_CALLER, from->str [TL_MSG_CALLER]);
    rc = rc ? rc : tl_msg_set_str (self, TL_MSG_USER_ID, from->str [TL_MSG_USER_ID]);
    rc = rc ? rc : tl_msg_set_str (self, TL_MSG_USER_TZ, from->str [TL_MSG_USER_TZ]);
    self->verified = from->verified;
    for (size_t i = 0; rc == 0 && i < from->nroles; i++)
        rc = tl_msg_add_role (self, from->roles [i]);
    return rc;
}

static const char *
s_pairs_get (const s_pair_t *pairs, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (pairs [i].name, name) == 0)
            return pairs [i].value;
    return NULL;
}

static int
s_pairs_add (s_pair_t *pairs, size_t *count, size_t max,
             const char *name, const char *value)
{
    if (*count == max)
        return TL_ETOOBIG;
    char *n = strdup (name);
    char *v = strdup (value);
    if (!n || !v) {
        free (n);
        free (v);
        return TL_ENOMEM;
    }
    pairs [*count].name = n;
    pairs [*count].value = v;
    (*count)++;
    return 0;
}

const char *
tl_msg_param (const tl_msg_t *self, const char *name)
{
    return s_pairs_get (self->params, self->nparams, name);
}

int
tl_msg_add_param (tl_msg_t *self, const char *name, const char *value)
{
    return s_pairs_add (self->params, &self->nparams, TL_MAX_PARAMS, name, value);
}

size_t tl_msg_param_count (const tl_msg_t *self) { return self->nparams; }

void
tl_msg_param_at (const tl_msg_t *self, size_t index,
                 const char **name, const char **value)
{
    assert (index < self->nparams);
    *name = self->params [index].name;
    *value = self->params [index].value;
}

const char *
tl_msg_header (const tl_msg_t *self, const char *name)
{
    for (size_t i = 0; i < self->nheaders; i++)
        if (strcasecmp (self->headers [i].name, name) == 0)
            return self->headers [i].value;
    return NULL;
}

int
tl_msg_add_header (tl_msg_t *self, const char *name, const char *value)
{
    return s_pairs_add (self->headers, &self->nheaders, TL_MAX_HEADERS, name, value);
}

size_t tl_msg_header_count (const tl_msg_t *self) { return self->nheaders; }

void
tl_msg_header_at (const tl_msg_t *self, size_t index,
                  const char **name, const char **value)
{
    assert (index < self->nheaders);
    *name = self->headers [index].name;
    *value = self->headers [index].value;
}

int
tl_msg_set_body (tl_msg_t *self, const void *mp, size_t size)
{
    size_t used = 0;
    int rc = tl_mp_scan (mp, size, &used);
    if (rc)
        return rc;
    if (used != size)
        return TL_EINVAL;
    char *copy = malloc (size);
    if (!copy)
        return TL_ENOMEM;
    memcpy (copy, mp, size);
    s_body_clear (self);
    self->body_raw = copy;
    self->body_size = size;
    return 0;
}

const msgpack_object *
tl_msg_body (tl_msg_t *self)
{
    if (self->has_body_obj)
        return &self->body_obj;
    if (!self->body_raw)
        return NULL;
    if (!self->zone && !(self->zone = msgpack_zone_new (1024)))
        return NULL;
    if (tl_mp_unpack (self->body_raw, self->body_size, self->zone, &self->body_obj))
        return NULL;            //  cannot happen: scanned when set
    self->has_body_obj = true;
    return &self->body_obj;
}

const char *
tl_msg_body_raw (tl_msg_t *self, size_t *size)
{
    if (!self->body_raw && self->has_body_obj) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        if (msgpack_pack_object (&pk, self->body_obj) != 0) {
            msgpack_sbuffer_destroy (&sbuf);
            *size = 0;
            return NULL;
        }
        self->body_size = sbuf.size;       //  release() zeroes it
        self->body_raw = msgpack_sbuffer_release (&sbuf);
        msgpack_sbuffer_destroy (&sbuf);
    }
    *size = self->body_size;
    return self->body_raw;
}

//  ---------------------------------------------------------------------
//  Decoding

//  Names of services and methods: [a-z][a-z0-9_.-]*, bounded.
static bool
s_valid_name (const char *name)
{
    if (!name || !(*name >= 'a' && *name <= 'z'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
        ||    *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

static int
s_decode_str_map (const msgpack_object *obj, tl_msg_t *self, bool headers)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return TL_EINVAL;
    if (obj->via.map.size > (headers ? TL_MAX_HEADERS : TL_MAX_PARAMS))
        return TL_ETOOBIG;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        char *name = tl_mp_strdup (&obj->via.map.ptr [i].key, TL_MAX_NAME_LEN);
        char *value = tl_mp_strdup (&obj->via.map.ptr [i].val,
                                    headers ? TL_MAX_HEADER_VALUE_LEN
                                            : TL_HTTP_MAX_URL_LEN);
        int rc = name && value ? 0 : TL_EINVAL;
        if (rc == 0)
            rc = headers ? tl_msg_add_header (self, name, value)
                         : tl_msg_add_param (self, name, value);
        free (name);
        free (value);
        if (rc)
            return rc;
    }
    return 0;
}

static int
s_decode_caller (const msgpack_object *obj, tl_msg_t *self)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return TL_EINVAL;
    const msgpack_object *kind = tl_mp_get (obj, "kind");
    if (kind) {
        char *copy = tl_mp_strdup (kind, TL_MAX_ID_LEN);
        if (!copy)
            return TL_EINVAL;
        free (self->str [TL_MSG_CALLER]);
        self->str [TL_MSG_CALLER] = copy;
    }
    const msgpack_object *user = tl_mp_get (obj, "user_id");
    if (user) {
        char *id = tl_mp_strdup (user, TL_MAX_ID_LEN);
        if (!id)
            return TL_EINVAL;
        free (self->str [TL_MSG_USER_ID]);
        self->str [TL_MSG_USER_ID] = id;
    }
    const msgpack_object *tz = tl_mp_get (obj, "tz");
    if (tz) {
        char *zone = tl_mp_strdup (tz, TL_MAX_TIMEZONE_LEN);
        if (!zone)
            return TL_EINVAL;
        free (self->str [TL_MSG_USER_TZ]);
        self->str [TL_MSG_USER_TZ] = zone;
    }
    const msgpack_object *verified = tl_mp_get (obj, "verified");
    if (verified) {
        if (verified->type != MSGPACK_OBJECT_BOOLEAN)
            return TL_EINVAL;
        self->verified = verified->via.boolean ? 1 : 0;
    }
    const msgpack_object *roles = tl_mp_get (obj, "roles");
    if (roles) {
        if (roles->type != MSGPACK_OBJECT_ARRAY)
            return TL_EINVAL;
        if (roles->via.array.size > TL_MAX_ROLES)
            return TL_ETOOBIG;
        for (uint32_t i = 0; i < roles->via.array.size; i++) {
            char *role = tl_mp_strdup (&roles->via.array.ptr [i], TL_MAX_NAME_LEN);
            if (!role)
                return TL_EINVAL;
            self->roles [self->nroles++] = role;
        }
    }
    return 0;
}

//  Reads one key/value of the envelope into self. Unknown keys are ignored.
static int
s_decode_field (tl_msg_t *self, const msgpack_object *key,
                const msgpack_object *val, const msgpack_object *root)
{
    for (int f = 0; f < TL_MSG_STR_FIELDS; f++) {
        if (s_field_keys [f] && tl_mp_str_eq (key, s_field_keys [f])) {
            char *copy = tl_mp_strdup (val, s_field_max [f]);
            if (!copy)
                return val->type == MSGPACK_OBJECT_STR ? TL_ETOOBIG : TL_EINVAL;
            free (self->str [f]);
            self->str [f] = copy;
            return 0;
        }
    }
    uint64_t u = 0;
    if (tl_mp_str_eq (key, "deadline"))
        return tl_mp_uint (val, &self->deadline) ? TL_EINVAL : 0;
    if (tl_mp_str_eq (key, "status")) {
        if (tl_mp_uint (val, &u) || u < 100 || u > 599)
            return TL_EINVAL;
        self->status = (int) u;
        return 0;
    }
    if (tl_mp_str_eq (key, "capacity")) {
        if (tl_mp_uint (val, &u) || u < 1 || u > TL_MAX_CAPACITY)
            return TL_EINVAL;
        self->capacity = (int) u;
        return 0;
    }
    if (tl_mp_str_eq (key, "slot")) {
        if (tl_mp_uint (val, &u) || u >= TL_MAX_CAPACITY)
            return TL_EINVAL;
        self->slot = (int) u + 1;
        return 0;
    }
    if (tl_mp_str_eq (key, "db_ok") || tl_mp_str_eq (key, "idempotent")
    ||  tl_mp_str_eq (key, "slots") || tl_mp_str_eq (key, "nowait")) {
        if (val->type != MSGPACK_OBJECT_BOOLEAN)
            return TL_EINVAL;
        if (tl_mp_str_eq (key, "db_ok"))
            self->db_ok = val->via.boolean ? 1 : 0;
        else
        if (tl_mp_str_eq (key, "slots"))
            self->slots = val->via.boolean;
        else
        if (tl_mp_str_eq (key, "nowait"))
            self->nowait = val->via.boolean;
        else
            self->idempotent = val->via.boolean;
        return 0;
    }
    if (tl_mp_str_eq (key, "caller"))
        return s_decode_caller (val, self);
    if (tl_mp_str_eq (key, "params"))
        return s_decode_str_map (val, self, false);
    if (tl_mp_str_eq (key, "headers"))
        return s_decode_str_map (val, self, true);
    //  "body" never comes here: s_unpack_envelope keeps its bytes
    return 0;
}

//  Checks that the fields each kind needs are present.
static int
s_check_kind (const tl_msg_t *self)
{
    switch (self->kind) {
        case TL_MSG_REQUEST:
            if (!self->str [TL_MSG_ID] || !self->deadline
            ||  !s_valid_name (self->str [TL_MSG_SERVICE])
            ||  !s_valid_name (self->str [TL_MSG_METHOD]))
                return TL_EINVAL;
            return 0;
        case TL_MSG_REPLY:
            return self->str [TL_MSG_ID] && self->status ? 0 : TL_EINVAL;
        case TL_MSG_READY:
            return s_valid_name (self->str [TL_MSG_SERVICE])
                && self->str [TL_MSG_INSTANCE] && self->capacity
                 ? 0 : TL_EINVAL;
        default:
            return 0;
    }
}

//  Unpacks the envelope's root map of `size` bytes at `data` into `zone`,
//  all but the body, whose bytes are copied to self->body_raw as they came
//  (the last body when there are several), to be unpacked only if someone
//  asks for tl_msg_body: a gateway writes most bodies straight to JSON
//  (tl_json_from_mp_bytes) and relays the rest. The objects in *root point
//  into `data`. Returns 0, TL_EINVAL when the frame is no map, or a code of
//  tl_mp_scan (which checks the whole frame first, body included).
static int
s_unpack_envelope (tl_msg_t *self, const char *data, size_t size, msgpack_zone *zone,
                   msgpack_object *root)
{
    size_t used = 0;
    int rc = tl_mp_scan (data, size, &used);
    if (rc)
        return rc;
    if (used != size)
        return TL_EINVAL;       //  trailing bytes
    const unsigned char *p = (const unsigned char *) data;
    uint32_t pairs;
    size_t pos;
    if (p [0] >= 0x80 && p [0] <= 0x8f) {
        pairs = p [0] & 0x0f;
        pos = 1;
    }
    else
    if (p [0] == 0xde) {        //  the scan saw the count's bytes
        pairs = (uint32_t) p [1] << 8 | p [2];
        pos = 3;
    }
    else
    if (p [0] == 0xdf) {
        pairs = (uint32_t) p [1] << 24 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 8 | p [4];
        pos = 5;
    }
    else
        return TL_EINVAL;
    msgpack_object_kv *kvs = pairs
        ? msgpack_zone_malloc (zone, pairs * sizeof (msgpack_object_kv)) : NULL;
    if (pairs && !kvs)
        return TL_ENOMEM;
    uint32_t count = 0;
    const char *body = NULL;
    size_t body_size = 0;
    for (uint32_t i = 0; i < pairs; i++) {
        msgpack_object_kv *kv = &kvs [count];
        size_t key_size = 0, val_size = 0, off = 0;
        //  The scan checked every value: these cannot fail but for memory
        if (tl_mp_scan (data + pos, size - pos, &key_size)
        ||  msgpack_unpack (data + pos, key_size, &off, zone, &kv->key) != MSGPACK_UNPACK_SUCCESS)
            return TL_ENOMEM;
        pos += key_size;
        if (tl_mp_scan (data + pos, size - pos, &val_size))
            return TL_EINVAL;
        if (tl_mp_str_eq (&kv->key, "body")) {
            body = data + pos;
            body_size = val_size;
        }
        else {
            off = 0;
            if (msgpack_unpack (data + pos, val_size, &off, zone, &kv->val)
                != MSGPACK_UNPACK_SUCCESS)
                return TL_ENOMEM;
            count++;
        }
        pos += val_size;
    }
    root->type = MSGPACK_OBJECT_MAP;
    root->via.map.size = count;
    root->via.map.ptr = kvs;
    if (body) {
        self->body_raw = malloc (body_size);
        if (!self->body_raw)
            return TL_ENOMEM;
        memcpy (self->body_raw, body, body_size);
        self->body_size = body_size;
    }
    return 0;
}

int
tl_msg_decode (const void *data, size_t size, tl_msg_t **msg_p)
{
    *msg_p = NULL;
    if (size > TL_MAX_FRAME_BYTES)
        return TL_ETOOBIG;
    tl_msg_t *self = tl_msg_new (TL_MSG_HEARTBEAT);
    if (!self)
        return TL_ENOMEM;
    //  The envelope's objects live until the fields are copied out of them
    msgpack_zone *zone = msgpack_zone_new (1024);
    int rc = TL_ENOMEM;
    if (!zone)
        goto fail;
    msgpack_object root;
    rc = s_unpack_envelope (self, (const char *) data, size, zone, &root);
    if (rc)
        goto fail;
    rc = TL_EINVAL;
    uint64_t version = 0;
    if (tl_mp_uint (tl_mp_get (&root, "v"), &version))
        goto fail;
    rc = TL_EPROTO;
    if (version != TL_PROTOCOL_VERSION)
        goto fail;
    const msgpack_object *kind = tl_mp_get (&root, "kind");
    self->kind = 0;
    for (int k = TL_MSG_REQUEST; k <= TL_MSG_DISCONNECT; k++)
        if (tl_mp_str_eq (kind, s_kind_names [k]))
            self->kind = k;
    if (!self->kind)
        goto fail;
    for (uint32_t i = 0; i < root.via.map.size; i++) {
        const msgpack_object_kv *kv = &root.via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            rc = TL_EINVAL;
            goto fail;
        }
        rc = s_decode_field (self, &kv->key, &kv->val, &root);
        if (rc)
            goto fail;
    }
    rc = s_check_kind (self);
    if (rc)
        goto fail;
    msgpack_zone_free (zone);
    *msg_p = self;
    return 0;
fail:
    if (zone)
        msgpack_zone_free (zone);
    tl_msg_destroy (&self);
    return rc;
}

//  ---------------------------------------------------------------------
//  Encoding

static void
s_pack_pairs (msgpack_packer *pk, const char *key, const s_pair_t *pairs,
              size_t count)
{
    tl_mp_pack_str (pk, key);
    msgpack_pack_map (pk, count);
    for (size_t i = 0; i < count; i++)
        tl_mp_pack_kv (pk, pairs [i].name, pairs [i].value);
}

int
tl_msg_encode (const tl_msg_t *self, char **data_p, size_t *size_p)
{
    tl_msg_t *mut = (tl_msg_t *) self;      //  body_raw may be packed lazily
    size_t body_size = 0;
    const char *body = tl_msg_body_raw (mut, &body_size);
    bool has_caller = self->str [TL_MSG_USER_ID] || self->nroles || self->str [TL_MSG_CALLER]
                   || self->str [TL_MSG_USER_TZ] || self->verified >= 0;

    size_t n = 2;       //  v, kind
    for (int f = 0; f < TL_MSG_STR_FIELDS; f++)
        n += self->str [f] && s_field_keys [f];
    n += !!self->deadline + !!self->status + !!self->capacity
       + (self->db_ok >= 0) + self->idempotent + self->nowait + has_caller + !!self->slot + self->slots
       + !!self->nparams + !!self->nheaders + !!body;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, n);
    tl_mp_pack_str (&pk, "v");
    msgpack_pack_uint32 (&pk, TL_PROTOCOL_VERSION);
    tl_mp_pack_kv (&pk, "kind", tl_msg_kind_name (self->kind));
    for (int f = 0; f < TL_MSG_STR_FIELDS; f++)
        if (self->str [f] && s_field_keys [f])
            tl_mp_pack_kv (&pk, s_field_keys [f], self->str [f]);
    if (self->deadline) {
        tl_mp_pack_str (&pk, "deadline");
        msgpack_pack_uint64 (&pk, self->deadline);
    }
    if (self->status) {
        tl_mp_pack_str (&pk, "status");
        msgpack_pack_uint32 (&pk, (uint32_t) self->status);
    }
    if (self->capacity) {
        tl_mp_pack_str (&pk, "capacity");
        msgpack_pack_uint32 (&pk, (uint32_t) self->capacity);
    }
    if (self->db_ok >= 0) {
        tl_mp_pack_str (&pk, "db_ok");
        if (self->db_ok) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
    }
    if (self->idempotent) {
        tl_mp_pack_str (&pk, "idempotent");
        msgpack_pack_true (&pk);
    }
    if (self->nowait) {
        tl_mp_pack_str (&pk, "nowait");
        msgpack_pack_true (&pk);
    }
    if (self->slot) {
        tl_mp_pack_str (&pk, "slot");
        msgpack_pack_uint32 (&pk, (uint32_t) (self->slot - 1));
    }
    if (self->slots) {
        tl_mp_pack_str (&pk, "slots");
        msgpack_pack_true (&pk);
    }
    if (has_caller) {
        tl_mp_pack_str (&pk, "caller");
        msgpack_pack_map (&pk, 1 + !!self->str [TL_MSG_USER_ID] + !!self->str [TL_MSG_CALLER]
                             + !!self->str [TL_MSG_USER_TZ] + (self->verified >= 0));
        if (self->str [TL_MSG_CALLER])
            tl_mp_pack_kv (&pk, "kind", self->str [TL_MSG_CALLER]);
        if (self->str [TL_MSG_USER_ID])
            tl_mp_pack_kv (&pk, "user_id", self->str [TL_MSG_USER_ID]);
        if (self->str [TL_MSG_USER_TZ])
            tl_mp_pack_kv (&pk, "tz", self->str [TL_MSG_USER_TZ]);
        if (self->verified >= 0) {
            tl_mp_pack_str (&pk, "verified");
            if (self->verified) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
        }
        tl_mp_pack_str (&pk, "roles");
        msgpack_pack_array (&pk, self->nroles);
        for (size_t i = 0; i < self->nroles; i++)
            tl_mp_pack_str (&pk, self->roles [i]);
    }
    if (self->nparams)
        s_pack_pairs (&pk, "params", self->params, self->nparams);
    if (self->nheaders)
        s_pack_pairs (&pk, "headers", self->headers, self->nheaders);
    if (body) {
        tl_mp_pack_str (&pk, "body");
        msgpack_sbuffer_write (&sbuf, body, body_size);
    }
    if (!sbuf.data) {
        msgpack_sbuffer_destroy (&sbuf);
        return TL_ENOMEM;
    }
    *size_p = sbuf.size;
    *data_p = msgpack_sbuffer_release (&sbuf);
    return 0;
}

static void
s_free_frame (void *data, void *hint)
{
    free (data);
}

int
tl_msg_send (const tl_msg_t *self, void *socket,
             const void *routing_id, size_t routing_id_size)
{
    char *data = NULL;
    size_t size = 0;
    int rc = tl_msg_encode (self, &data, &size);
    if (rc)
        return rc;
    if (size > (size_t) TL_MAX_FRAME_BYTES) {
        free (data);
        return TL_ETOOBIG;
    }
    if (routing_id
    &&  zmq_send (socket, routing_id, routing_id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        free (data);
        return errno == EAGAIN ? TL_EBUSY
             : errno == EHOSTUNREACH ? TL_EUNAVAIL : TL_EIO;
    }
    zmq_msg_t frame;
    if (zmq_msg_init_data (&frame, data, size, s_free_frame, NULL)) {
        free (data);
        return TL_ENOMEM;
    }
    if (zmq_msg_send (&frame, socket, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close (&frame);
        return err == EAGAIN ? TL_EBUSY : err == EHOSTUNREACH ? TL_EUNAVAIL : TL_EIO;
    }
    return 0;
}

tl_msg_t *
tl_msg_dup (tl_msg_t *self)
{
    char *data = NULL;
    size_t size = 0;
    if (tl_msg_encode (self, &data, &size))
        return NULL;
    tl_msg_t *copy = NULL;
    tl_msg_decode (data, size, &copy);
    free (data);
    return copy;
}

int
tl_msg_set_filler_body (tl_msg_t *self, size_t size)
{
    if (size > UINT32_MAX)
        return TL_ETOOBIG;
    char *mp = malloc (size + 5);
    if (!mp)
        return TL_ENOMEM;
    mp [0] = (char) 0xc6;                   //  bin 32
    mp [1] = (char) (size >> 24); mp [2] = (char) (size >> 16);
    mp [3] = (char) (size >> 8); mp [4] = (char) size;
    memset (mp + 5, 'x', size);
    int rc = tl_msg_set_body (self, mp, size + 5);
    free (mp);
    return rc;
}

//  ---------------------------------------------------------------------
//  Self-test

void
tl_msg_test (bool verbose)
{
    //  A full request round-trips.
    tl_msg_t *req = tl_msg_new (TL_MSG_REQUEST);
    assert (req);
    tl_msg_set_str (req, TL_MSG_ID, "r1");
    tl_msg_set_str (req, TL_MSG_SERVICE, "tracker");
    tl_msg_set_str (req, TL_MSG_METHOD, "logs.list");
    tl_msg_set_str (req, TL_MSG_IDEM, "key-1");
    tl_msg_set_str (req, TL_MSG_USER_ID, "u-42");
    tl_msg_set_str (req, TL_MSG_USER_TZ, "Europe/Paris");
    tl_msg_set_user_verified (req, true);
    tl_msg_add_role (req, "admin");
    tl_msg_add_param (req, "id", "abc");
    tl_msg_set_deadline (req, 1700000000000ULL);
    tl_msg_set_idempotent (req, true);
    tl_msg_set_nowait (req, true);
    assert (tl_msg_set_body (req, "\x81\xa1" "a\x01", 4) == 0);
    assert (tl_msg_set_body (req, "\x81\xa1" "a", 3) == TL_EINVAL);

    char *data = NULL;
    size_t size = 0;
    assert (tl_msg_encode (req, &data, &size) == 0);
    tl_msg_t *back = NULL;
    assert (tl_msg_decode (data, size, &back) == 0);
    assert (tl_msg_kind (back) == TL_MSG_REQUEST);
    assert (streq (tl_msg_str (back, TL_MSG_METHOD), "logs.list"));
    assert (streq (tl_msg_str (back, TL_MSG_USER_ID), "u-42"));
    assert (streq (tl_msg_str (back, TL_MSG_USER_TZ), "Europe/Paris"));
    assert (tl_msg_user_verified (back) == 1);
    tl_msg_t *caller = tl_msg_new (TL_MSG_REQUEST);
    assert (caller && tl_msg_copy_caller (caller, back) == 0);
    assert (streq (tl_msg_str (caller, TL_MSG_USER_TZ), "Europe/Paris"));
    assert (tl_msg_user_verified (caller) == 1);
    tl_msg_clear_caller (caller);
    assert (!tl_msg_str (caller, TL_MSG_USER_TZ) && tl_msg_user_verified (caller) == -1);
    tl_msg_destroy (&caller);
    assert (streq (tl_msg_param (back, "id"), "abc"));
    assert (tl_msg_deadline (back) == 1700000000000ULL);
    assert (tl_msg_idempotent (back) && tl_msg_nowait (back));
    const char **roles = NULL;
    assert (tl_msg_roles (back, &roles) == 1 && streq (roles [0], "admin"));
    const msgpack_object *body = tl_msg_body (back);
    assert (body && body->type == MSGPACK_OBJECT_MAP);
    uint64_t a = 0;
    assert (tl_mp_uint (tl_mp_get (body, "a"), &a) == 0 && a == 1);
    tl_msg_t *copy = tl_msg_dup (back);
    assert (copy && streq (tl_msg_str (copy, TL_MSG_IDEM), "key-1"));
    tl_msg_destroy (&copy);
    tl_msg_destroy (&back);

    //  Every strict prefix of a valid frame is refused, never crashes.
    for (size_t cut = 0; cut < size; cut++) {
        assert (tl_msg_decode (data, cut, &back) != 0);
        assert (back == NULL);
    }
    free (data);
    tl_msg_destroy (&req);
    assert (req == NULL);
    tl_msg_destroy (&req);      //  idempotent

    //  A request without a deadline is refused; so is version 2.
    tl_msg_t *bad = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (bad, TL_MSG_ID, "x");
    tl_msg_set_str (bad, TL_MSG_SERVICE, "s");
    tl_msg_set_str (bad, TL_MSG_METHOD, "m");
    assert (tl_msg_encode (bad, &data, &size) == 0);
    assert (tl_msg_decode (data, size, &back) == TL_EINVAL);
    free (data);
    tl_msg_destroy (&bad);
    const char v2 [] = "\x82\xa1v\x02\xa4kind\xa9heartbeat";
    assert (tl_msg_decode (v2, sizeof v2 - 1, &back) == TL_EPROTO);
    const char v1 [] = "\x82\xa1v\x01\xa4kind\xa9heartbeat";
    assert (tl_msg_decode (v1, sizeof v1 - 1, &back) == 0);
    assert (tl_msg_kind (back) == TL_MSG_HEARTBEAT);
    tl_msg_destroy (&back);
    //  A known key with the wrong type is refused.
    const char badtype [] = "\x83\xa1v\x01\xa4kind\xa9heartbeat\xa5" "db_ok\x01";
    assert (tl_msg_decode (badtype, sizeof badtype - 1, &back) == TL_EINVAL);

    //  A reply with headers and a bin body.
    tl_msg_t *rep = tl_msg_new (TL_MSG_REPLY);
    tl_msg_set_str (rep, TL_MSG_ID, "r1");
    tl_msg_set_status (rep, 201);
    tl_msg_add_header (rep, "Location", "/api/v1/x/1");
    assert (tl_msg_set_body (rep, "\xc4\x03png", 5) == 0);
    assert (tl_msg_encode (rep, &data, &size) == 0);
    assert (tl_msg_decode (data, size, &back) == 0);
    assert (tl_msg_status (back) == 201);
    assert (streq (tl_msg_header (back, "location"), "/api/v1/x/1"));
    assert (tl_msg_body (back)->type == MSGPACK_OBJECT_BIN);
    free (data);
    tl_msg_destroy (&back);

    //  A decoded body stays the bytes that came (str8 for a short str, which
    //  msgpack-c would pack as fixstr), unpacked only when asked; with two
    //  bodies the last counts; a frame without "v" is refused.
    const char lazy [] = "\x85\xa1v\x01\xa4kind\xa5reply\xa2id\xa1r\xa6status\xcc\xc8"
                         "\xa4" "body\x81\xd9\x01k\x01";
    assert (tl_msg_decode (lazy, sizeof lazy - 1, &back) == 0);
    size_t body_size = 0;
    const char *body_raw = tl_msg_body_raw (back, &body_size);
    assert (body_size == 5 && memcmp (body_raw, "\x81\xd9\x01k\x01", 5) == 0);
    uint64_t k = 0;
    assert (tl_mp_uint (tl_mp_get (tl_msg_body (back), "k"), &k) == 0 && k == 1);
    assert (tl_msg_encode (back, &data, &size) == 0);
    assert (size > 5 && memcmp (data + size - 5, "\x81\xd9\x01k\x01", 5) == 0);
    free (data);
    tl_msg_destroy (&back);
    const char twice [] = "\x86\xa1v\x01\xa4kind\xa5reply\xa4" "body\x01\xa2id\xa1r"
                          "\xa6status\xcc\xc8\xa4" "body\x02";
    assert (tl_msg_decode (twice, sizeof twice - 1, &back) == 0);
    body_raw = tl_msg_body_raw (back, &body_size);
    assert (body_size == 1 && body_raw [0] == 2);
    tl_msg_destroy (&back);
    const char no_v [] = "\x81\xa4kind\xa9heartbeat";
    assert (tl_msg_decode (no_v, sizeof no_v - 1, &back) == TL_EINVAL);
    const char no_map [] = "\x91\x01";
    assert (tl_msg_decode (no_map, sizeof no_map - 1, &back) == TL_EINVAL);

    //  A frame past TL_MAX_FRAME_BYTES is refused, not sent.
    assert (tl_msg_set_filler_body (rep, TL_MAX_FRAME_BYTES) == 0);
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert (sock);
    assert (tl_msg_send (rep, zsock_resolve (sock), NULL, 0) == TL_ETOOBIG);
    zsock_destroy (&sock);
    tl_msg_destroy (&rep);

    //  Slots: a link promises them, a slot names its index; absent, a
    //  ready is a link's without slots.
    tl_msg_t *ready = tl_msg_new (TL_MSG_READY);
    tl_msg_set_str (ready, TL_MSG_SERVICE, "tracker");
    tl_msg_set_str (ready, TL_MSG_INSTANCE, "tracker@h:1");
    tl_msg_set_capacity (ready, 8);
    assert (tl_msg_slot (ready) == -1 && !tl_msg_slots (ready));
    tl_msg_set_slots (ready, true);
    assert (tl_msg_encode (ready, &data, &size) == 0);
    assert (tl_msg_decode (data, size, &back) == 0);
    free (data);
    assert (tl_msg_slots (back) && tl_msg_slot (back) == -1);
    tl_msg_destroy (&back);
    tl_msg_set_slots (ready, false);
    tl_msg_set_slot (ready, 0);
    assert (tl_msg_encode (ready, &data, &size) == 0);
    assert (tl_msg_decode (data, size, &back) == 0);
    free (data);
    assert (!tl_msg_slots (back) && tl_msg_slot (back) == 0);
    tl_msg_destroy (&back);
    tl_msg_destroy (&ready);
    const char badslot [] = "\x83\xa1v\x01\xa4kind\xa9heartbeat\xa4slot\xcd\x01\x00";   //  256
    assert (tl_msg_decode (badslot, sizeof badslot - 1, &back) == TL_EINVAL);
    if (verbose)
        printf ("(envelope ok) ");
}
