//  event_parts.c — the parts of an event's programme: tracks, sessions,
//  speakers, sponsors and microlocations, each a service of the permission
//  table. One engine serves the five: a resource is a table of fields
//  (kind, bounds, whether required, whether private to roles), and its
//  handlers parse the body against it, merge it onto the row (PATCH),
//  check the rules (a session inside the event's times; its track,
//  microlocation and speakers of the same event: 422), and run the
//  resource's prepared statements. A speaker's email is shown to roles
//  only. A speaker's photo and a sponsor's logo are one of the caller's
//  uploads, held by the upload service while the part shows it
//  (event_uploads.c); a row's id is made here, before its insert, so that
//  the reference can name it.
#include "event_service.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_upload.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------
//  The resources

typedef enum {
    S_TEXT,             //  one line of text
    S_LINES,            //  text with line breaks
    S_EMAIL,
    S_URL,
    S_COLOR,            //  #rrggbb
    S_INT,
    S_FLOAT,
    S_UUID,
    S_TIME,             //  RFC 3339; ms since the epoch in SQL
    S_ENUM,
    S_UUIDS,            //  an array of distinct UUIDs; a uuid[] literal in SQL
    S_UPLOAD,           //  the id of one of the caller's uploads (a UUID)
} s_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
    long max;                       //  characters, or array items
    double lo, hi;                  //  numbers
    bool required;
    bool column;                    //  a parameter of insert and update, in order
    bool private_;                  //  shown to roles only
    const char *const *choices;     //  S_ENUM, NULL-terminated
    const char *ref;                //  the statement checking a same-event id
} s_field_t;

typedef struct {
    const char *name;               //  method and statement prefix: "tracks"
    ev_service_t service;
    const char *id_param;           //  "track_id"
    const char *noun;               //  "track"
    const s_field_t *fields;
    size_t nfields;
    bool timed;                     //  starts_at/ends_at inside the event's
    const char *upload_ref;         //  the kind of reference of its S_UPLOAD field
} s_resource_t;

#define S_MAX_FIELDS 10

static const char *const s_session_states [] = { "draft", "accepted", "rejected", NULL };

static const s_field_t s_track_fields [] = {
    { "name", S_TEXT, 200, 0, 0, true, true, false, NULL, NULL },
    { "description", S_LINES, 2000, 0, 0, false, true, false, NULL, NULL },
    { "color", S_COLOR, 7, 0, 0, false, true, false, NULL, NULL },
};
static const s_field_t s_microlocation_fields [] = {
    { "name", S_TEXT, 200, 0, 0, true, true, false, NULL, NULL },
    { "floor", S_INT, 0, -100, 1000, false, true, false, NULL, NULL },
    { "latitude", S_FLOAT, 0, -90, 90, false, true, false, NULL, NULL },
    { "longitude", S_FLOAT, 0, -180, 180, false, true, false, NULL, NULL },
};
static const s_field_t s_speaker_fields [] = {
    { "name", S_TEXT, 200, 0, 0, true, true, false, NULL, NULL },
    { "email", S_EMAIL, 254, 0, 0, false, true, true, NULL, NULL },
    { "bio", S_LINES, 5000, 0, 0, false, true, false, NULL, NULL },
    { "photo_upload_id", S_UPLOAD, 36, 0, 0, false, true, false, NULL, NULL },
    { "organisation", S_TEXT, 200, 0, 0, false, true, false, NULL, NULL },
};
static const s_field_t s_sponsor_fields [] = {
    { "name", S_TEXT, 200, 0, 0, true, true, false, NULL, NULL },
    { "level", S_TEXT, 50, 0, 0, false, true, false, NULL, NULL },
    { "url", S_URL, 2048, 0, 0, false, true, false, NULL, NULL },
    { "logo_upload_id", S_UPLOAD, 36, 0, 0, false, true, false, NULL, NULL },
};
static const s_field_t s_session_fields [] = {
    { "title", S_TEXT, 200, 0, 0, true, true, false, NULL, NULL },
    { "abstract", S_LINES, 10000, 0, 0, false, true, false, NULL, NULL },
    { "track_id", S_UUID, 36, 0, 0, false, true, false, NULL, "parts_ref_track" },
    { "microlocation_id", S_UUID, 36, 0, 0, false, true, false, NULL, "parts_ref_microlocation" },
    { "starts_at", S_TIME, 64, 0, 0, true, true, false, NULL, NULL },
    { "ends_at", S_TIME, 64, 0, 0, true, true, false, NULL, NULL },
    { "state", S_ENUM, 16, 0, 0, false, true, false, s_session_states, NULL },
    { "speaker_ids", S_UUIDS, EV_MAX_SESSION_SPEAKERS, 0, 0, false, false, false, NULL,
      "parts_ref_speakers" },
};

