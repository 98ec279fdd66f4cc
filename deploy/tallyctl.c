//  tallyctl.c — the operator's tool. It talks to the mesh like any peer
//  (proto/PROTOCOL.md), so it works against any running Tally.
//
//    tallyctl status            every gateway of TALLY_MESH: its services,
//                               their queues and live instances
//    tallyctl ping              round trip to each gateway
//    tallyctl keygen NAME [DIR] [--peer ID]
//                               a CURVE certificate pair: NAME, NAME_secret;
//                               ID (service:<name>, operator, gateway) is
//                               who the key is on the mesh (its "peer"
//                               property, read from the allow folder)
//    tallyctl jobs list SERVICE [--state S] [--limit N]
//                               a service's durable jobs (due, running,
//                               dead, done or all), newest first
//    tallyctl jobs retry SERVICE ID
//                               a dead or failed job runs again now
//    tallyctl jobs run-due SERVICE [--at TIME]
//                               runs every job due at TIME (RFC 3339,
//                               default now) on one instance, and waits
#include "tl_client.h"
#include "tl_curve.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_mp.h"

#include <czmq.h>

static const char *
s_mesh (void)
{
    const char *mesh = getenv ("TALLY_MESH");
    return mesh && *mesh ? mesh : "tcp://127.0.0.1:5555";
}

static void
s_print_str (const msgpack_object *obj)
{
    if (obj && obj->type == MSGPACK_OBJECT_STR)
        printf ("%.*s", (int) obj->via.str.size, obj->via.str.ptr);
    else
        printf ("?");
}

static long long
s_int (const msgpack_object *obj)
{
    int64_t value = 0;
    return tl_mp_int (obj, &value) == 0 ? (long long) value : -1;
}

//  Asks one gateway for its view of the mesh and prints it.
static int
s_status_one (const char *endpoint)
{
    tl_client_t *client = tl_client_new (endpoint);
    if (!client) {
        fprintf (stderr, "tallyctl: bad endpoint %s\n", endpoint);
        return 1;
    }
    tl_msg_t *reply = NULL;
    int rc = tl_client_simple (client, "mesh", "status", 2000, &reply);
    tl_client_destroy (&client);
    if (rc) {
        printf ("gateway %s: not answering (%s)\n", endpoint, tl_strerror (rc));
        return 1;
    }
    const msgpack_object *body = tl_msg_body (reply);
    printf ("gateway ");
    s_print_str (tl_mp_get (body, "gateway"));
    printf (" at %s\n", endpoint);
    const msgpack_object *services = tl_mp_get (body, "services");
    for (uint32_t i = 0; services && services->type == MSGPACK_OBJECT_ARRAY
                      && i < services->via.array.size; i++) {
        const msgpack_object *s = &services->via.array.ptr [i];
        const msgpack_object *instances = tl_mp_get (s, "instances");
        uint32_t count = instances && instances->type == MSGPACK_OBJECT_ARRAY
                       ? instances->via.array.size : 0;
        printf ("  service ");
        s_print_str (tl_mp_get (s, "name"));
        printf ("  instances %u  queue %lld\n", count, s_int (tl_mp_get (s, "queue")));
        for (uint32_t j = 0; j < count; j++) {
            const msgpack_object *inst = &instances->via.array.ptr [j];
            const msgpack_object *db = tl_mp_get (inst, "db_ok");
            printf ("    ");
            s_print_str (tl_mp_get (inst, "instance"));
            printf ("  in_flight %lld/%lld  db %s  seen %lld ms ago\n",
                    s_int (tl_mp_get (inst, "in_flight")),
                    s_int (tl_mp_get (inst, "capacity")),
                    db && db->type == MSGPACK_OBJECT_BOOLEAN && db->via.boolean ? "ok" : "DOWN",
                    s_int (tl_mp_get (inst, "last_seen_ms")));
        }
    }
    tl_msg_destroy (&reply);
    return 0;
}

