//  tallyctl.c — the operator's tool. It talks to the mesh like any peer
//  (proto/PROTOCOL.md), so it works against any running Tally.
//
//    tallyctl status            every gateway of TALLY_MESH: its services,
//                               their queues and live instances
//    tallyctl ping              round trip to each gateway
//    tallyctl keygen NAME [DIR] a CURVE certificate pair: NAME, NAME_secret
#include "tl_client.h"
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
s_keygen (const char *name, const char *dir)
{
    zcert_t *cert = zcert_new ();
    if (!cert)
        return 1;
    zcert_set_meta (cert, "name", "%s", name);
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

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: tallyctl status            the mesh as each gateway of TALLY_MESH sees it\n"
        "       tallyctl ping              round trip to each gateway\n"
        "       tallyctl keygen NAME [DIR] write a CURVE certificate pair\n");
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
    int rc = 2;
    if (streq (argv [1], "status"))
        rc = s_each_gateway (s_status_one);
    else
    if (streq (argv [1], "ping"))
        rc = s_each_gateway (s_ping_one);
    else
    if (streq (argv [1], "keygen") && argc >= 3)
        rc = s_keygen (argv [2], argc >= 4 ? argv [3] : ".");
    else
        s_usage ();
    zsys_shutdown ();
    return rc;
}