#define S_RESOURCE(name, svc, id, noun, fields, timed, upload_ref) \
    { name, svc, id, noun, fields, sizeof fields / sizeof fields [0], timed, upload_ref }
static const s_resource_t s_resources [] = {
    S_RESOURCE ("tracks", EV_SVC_TRACKS, "track_id", "track", s_track_fields, false, NULL),
    S_RESOURCE ("sessions", EV_SVC_SESSIONS, "session_id", "session", s_session_fields, true,
                NULL),
    S_RESOURCE ("speakers", EV_SVC_SPEAKERS, "speaker_id", "speaker", s_speaker_fields, false,
                "speaker_photo"),
    S_RESOURCE ("sponsors", EV_SVC_SPONSORS, "sponsor_id", "sponsor", s_sponsor_fields, false,
                "sponsor_logo"),
    S_RESOURCE ("microlocations", EV_SVC_MICROLOCATIONS, "microlocation_id", "microlocation",
                s_microlocation_fields, false, NULL),
};
#define S_NRESOURCES (sizeof s_resources / sizeof s_resources [0])

//  ---------------------------------------------------------------------
//  Statements: each resource's select columns are id, event_id, its fields
//  in order (as text their parameters read back from, times in RFC 3339),
//  created_at, updated_at, then the list cursor.

#define S_TAIL "rfc3339 (x.created_at), rfc3339 (x.updated_at), " \
    "to_char (x.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define S_PAGE(table) \
    " FROM " table " x WHERE x.event_id = $1 AND ($2::timestamptz IS NULL " \
    "OR (x.created_at, x.id) > ($2::timestamptz, $3::uuid)) ORDER BY x.created_at, x.id " \
    "LIMIT $4::int"
#define S_ONE(table) " FROM " table " x WHERE x.id = $1 AND x.event_id = $2"
#define S_STATEMENTS(name, table, cols) \
    { name "_page", "SELECT x.id, x.event_id, " cols ", " S_TAIL S_PAGE (table), 4 }, \
    { name "_one", "SELECT x.id, x.event_id, " cols ", " S_TAIL S_ONE (table), 2 }, \
    { name "_count", "SELECT count (*) FROM " table " WHERE event_id = $1", 1 }, \
    { name "_delete", "DELETE FROM " table " WHERE id = $1 AND event_id = $2", 2 }

#define S_TRACK_COLS "x.name, x.description, x.color"
#define S_MICRO_COLS "x.name, x.floor, x.latitude, x.longitude"
#define S_SPEAKER_COLS "x.name, x.email, x.bio, x.photo_upload_id, x.organisation"
#define S_SPONSOR_COLS "x.name, x.level, x.url, x.logo_upload_id"
#define S_SESSION_COLS \
    "x.title, x.abstract, x.track_id, x.microlocation_id, rfc3339 (x.starts_at), " \
    "rfc3339 (x.ends_at), x.state, (SELECT coalesce (array_agg (s.speaker_id " \
    "ORDER BY s.speaker_id), '{}')::text FROM session_speakers s WHERE s.session_id = x.id)"