static int
s_each_gateway (int (*fn) (const char *))
{
    char *list = strdup (s_mesh ());
    char *save = NULL;
    int failures = 0;
    for (char *ep = strtok_r (list, ",", &save); ep; ep = strtok_r (NULL, ",", &save))
        failures += fn (ep);
    free (list);
    return failures ? 1 : 0;
}

static int
s_ping_one (const char *endpoint)
{
    tl_client_t *client = tl_client_new (endpoint);
    if (!client)
        return 1;
    int64_t start = zclock_usecs ();
    tl_msg_t *reply = NULL;
    int rc = tl_client_simple (client, "mesh", "ping", 2000, &reply);
    tl_client_destroy (&client);
    if (rc) {
        printf ("%s: %s\n", endpoint, tl_strerror (rc));
        return 1;
    }
    printf ("%s: pong in %.3f ms\n", endpoint, (double) (zclock_usecs () - start) / 1000.0);
    tl_msg_destroy (&reply);
    return 0;
}

static int
s_keygen (const char *name, const char *dir, const char *peer)
{
    if (peer && !tl_curve_valid_peer (peer)) {
        fprintf (stderr, "tallyctl: --peer is service:<name>, operator or gateway\n");
        return 2;
    }
    zcert_t *cert = zcert_new ();
    if (!cert)
        return 1;
    zcert_set_meta (cert, "name", "%s", name);
    if (peer)
        zcert_set_meta (cert, "peer", "%s", peer);
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int rc = zcert_save (cert, path);
    zcert_destroy (&cert);
    if (rc) {
        fprintf (stderr, "tallyctl: cannot write %s\n", path);
        return 1;
    }
    printf ("wrote %s (public) and %s_secret\n", path, path);
    return 0;
}

//  Calls SERVICE.method with `params` (name, value pairs, NULL-ended) and
//  `body` (one packed MessagePack value, or NULL) and returns a 2xx reply
//  (the caller's), or NULL after printing why.
static tl_msg_t *
s_call (const char *service, const char *method, const char *const *params,
        const msgpack_sbuffer *body, int timeout_ms)
{
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    tl_client_t *client = tl_client_new (s_mesh ());
    if (!request || !client) {
        fprintf (stderr, "tallyctl: bad TALLY_MESH %s\n", s_mesh ());
        tl_msg_destroy (&request);
        tl_client_destroy (&client);
        return NULL;
    }
    tl_msg_set_str (request, TL_MSG_SERVICE, service);
    tl_msg_set_str (request, TL_MSG_METHOD, method);
    for (int i = 0; params [i]; i += 2)
        tl_msg_add_param (request, params [i], params [i + 1]);
    if (body)
        tl_msg_set_body (request, body->data, body->size);
    tl_msg_set_deadline (request, tl_msg_now_ms () + (uint64_t) timeout_ms);
    tl_msg_t *reply = NULL;
    int rc = tl_client_call (client, request, &reply);
    tl_msg_destroy (&request);
    tl_client_destroy (&client);
    if (rc) {
        fprintf (stderr, "tallyctl: %s %s: %s\n", service, method, tl_strerror (rc));
        return NULL;
    }
    if (tl_msg_status (reply) >= 300) {
        const msgpack_object *error = tl_mp_get (tl_msg_body (reply), "error");
        fprintf (stderr, "tallyctl: %s %s: %d ", service, method, tl_msg_status (reply));
        const msgpack_object *code = tl_mp_get (error, "code");
        const msgpack_object *message = tl_mp_get (error, "message");
        if (code && code->type == MSGPACK_OBJECT_STR)
            fprintf (stderr, "%.*s: ", (int) code->via.str.size, code->via.str.ptr);
        if (message && message->type == MSGPACK_OBJECT_STR)
            fprintf (stderr, "%.*s", (int) message->via.str.size, message->via.str.ptr);
        fprintf (stderr, "\n");
        tl_msg_destroy (&reply);
    }
    return reply;
}

