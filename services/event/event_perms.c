//  event_perms.c — the permission table, role × service × create / read /
//  update / delete: read by staff (GET /admin/permissions), changed by a
//  super admin (PUT). It is data in the schema that every check reads on
//  each request (event_can), so a change applies from the next request on
//  every instance; nothing is cached.
#include "event_service.h"
#include "tl_error.h"
#include "tl_mp.h"

#include <stdio.h>
#include <string.h>

static const tl_db_statement_t s_statements [] = {
    { "perms_all",
      "SELECT role, service, can_create, can_read, can_update, can_delete FROM permissions "
      "ORDER BY array_position (ARRAY['organizer', 'coorganizer', 'track_organizer', "
      "'moderator'], role), array_position (ARRAY['event', 'tickets', 'orders', 'tracks', "
      "'sessions', 'speakers', 'sponsors', 'microlocations'], service)", 0 },
    { "perms_set",
      "INSERT INTO permissions (role, service, can_create, can_read, can_update, can_delete) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (role, service) DO UPDATE SET "
      "can_create = $3, can_read = $4, can_update = $5, can_delete = $6", 6 },
};

int
event_perms_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Answers 200 {permissions: [{role, service, create, read, update, delete}]}.
static void
s_reply_table (tl_call_t *call)
{
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "perms_all", 0, NULL, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "permissions");
    int rows = PQntuples (res);
    msgpack_pack_array (pk, (uint32_t) rows);
    for (int row = 0; row < rows; row++) {
        msgpack_pack_map (pk, 2 + EV_OP_COUNT);
        tl_mp_pack_kv (pk, "role", tl_db_value (res, row, 0));
        tl_mp_pack_kv (pk, "service", tl_db_value (res, row, 1));
        for (int op = 0; op < EV_OP_COUNT; op++) {
            tl_mp_pack_str (pk, ev_op_name ((ev_op_t) op));
            const char *value = tl_db_value (res, row, 2 + op);
            if (value && value [0] == 't')
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
        }
    }
    PQclear (res);
}

static void
s_get (tl_call_t *call)
{
    s_reply_table (call);
}

//  One row of a PUT, checked.
typedef struct {
    ev_role_t role;
    ev_service_t service;
    bool ops [EV_OP_COUNT];
} s_row_t;

typedef struct {
    s_row_t rows [EV_PERM_ROWS_MAX];
    size_t count;
} s_table_t;

//  Reads row `index` of the body. Answers 400 and returns false when it is
//  not {role, service, create, read, update, delete} with known names and
//  four booleans.
static bool
s_row_read (tl_call_t *call, const msgpack_object *obj, s_row_t *row)
{
    char role [32], service [32];
    if (obj->type != MSGPACK_OBJECT_MAP
    ||  !tl_mp_copy (tl_mp_get (obj, "role"), role, sizeof role)
    ||  ev_role_parse (role, &row->role) != 0) {
        tl_call_field_error (call, 400, "invalid", "permissions",
                             "each row needs a role: organizer, coorganizer, "
                             "track_organizer or moderator");
        return false;
    }
    if (!tl_mp_copy (tl_mp_get (obj, "service"), service, sizeof service)
    ||  ev_service_parse (service, &row->service) != 0) {
        tl_call_field_error (call, 400, "invalid", "permissions",
                             "each row needs a service: event, tickets, orders, tracks, "
                             "sessions, speakers, sponsors or microlocations");
        return false;
    }
    for (int op = 0; op < EV_OP_COUNT; op++) {
        const msgpack_object *value = tl_mp_get (obj, ev_op_name ((ev_op_t) op));
        if (!value || value->type != MSGPACK_OBJECT_BOOLEAN) {
            tl_call_field_error (call, 400, "invalid", "permissions",
                                 "each row needs create, read, update and delete as booleans");
            return false;
        }
        row->ops [op] = value->via.boolean;
    }
    return true;
}

static int
s_put_tx (tl_db_t *db, void *arg)
{
    s_table_t *table = (s_table_t *) arg;
    for (size_t i = 0; i < table->count; i++) {
        s_row_t *row = &table->rows [i];
        const char *values [] = {
            ev_role_name (row->role), ev_service_name (row->service),
            row->ops [0] ? "t" : "f", row->ops [1] ? "t" : "f",
            row->ops [2] ? "t" : "f", row->ops [3] ? "t" : "f"
        };
        long count = tl_db_exec_count (db, "perms_set", 6, values);
        if (count < 0)
            return (int) count;
    }
    return 0;
}

//  PUT /admin/permissions {permissions: [{role, service, create, read,
//  update, delete}]}: the rows given replace theirs, all or none; the
//  others stay.
static void
s_put (tl_call_t *call)
{
    const msgpack_object *rows = tl_mp_get (tl_call_body (call), "permissions");
    if (!rows || rows->type != MSGPACK_OBJECT_ARRAY || rows->via.array.size == 0
    ||  rows->via.array.size > EV_PERM_ROWS_MAX) {
        tl_call_field_error (call, 400, "invalid", "permissions",
                             "must be an array of 1 to 32 rows");
        return;
    }
    s_table_t table = { .count = rows->via.array.size };
    for (size_t i = 0; i < table.count; i++)
        if (!s_row_read (call, &rows->via.array.ptr [i], &table.rows [i]))
            return;
    int err = tl_db_tx (tl_call_db (call), s_put_tx, &table);
    if (err)
        tl_call_db_error (call, err);
    else
        s_reply_table (call);
}

int
event_perms_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "admin.permissions.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "admin.permissions.put", s_put);
    return rc;
}