static const tl_db_statement_t s_statements [] = {
    S_STATEMENTS ("tracks", "tracks", S_TRACK_COLS),
    { "tracks_insert", "INSERT INTO tracks (id, event_id, name, description, color) "
      "VALUES ($1, $2, $3, $4, $5)", 5 },
    { "tracks_update", "UPDATE tracks SET name = $3, description = $4, color = $5, "
      "updated_at = now () WHERE id = $1 AND event_id = $2", 5 },
    S_STATEMENTS ("microlocations", "microlocations", S_MICRO_COLS),
    { "microlocations_insert", "INSERT INTO microlocations (id, event_id, name, floor, "
      "latitude, longitude) VALUES ($1, $2, $3, $4::int, $5::float8, $6::float8)", 6 },
    { "microlocations_update", "UPDATE microlocations SET name = $3, floor = $4::int, "
      "latitude = $5::float8, longitude = $6::float8, updated_at = now () "
      "WHERE id = $1 AND event_id = $2", 6 },
    S_STATEMENTS ("speakers", "speakers", S_SPEAKER_COLS),
    { "speakers_insert", "INSERT INTO speakers (id, event_id, name, email, bio, "
      "photo_upload_id, organisation) VALUES ($1, $2, $3, $4, $5, $6::uuid, $7)", 7 },
    { "speakers_update", "UPDATE speakers SET name = $3, email = $4, bio = $5, "
      "photo_upload_id = $6::uuid, organisation = $7, updated_at = now () "
      "WHERE id = $1 AND event_id = $2", 7 },
    S_STATEMENTS ("sponsors", "sponsors", S_SPONSOR_COLS),
    { "sponsors_insert", "INSERT INTO sponsors (id, event_id, name, level, url, "
      "logo_upload_id) VALUES ($1, $2, $3, $4, $5, $6::uuid)", 6 },
    { "sponsors_update", "UPDATE sponsors SET name = $3, level = $4, url = $5, "
      "logo_upload_id = $6::uuid, updated_at = now () WHERE id = $1 AND event_id = $2", 6 },
    S_STATEMENTS ("sessions", "sessions", S_SESSION_COLS),
    { "sessions_insert", "INSERT INTO sessions (id, event_id, title, abstract, track_id, "
      "microlocation_id, starts_at, ends_at, state) VALUES ($1, $2, $3, $4, $5::uuid, "
      "$6::uuid, to_timestamp ($7::float8 / 1000), to_timestamp ($8::float8 / 1000), "
      "coalesce ($9, 'draft'))", 9 },
    { "sessions_update", "UPDATE sessions SET title = $3, abstract = $4, track_id = $5::uuid, "
      "microlocation_id = $6::uuid, starts_at = to_timestamp ($7::float8 / 1000), "
      "ends_at = to_timestamp ($8::float8 / 1000), state = coalesce ($9, state), "
      "updated_at = now () WHERE id = $1 AND event_id = $2", 9 },
    { "session_speakers_clear", "DELETE FROM session_speakers WHERE session_id = $1", 1 },
    { "session_speakers_add", "INSERT INTO session_speakers (session_id, speaker_id) "
      "SELECT $1, unnest ($2::uuid[])", 2 },
    //  Same-event references: $1 the id (or uuid[]), $2 the event
    { "parts_ref_track", "SELECT EXISTS (SELECT 1 FROM tracks WHERE id = $1::uuid "
      "AND event_id = $2)", 2 },
    { "parts_ref_microlocation", "SELECT EXISTS (SELECT 1 FROM microlocations "
      "WHERE id = $1::uuid AND event_id = $2)", 2 },
    { "parts_ref_speakers", "SELECT count (*) = cardinality ($1::uuid[]) FROM speakers "
      "WHERE id = ANY ($1::uuid[]) AND event_id = $2", 2 },
};

int
event_parts_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  The resource of a method ("tracks.create" → tracks).
static const s_resource_t *
s_resource (tl_call_t *call)
{
    const char *method = tl_call_method (call);
    for (size_t i = 0; method && i < S_NRESOURCES; i++) {
        size_t size = strlen (s_resources [i].name);
        if (strncmp (method, s_resources [i].name, size) == 0 && method [size] == '.')
            return &s_resources [i];
    }
    return NULL;
}

static void
s_statement (const s_resource_t *res, const char *what, char name [64])
{
    snprintf (name, 64, "%s_%s", res->name, what);
}

//  ---------------------------------------------------------------------
//  Packing a row

enum { S_COL_ID, S_COL_EVENT, S_COL_FIELDS };

//  Packs the UUIDs of a PostgreSQL uuid[] text ("{a,b}") as an array.
static void
s_pack_uuids (msgpack_packer *pk, const char *text)
{
    char ids [EV_MAX_SESSION_SPEAKERS] [37];
    uint32_t count = 0;
    const char *s = text && *text == '{' ? text + 1 : "";
    while (*s && *s != '}' && count < EV_MAX_SESSION_SPEAKERS) {
        size_t size = strcspn (s, ",}");
        snprintf (ids [count++], 37, "%.*s", (int) (size < 36 ? size : 36), s);
        s += size;
        if (*s == ',')
            s++;
    }
    msgpack_pack_array (pk, count);
    for (uint32_t i = 0; i < count; i++)
        tl_mp_pack_str (pk, ids [i]);
}