static tl_msg_t *
s_jobs_call (const char *service, const char *method, const char *const *params,
             int timeout_ms)
{
    return s_call (service, method, params, NULL, timeout_ms);
}

//  Prints a str field padded to `width` ("-" when it is not a str).
static void
s_print_field (const msgpack_object *obj, int width)
{
    bool str = obj && obj->type == MSGPACK_OBJECT_STR;
    int size = str ? (int) obj->via.str.size : 1;
    printf ("%.*s%*s", size, str ? obj->via.str.ptr : "-", width > size ? width - size : 0, "");
}

static int
s_jobs_list (const char *service, const char *state, const char *limit)
{
    const char *params [] = { "state", state, "limit", limit, NULL, NULL };
    if (!limit)
        params [2] = NULL;
    tl_msg_t *reply = s_jobs_call (service, "jobs.list", params, 5000);
    if (!reply)
        return 1;
    const msgpack_object *items = tl_mp_get (tl_msg_body (reply), "items");
    printf ("%-8s %-8s %-24s %-9s %-21s %s\n",
            "ID", "STATE", "KIND", "ATTEMPTS", "RUN_AT", "UNIQUE_KEY / LAST_ERROR");
    for (uint32_t i = 0; items && items->type == MSGPACK_OBJECT_ARRAY
                      && i < items->via.array.size; i++) {
        const msgpack_object *item = &items->via.array.ptr [i];
        printf ("%-8lld ", s_int (tl_mp_get (item, "id")));
        s_print_field (tl_mp_get (item, "state"), 9);
        s_print_field (tl_mp_get (item, "kind"), 25);
        char attempts [48];
        snprintf (attempts, sizeof attempts, "%lld/%lld", s_int (tl_mp_get (item, "attempts")),
                  s_int (tl_mp_get (item, "max_attempts")));
        printf ("%-9s ", attempts);
        s_print_field (tl_mp_get (item, "run_at"), 22);
        s_print_field (tl_mp_get (item, "unique_key"), 0);
        const msgpack_object *error = tl_mp_get (item, "last_error");
        if (error && error->type == MSGPACK_OBJECT_STR) {
            printf ("  error: ");
            s_print_field (error, 0);
        }
        printf ("\n");
    }
    tl_msg_destroy (&reply);
    return 0;
}

static int
s_jobs_retry (const char *service, const char *id)
{
    const char *params [] = { "id", id, NULL, NULL };
    tl_msg_t *reply = s_jobs_call (service, "jobs.retry", params, 5000);
    if (!reply)
        return 1;
    printf ("job %s of %s is due again\n", id, service);
    tl_msg_destroy (&reply);
    return 0;
}

static int
s_jobs_run_due (const char *service, const char *at)
{
    const char *params [] = { "at", at, NULL, NULL };
    if (!at)
        params [0] = NULL;
    tl_msg_t *reply = s_jobs_call (service, "jobs.run_due", params, TL_MAX_DEADLINE_MSEC);
    if (!reply)
        return 1;
    const msgpack_object *body = tl_msg_body (reply);
    printf ("ran %lld job(s) due at %s, %lld failed\n", s_int (tl_mp_get (body, "ran")),
            at ? at : "now", s_int (tl_mp_get (body, "failed")));
    tl_msg_destroy (&reply);
    return 0;
}

//  tallyctl jobs list|retry|run-due SERVICE ...; returns the exit code.
static int
s_jobs (int argc, char *argv [])
{
    if (argc < 4)
        return -1;
    const char *command = argv [2];
    const char *service = argv [3];
    const char *state = "all", *limit = NULL, *at = NULL;
    int i = 4;
    if (streq (command, "retry"))
        return argc == 5 ? s_jobs_retry (service, argv [4]) : -1;
    for (; i + 1 < argc; i += 2) {
        if (streq (command, "list") && streq (argv [i], "--state"))
            state = argv [i + 1];
        else
        if (streq (command, "list") && streq (argv [i], "--limit"))
            limit = argv [i + 1];
        else
        if (streq (command, "run-due") && streq (argv [i], "--at"))
            at = argv [i + 1];
        else
            return -1;
    }
    if (i != argc)
        return -1;
    if (streq (command, "list"))
        return s_jobs_list (service, state, limit);
    if (streq (command, "run-due"))
        return s_jobs_run_due (service, at);
    return -1;
}