static void
s_pack_row (msgpack_packer *pk, const s_resource_t *resource, const PGresult *res, int row,
            bool roles)
{
    uint32_t count = 4;
    for (size_t i = 0; i < resource->nfields; i++)
        count += !resource->fields [i].private_ || roles;
    msgpack_pack_map (pk, count);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, S_COL_ID));
    tl_mp_pack_kv (pk, "event_id", tl_db_value (res, row, S_COL_EVENT));
    for (size_t i = 0; i < resource->nfields; i++) {
        const s_field_t *field = &resource->fields [i];
        if (field->private_ && !roles)
            continue;
        const char *value = tl_db_value (res, row, S_COL_FIELDS + (int) i);
        tl_mp_pack_str (pk, field->name);
        if (!value && field->kind != S_UUIDS)
            msgpack_pack_nil (pk);
        else
        if (field->kind == S_INT)
            msgpack_pack_int64 (pk, atoll (value));
        else
        if (field->kind == S_FLOAT)
            msgpack_pack_double (pk, strtod (value, NULL));
        else
        if (field->kind == S_UUIDS)
            s_pack_uuids (pk, value);
        else
            tl_mp_pack_str (pk, value);
    }
    int tail = S_COL_FIELDS + (int) resource->nfields;
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, tail));
    tl_mp_pack_kv (pk, "updated_at", tl_db_value (res, row, tail + 1));
}

//  True when the caller sees private fields (a speaker's email): staff, or
//  a role that reads the service.
static bool
s_roles_see (const event_ref_t *event)
{
    return event->access.staff || (event->role != EV_ROLE_NONE && event->access.perm [EV_OP_READ]);
}

static void
s_reply_one (tl_call_t *call, const s_resource_t *resource, const char *event_id,
             const char *id, bool roles, int status)
{
    char name [64];
    s_statement (resource, "one", name);
    const char *values [] = { id, event_id };
    PGresult *res = tl_call_exec_one (call, name, 2, values, resource->noun);
    if (res)
        s_pack_row (tl_call_reply (call, status), resource, res, 0, roles);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  The values of one row as SQL parameters (text, NULL for SQL NULL; each
//  the caller's to free)

typedef struct {
    char *values [S_MAX_FIELDS];
} s_row_t;

static void
s_row_free (s_row_t *row)
{
    for (size_t i = 0; i < S_MAX_FIELDS; i++) {
        free (row->values [i]);
        row->values [i] = NULL;
    }
}

//  Loads the stored row's values (PATCH starts from them). Times go from
//  RFC 3339 to ms. Returns 0, TL_ENOTFOUND, TL_ENOMEM or a database code.
static int
s_row_load (tl_db_t *db, const s_resource_t *resource, const char *event_id, const char *id,
            s_row_t *row)
{
    char name [64];
    s_statement (resource, "one", name);
    const char *values [] = { id, event_id };
    int rc = 0;
    PGresult *res = tl_db_exec (db, name, 2, values, &rc);
    if (!res)
        return rc;
    if (PQntuples (res) != 1) {
        PQclear (res);
        return TL_ENOTFOUND;
    }
    for (size_t i = 0; i < resource->nfields && rc == 0; i++) {
        const char *value = tl_db_value (res, 0, S_COL_FIELDS + (int) i);
        if (!value)
            continue;
        char ms [32];
        int64_t at = 0;
        if (resource->fields [i].kind == S_TIME) {
            if (tl_time_parse (value, &at) != 0)
                rc = TL_EINVAL;
            snprintf (ms, sizeof ms, "%lld", (long long) at);
            value = ms;
        }
        row->values [i] = strdup (value);
        if (!row->values [i])
            rc = TL_ENOMEM;
    }
    PQclear (res);
    return rc;
}

//  The readers of one kind of value: each returns the SQL parameter (the
//  caller's) or NULL with *why set (or, out of memory, not).

static char *
s_read_int (const s_field_t *field, const msgpack_object *obj, const char **why)
{
    int64_t number;
    if (tl_mp_int (obj, &number) != 0 || number < field->lo || number > field->hi) {
        *why = "must be an integer in range";
        return NULL;
    }
    char text [32];
    snprintf (text, sizeof text, "%lld", (long long) number);
    return strdup (text);
}

static char *
s_read_float (const s_field_t *field, const msgpack_object *obj, const char **why)
{
    double number = NAN;
    int64_t whole;
    if (obj->type == MSGPACK_OBJECT_FLOAT64 || obj->type == MSGPACK_OBJECT_FLOAT32)
        number = obj->via.f64;
    else
    if (tl_mp_int (obj, &whole) == 0)
        number = (double) whole;
    if (!isfinite (number) || number < field->lo || number > field->hi) {
        *why = "must be a number in range";
        return NULL;
    }
    char text [40];
    snprintf (text, sizeof text, "%.17g", number);
    return strdup (text);
}

//  Distinct UUIDs as a uuid[] literal, "{a,b}", lower case.
static char *
s_read_uuids (const s_field_t *field, const msgpack_object *obj, const char **why)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size > (uint32_t) field->max) {
        *why = "must be an array of at most 50 ids";
        return NULL;
    }
    char *value = malloc (obj->via.array.size * 37 + 3);
    char *s = value;
    if (s)
        *s++ = '{';
    for (uint32_t i = 0; value && i < obj->via.array.size && !*why; i++) {
        char id [40];
        if (!tl_mp_copy (&obj->via.array.ptr [i], id, sizeof id) || !tl_valid_uuid (id))
            *why = "must hold ids";
        for (char *c = id; !*why && *c; c++)
            *c = (char) tolower ((unsigned char) *c);
        for (uint32_t j = 0; !*why && j < i; j++)
            if (strncmp (value + 1 + j * 37, id, 36) == 0)
                *why = "must not repeat an id";
        if (!*why)
            s += sprintf (s, "%s%s", i ? "," : "", id);
    }
    if (*why) {
        free (value);
        return NULL;
    }
    if (value)
        strcpy (s, "}");
    return value;
}

//  A string of its kind: text, email, URL, colour, UUID, time (as ms),
//  one of the choices.
static char *
s_read_string (const s_field_t *field, const msgpack_object *obj, const char **why)
{
    char *value = tl_mp_strdup (obj, (size_t) field->max * 4);
    if (!value) {
        *why = "must be a string within its length";
        return NULL;
    }
    int64_t at;
    char text [32];
    switch (field->kind) {
        case S_TEXT:
        case S_LINES:
            if (!event_text_ok (value, field->required ? 1 : 0, field->max,
                                field->kind == S_LINES))
                *why = "must be text within its length";
            break;
        case S_EMAIL:
            if (!tl_valid_email (value))
                *why = "must be an email address";
            break;
        case S_URL:
            if (!tl_valid_http_url (value))
                *why = "must be an http or https URL";
            break;
        case S_COLOR:
            if (strlen (value) != 7 || value [0] != '#'
            ||  strspn (value + 1, "0123456789abcdefABCDEF") != 6)
                *why = "must be a colour #rrggbb";
            break;
        case S_UUID:
        case S_UPLOAD:
            if (!tl_valid_uuid (value))
                *why = "must be an id (UUID)";
            break;
        case S_TIME:
            if (tl_time_parse (value, &at) != 0)
                *why = "must be an RFC 3339 time";
            else {
                snprintf (text, sizeof text, "%lld", (long long) at);
                free (value);
                value = strdup (text);
            }
            break;
        case S_ENUM:
            *why = "is not one of its values";
            for (size_t i = 0; field->choices [i]; i++)
                if (strcmp (field->choices [i], value) == 0)
                    *why = NULL;
            break;
        default:
            break;
    }
    if (*why) {
        free (value);
        return NULL;
    }
    return value;
}

//  Reads field `field` of the body onto row->values [index] when given
//  (null clears it). Answers 400 (503 out of memory) and returns false
//  when it cannot.
static bool
s_field_read (tl_call_t *call, const s_field_t *field, size_t index, s_row_t *row)
{
    const msgpack_object *obj = tl_mp_get (tl_call_body (call), field->name);
    if (!obj)
        return true;
    free (row->values [index]);
    row->values [index] = NULL;
    if (obj->type == MSGPACK_OBJECT_NIL)
        return true;
    const char *why = NULL;
    char *value = field->kind == S_INT ? s_read_int (field, obj, &why)
                : field->kind == S_FLOAT ? s_read_float (field, obj, &why)
                : field->kind == S_UUIDS ? s_read_uuids (field, obj, &why)
                : s_read_string (field, obj, &why);
    if (why) {
        tl_call_field_error (call, 400, "invalid", field->name, why);
        return false;
    }
    if (!value) {
        tl_call_error (call, 503, "unavailable", "out of memory");
        return false;
    }
    row->values [index] = value;
    return true;
}