//  tallyctl user create --username U --email E [--super-admin]: the
//  password comes from stdin (one line), or a prompt on a terminal. The
//  first super admin is made this way, never by an open endpoint.
static int
s_user_create (int argc, char *argv [])
{
    const char *username = NULL, *email = NULL;
    bool super_admin = false;
    for (int i = 3; i < argc; i++) {
        if (streq (argv [i], "--super-admin"))
            super_admin = true;
        else
        if (streq (argv [i], "--username") && i + 1 < argc)
            username = argv [++i];
        else
        if (streq (argv [i], "--email") && i + 1 < argc)
            email = argv [++i];
        else
            return -1;
    }
    if (argc < 3 || !streq (argv [2], "create") || !username || !email)
        return -1;
    char password [1024] = "";
    if (isatty (STDIN_FILENO)) {
        const char *typed = getpass ("Password: ");
        snprintf (password, sizeof password, "%s", typed ? typed : "");
    }
    else
    if (!fgets (password, sizeof password, stdin))
        password [0] = 0;
    password [strcspn (password, "\r\n")] = 0;

    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    tl_mp_pack_kv (&pk, "username", username);
    tl_mp_pack_kv (&pk, "email", email);
    tl_mp_pack_kv (&pk, "password", password);
    tl_mp_pack_str (&pk, "super_admin");
    if (super_admin)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    memset (password, 0, sizeof password);
    const char *params [] = { NULL, NULL };
    tl_msg_t *reply = s_call ("auth", "admin.user.create", params, &body, 30000);
    memset (body.data, 0, body.size);
    msgpack_sbuffer_destroy (&body);
    if (!reply)
        return 1;
    const msgpack_object *id = tl_mp_get (tl_msg_body (reply), "id");
    printf ("created %s%s ", super_admin ? "super admin " : "user ", username);
    s_print_field (id, 0);
    printf ("\n");
    tl_msg_destroy (&reply);
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: tallyctl status            the mesh as each gateway of TALLY_MESH sees it\n"
        "       tallyctl ping              round trip to each gateway\n"
        "       tallyctl keygen NAME [DIR] [--peer service:NAME|operator|gateway]\n"
        "                                  write a CURVE certificate pair\n"
        "       tallyctl jobs list SERVICE [--state due|running|dead|done|all] [--limit N]\n"
        "       tallyctl jobs retry SERVICE ID\n"
        "       tallyctl jobs run-due SERVICE [--at RFC3339-TIME]\n"
        "       tallyctl user create --username U --email E [--super-admin]\n"
        "                                  (the password on stdin, or typed)\n");
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        s_usage ();
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    tl_curve_set_peer ("operator");     //  what it claims on an insecure mesh
    int rc = 2;
    if (streq (argv [1], "status"))
        rc = s_each_gateway (s_status_one);
    else
    if (streq (argv [1], "ping"))
        rc = s_each_gateway (s_ping_one);
    else
    if (streq (argv [1], "keygen") && argc >= 3) {
        const char *dir = ".", *peer = NULL;
        for (int i = 3; i < argc; i++)
            if (streq (argv [i], "--peer") && i + 1 < argc)
                peer = argv [++i];
            else
                dir = argv [i];
        rc = s_keygen (argv [2], dir, peer);
    }
    else
    if (streq (argv [1], "jobs") || streq (argv [1], "user")) {
        rc = streq (argv [1], "jobs") ? s_jobs (argc, argv) : s_user_create (argc, argv);
        if (rc < 0) {
            s_usage ();
            rc = 2;
        }
    }
    else
        s_usage ();
    zsys_shutdown ();
    return rc;
}