//  Reads the body onto the row. Answers 400 and returns false.
static bool
s_body_read (tl_call_t *call, const s_resource_t *resource, s_row_t *row)
{
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    for (size_t i = 0; i < resource->nfields; i++)
        if (!s_field_read (call, &resource->fields [i], i, row))
            return false;
    for (size_t i = 0; i < resource->nfields; i++)
        if (resource->fields [i].required && !row->values [i]) {
            tl_call_field_error (call, 400, "invalid", resource->fields [i].name, "is required");
            return false;
        }
    return true;
}

//  ---------------------------------------------------------------------
//  The rules across fields and rows: the answer of a write

typedef struct {
    int status;                 //  0, or an answer instead of the row
    const char *code, *field, *why;
} s_refusal_t;

static int
s_index (const s_resource_t *resource, const char *name)
{
    for (size_t i = 0; i < resource->nfields; i++)
        if (strcmp (resource->fields [i].name, name) == 0)
            return (int) i;
    return -1;
}

//  Checks a timed resource's times and every same-event reference of the
//  row. Returns 0 (*refusal set when a rule is broken) or a database code.
static int
s_rules (tl_db_t *db, const s_resource_t *resource, const event_ref_t *event,
         const s_row_t *row, s_refusal_t *refusal)
{
    if (resource->timed) {
        int64_t starts = atoll (row->values [s_index (resource, "starts_at")]);
        int64_t ends = atoll (row->values [s_index (resource, "ends_at")]);
        if (starts >= ends) {
            *refusal = (s_refusal_t) { 422, "invalid_times", "ends_at", "must be after starts_at" };
            return 0;
        }
        if (starts < event->starts_ms || ends > event->ends_ms) {
            *refusal = (s_refusal_t) { 422, "invalid_times", "starts_at",
                                       "must lie inside the event's times" };
            return 0;
        }
    }
    for (size_t i = 0; i < resource->nfields; i++) {
        const s_field_t *field = &resource->fields [i];
        if (!field->ref || !row->values [i])
            continue;
        const char *values [] = { row->values [i], event->id };
        int rc = 0;
        PGresult *res = tl_db_exec (db, field->ref, 2, values, &rc);
        if (!res)
            return rc;
        bool ok = tl_db_value (res, 0, 0) && tl_db_value (res, 0, 0) [0] == 't';
        PQclear (res);
        if (!ok) {
            *refusal = (s_refusal_t) { 422, "invalid_reference", field->name,
                                       "must name something of the same event" };
            return 0;
        }
    }
    return 0;
}

//  The parameters of insert/update after `lead` leading ones: the column
//  fields in order. Returns how many in all.
static int
s_params (const s_resource_t *resource, const s_row_t *row, const char **values, int lead)
{
    int n = lead;
    for (size_t i = 0; i < resource->nfields; i++)
        if (resource->fields [i].column)
            values [n++] = row->values [i];
    return n;
}

//  Writes a session's speakers (the row's speaker_ids) for `id`.
static int
s_speakers_write (tl_db_t *db, const s_resource_t *resource, const char *id, const s_row_t *row)
{
    int index = s_index (resource, "speaker_ids");
    if (index < 0)
        return 0;
    long count = tl_db_exec_count (db, "session_speakers_clear", 1, &id);
    if (count >= 0 && row->values [index]) {
        const char *values [] = { id, row->values [index] };
        count = tl_db_exec_count (db, "session_speakers_add", 2, values);
    }
    return count < 0 ? (int) count : 0;
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/{resource}

static void
s_list (tl_call_t *call)
{
    const s_resource_t *resource = s_resource (call);
    const char *event_id = tl_call_param (call, "id");
    event_ref_t event;
    tl_page_t page;
    if (!event_can (call, event_id, resource->service, EV_OP_READ, false, &event)
    ||  !tl_call_page (call, &page))
        return;
    char name [64];
    s_statement (resource, "page", name);
    const char *values [] = { event_id, page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, name, 4, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    bool roles = s_roles_see (&event);
    for (int row = 0; row < rows; row++)
        s_pack_row (pk, resource, res, row, roles);
    tl_call_page_end (pk, more,
                      tl_db_value (res, rows - 1, S_COL_FIELDS + (int) resource->nfields + 2),
                      tl_db_value (res, rows - 1, S_COL_ID));
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/{resource}/{x_id}

static void
s_get (tl_call_t *call)
{
    const s_resource_t *resource = s_resource (call);
    const char *event_id = tl_call_param (call, "id");
    const char *id = tl_call_param (call, resource->id_param);
    event_ref_t event;
    if (!event_can (call, event_id, resource->service, EV_OP_READ, false, &event))
        return;
    if (!tl_valid_uuid (id))
        tl_call_error (call, 404, "not_found", "no such %s", resource->noun);
    else
        s_reply_one (call, resource, event_id, id, s_roles_see (&event), 200);
}

//  ---------------------------------------------------------------------
//  POST and PATCH: one transaction under the event's row lock (the
//  event's times and parts do not change under the checks)

typedef struct {
    tl_call_t *call;
    const s_resource_t *resource;
    bool create;
    int decision;
    bool answered;              //  answered while reading the body, or by the upload service
    bool full;
    s_refusal_t refusal;
    char id [37];
    bool roles;
    bool held;                  //  the new row's upload reference was made
} s_write_t;

//  After the rules, before the write: when the row's upload changes (set,
//  replaced, cleared), the upload service holds the new one and lets the
//  old one go (the reference is the row's: one upload at a time). Returns
//  false when the upload service refused (the call is answered).
static bool
s_upload_hold (s_write_t *write, const char *before, const char *after)
{
    const s_resource_t *resource = write->resource;
    if (!resource->upload_ref)
        return true;
    if (before && after ? strcasecmp (before, after) == 0 : before == after)
        return true;                    //  unchanged
    if (!tl_upload_hold (write->call, resource->upload_ref, write->id, after, NULL, NULL,
                            NULL))
        return false;
    write->held = write->create;
    return true;
}

//  The index of the resource's upload field, or -1.
static int
s_upload_index (const s_resource_t *resource)
{
    for (size_t i = 0; i < resource->nfields; i++)
        if (resource->fields [i].kind == S_UPLOAD)
            return (int) i;
    return -1;
}

static int
s_write_tx (tl_db_t *db, void *arg)
{
    s_write_t *write = (s_write_t *) arg;
    tl_call_t *call = write->call;
    const s_resource_t *resource = write->resource;
    write->refusal.status = 0;
    const char *event_id = tl_call_param (call, "id");
    event_ref_t event;
    int rc = event_can_db (db, call, event_id, resource->service,
                           write->create ? EV_OP_CREATE : EV_OP_UPDATE, true, &event);
    write->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    write->roles = s_roles_see (&event);
    char name [64];
    s_row_t row = { { NULL } };
    char *before = NULL;                //  the stored upload id, when the row has one
    int upload = s_upload_index (resource);
    if (write->create) {
        s_statement (resource, "count", name);
        PGresult *res = tl_db_exec (db, name, 1, &event_id, &rc);
        write->full = res && atol (tl_db_value (res, 0, 0)) >= EV_MAX_PARTS_PER_EVENT;
        PQclear (res);
        if (rc || write->full)
            return rc;
        tl_valid_uuid_new (write->id);
    }
    else {
        snprintf (write->id, sizeof write->id, "%s", tl_call_param (call, resource->id_param));
        rc = s_row_load (db, resource, event_id, write->id, &row);
        if (rc == TL_ENOTFOUND) {
            write->refusal = (s_refusal_t) { 404, "not_found", NULL, NULL };
            rc = 0;
            goto done;
        }
        if (rc)
            goto done;
        if (upload >= 0 && row.values [upload] && !(before = strdup (row.values [upload]))) {
            rc = TL_ENOMEM;
            goto done;
        }
    }
    if (!s_body_read (call, resource, &row)) {
        write->answered = true;
        goto done;
    }
    rc = s_rules (db, resource, &event, &row, &write->refusal);
    if (rc || write->refusal.status)
        goto done;
    if (upload >= 0 && !s_upload_hold (write, before, row.values [upload])) {
        write->answered = true;
        goto done;
    }
    const char *values [S_MAX_FIELDS + 2] = { write->id, event_id };
    s_statement (resource, write->create ? "insert" : "update", name);
    int n = s_params (resource, &row, values, 2);
    long count = tl_db_exec_count (db, name, n, values);
    rc = count < 0 ? (int) count : 0;
    rc = rc ? rc : s_speakers_write (db, resource, write->id, &row);
done:
    free (before);
    s_row_free (&row);
    return rc;
}

static void
s_write (tl_call_t *call, bool create)
{
    const s_resource_t *resource = s_resource (call);
    if (!create && (!tl_valid_uuid (tl_call_param (call, "id"))
                ||  !tl_valid_uuid (tl_call_param (call, resource->id_param)))) {
        tl_call_error (call, 404, "not_found", "no such %s", resource->noun);
        return;
    }
    s_write_t write = { call, resource, create, 0, false, false, { 0 }, "", false, false };
    int err = tl_db_tx (tl_call_db (call), s_write_tx, &write);
    if (err && write.held)              //  no row shows the upload it holds
        event_upload_release (call, resource->upload_ref, write.id);
    if (write.answered && !err)
        return;                         //  400, answered while reading
    if (err)
        tl_call_db_error (call, err);
    else
    if (write.decision)
        event_refuse (call, write.decision);
    else
    if (write.full)
        tl_call_error (call, 422, "too_many", "an event has at most %d %s",
                       EV_MAX_PARTS_PER_EVENT, resource->name);
    else
    if (write.refusal.status == 404)
        tl_call_error (call, 404, "not_found", "no such %s", resource->noun);
    else
    if (write.refusal.status)
        tl_call_field_error (call, write.refusal.status, write.refusal.code,
                             write.refusal.field, write.refusal.why);
    else {
        if (create) {
            char location [160];
            snprintf (location, sizeof location, "/api/v1/events/%s/%s/%s",
                      tl_call_param (call, "id"), resource->name, write.id);
            tl_call_header (call, "Location", location);
        }
        s_reply_one (call, resource, tl_call_param (call, "id"), write.id, write.roles,
                     create ? 201 : 200);
    }
}

static void
s_create (tl_call_t *call)
{
    s_write (call, true);
}

static void
s_update (tl_call_t *call)
{
    s_write (call, false);
}

//  ---------------------------------------------------------------------
//  DELETE /events/{id}/{resource}/{x_id}: under the event's row lock, as
//  writes are, so that the upload the row shows when it goes is the one
//  its reference holds (let go by a job committed with the deletion)

typedef struct {
    tl_call_t *call;
    const s_resource_t *resource;
    int decision;
    bool found;
} s_delete_t;

static int
s_delete_tx (tl_db_t *db, void *arg)
{
    s_delete_t *removal = (s_delete_t *) arg;
    const s_resource_t *resource = removal->resource;
    const char *event_id = tl_call_param (removal->call, "id");
    const char *id = tl_call_param (removal->call, resource->id_param);
    event_ref_t event;
    int rc = event_can_db (db, removal->call, event_id, resource->service, EV_OP_DELETE, true,
                           &event);
    removal->decision = rc > 0 ? rc : 0;
    removal->found = false;
    if (rc)
        return rc < 0 ? rc : 0;
    int upload = s_upload_index (resource);
    bool shown = false;
    if (upload >= 0) {
        s_row_t row = { { NULL } };
        rc = s_row_load (db, resource, event_id, id, &row);
        shown = rc == 0 && row.values [upload];
        s_row_free (&row);
        if (rc)
            return rc == TL_ENOTFOUND ? 0 : rc;
    }
    char name [64];
    s_statement (resource, "delete", name);
    const char *values [] = { id, event_id };
    long count = tl_db_exec_count (db, name, 2, values);
    if (count < 0)
        return (int) count;
    removal->found = count > 0;
    return removal->found && shown ? event_upload_forget (db, resource->upload_ref, id) : 0;
}

static void
s_delete (tl_call_t *call)
{
    const s_resource_t *resource = s_resource (call);
    if (!tl_valid_uuid (tl_call_param (call, resource->id_param))) {
        const char *event_id = tl_call_param (call, "id");
        event_ref_t event;
        if (event_can (call, event_id, resource->service, EV_OP_DELETE, false, &event))
            tl_call_error (call, 404, "not_found", "no such %s", resource->noun);
        return;
    }
    s_delete_t removal = { call, resource, 0, false };
    int err = tl_db_tx (tl_call_db (call), s_delete_tx, &removal);
    if (err)
        tl_call_db_error (call, err);
    else
    if (removal.decision)
        event_refuse (call, removal.decision);
    else
    if (!removal.found)
        tl_call_error (call, 404, "not_found", "no such %s", resource->noun);
    else
        tl_call_reply_empty (call, 204);
}

int
event_parts_register (tl_service_t *svc)
{
    static const struct { const char *op; tl_handler_fn *fn; } ops [] = {
        { "list", s_list }, { "create", s_create }, { "get", s_get },
        { "update", s_update }, { "delete", s_delete },
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < S_NRESOURCES; i++)
        for (size_t j = 0; rc == 0 && j < sizeof ops / sizeof ops [0]; j++) {
            char method [64];
            snprintf (method, sizeof method, "%s.%s", s_resources [i].name, ops [j].op);
            rc = tl_service_on (svc, method, ops [j].fn);
        }
    return rc;
}
