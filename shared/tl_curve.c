//  tl_curve.c — CURVE security for mesh links, configured by environment.
#include "tl_curve.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"

static char s_peer [TL_MAX_NAME_LEN + 16];

bool
tl_curve_valid_peer (const char *identity)
{
    if (!identity)
        return false;
    if (streq (identity, "operator") || streq (identity, "gateway"))
        return true;
    return strncmp (identity, "service:", 8) == 0 && identity [8]
        && strlen (identity + 8) <= TL_MAX_NAME_LEN;
}

void
tl_curve_set_peer (const char *identity)
{
    snprintf (s_peer, sizeof s_peer, "%s", identity ? identity : "");
}

const char *
tl_curve_peer (void)
{
    return *s_peer ? s_peer : NULL;
}

bool
tl_curve_endpoint_local (const char *endpoint)
{
    static const char *local [] = {
        "tcp://127.", "tcp://localhost:", "tcp://[::1]:", "ipc://", "inproc://", NULL
    };
    for (int i = 0; local [i]; i++)
        if (strncmp (endpoint, local [i], strlen (local [i])) == 0)
            return true;
    return false;
}

//  No keys: allowed on loopback, or when the operator says so out loud.
static int
s_insecure (const char *endpoint)
{
    bool insecure = tl_env_flag ("TALLY_MESH_INSECURE", false);
    if (tl_curve_endpoint_local (endpoint)) {
        tl_log (TL_LOG_INFO, NULL, "mesh backend %s without CURVE (loopback only): "
                "peers' identities are claimed, not proven", endpoint);
        return 0;
    }
    if (insecure) {
        tl_log (TL_LOG_WARN, NULL, "!!! TALLY_MESH_INSECURE=1: mesh backend %s is open "
                "WITHOUT CURVE: anyone who reaches it can claim to be any service or the "
                "operator. Use keys (TALLY_CURVE_SERVER_CERT) off a private network !!!", endpoint);
        return 0;
    }
    tl_log (TL_LOG_ERROR, NULL, "mesh backend %s is not loopback: set TALLY_CURVE_SERVER_CERT "
            "and TALLY_CURVE_ALLOW_DIR (or TALLY_MESH_INSECURE=1 on a trusted network)", endpoint);
    return TL_ECONFIG;
}

int
tl_curve_server (zsock_t *sock, const char *endpoint, zactor_t **auth_p)
{
    *auth_p = NULL;
    const char *cert_path = tl_env ("TALLY_CURVE_SERVER_CERT", NULL);
    if (!cert_path)
        return s_insecure (endpoint);
    const char *allow = tl_env ("TALLY_CURVE_ALLOW_DIR", NULL);
    if (!allow) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_CURVE_SERVER_CERT needs TALLY_CURVE_ALLOW_DIR");
        return TL_ECONFIG;
    }
    zcert_t *cert = zcert_load (cert_path);
    if (!cert) {
        tl_log (TL_LOG_ERROR, NULL, "cannot load certificate %s", cert_path);
        return TL_ECONFIG;
    }
    zactor_t *auth = zactor_new (zauth, NULL);
    if (!auth) {
        zcert_destroy (&cert);
        return TL_ECONFIG;
    }
    zstr_sendx (auth, "CURVE", allow, NULL);
    zsock_wait (auth);
    zcert_apply (cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, "tally");
    zcert_destroy (&cert);
    *auth_p = auth;
    tl_log (TL_LOG_INFO, NULL, "mesh backend uses CURVE; peers allowed from %s", allow);
    return 0;
}

int
tl_curve_client (zsock_t *sock)
{
    const char *cert_path = tl_env ("TALLY_CURVE_CLIENT_CERT", NULL);
    const char *server_path = tl_env ("TALLY_CURVE_SERVER_PUBLIC", NULL);
    if (!cert_path && !server_path)
        return 0;
    if (!cert_path || !server_path) {
        tl_log (TL_LOG_ERROR, NULL,
                "CURVE needs both TALLY_CURVE_CLIENT_CERT and TALLY_CURVE_SERVER_PUBLIC");
        return TL_ECONFIG;
    }
    zcert_t *cert = zcert_load (cert_path);
    zcert_t *server = zcert_load (server_path);
    int rc = 0;
    if (!cert || !server) {
        tl_log (TL_LOG_ERROR, NULL, "cannot load CURVE certificates");
        rc = TL_ECONFIG;
    }
    else {
        zcert_apply (cert, sock);
        zsock_set_curve_serverkey (sock, zcert_public_txt (server));
    }
    zcert_destroy (&cert);
    zcert_destroy (&server);
    return rc;
}

void
tl_curve_test (bool verbose)
{
    //  A CURVE server accepts a client whose public certificate is in the
    //  allow folder, over real TCP.
    char dir [] = "/tmp/tl_curve_test_XXXXXX";
    assert (mkdtemp (dir));
    char allow [128], server_path [128], client_path [128], server_pub [160];
    snprintf (allow, sizeof allow, "%s/allow", dir);
    assert (zsys_dir_create ("%s", allow) == 0);
    snprintf (server_path, sizeof server_path, "%s/server", dir);
    snprintf (client_path, sizeof client_path, "%s/client", dir);
    snprintf (server_pub, sizeof server_pub, "%s/server", dir);
    zcert_t *server = zcert_new ();
    zcert_t *client = zcert_new ();
    zcert_save (server, server_path);           //  writes server and server_secret
    zcert_save (client, client_path);
    char client_pub [160];
    snprintf (client_pub, sizeof client_pub, "%s/client.pub", allow);
    zcert_save_public (client, client_pub);

    char secret [160];
    snprintf (secret, sizeof secret, "%s_secret", server_path);
    setenv ("TALLY_CURVE_SERVER_CERT", secret, 1);
    setenv ("TALLY_CURVE_ALLOW_DIR", allow, 1);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zactor_t *auth = NULL;
    assert (tl_curve_server (router, "tcp://0.0.0.0:*", &auth) == 0 && auth);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);

    snprintf (secret, sizeof secret, "%s_secret", client_path);
    setenv ("TALLY_CURVE_CLIENT_CERT", secret, 1);
    setenv ("TALLY_CURVE_SERVER_PUBLIC", server_pub, 1);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (tl_curve_client (dealer) == 0);
    zsock_connect (dealer, "tcp://127.0.0.1:%d", port);
    zstr_send (dealer, "hello");
    zsock_set_rcvtimeo (router, 3000);
    zmsg_t *msg = zmsg_recv (router);
    assert (msg && zmsg_size (msg) == 2);
    zmsg_destroy (&msg);

    //  An unknown client's key is refused: nothing arrives.
    zcert_t *stranger = zcert_new ();
    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    zcert_apply (stranger, rogue);
    zsock_set_curve_serverkey (rogue, zcert_public_txt (server));
    zsock_connect (rogue, "tcp://127.0.0.1:%d", port);
    zstr_send (rogue, "let me in");
    zsock_set_rcvtimeo (router, 300);
    msg = zmsg_recv (router);
    assert (msg == NULL);
    zsock_set_linger (rogue, 0);
    zsock_set_linger (dealer, 0);
    zsock_destroy (&rogue);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    zactor_destroy (&auth);
    zcert_destroy (&stranger);
    zcert_destroy (&server);
    zcert_destroy (&client);
    unsetenv ("TALLY_CURVE_SERVER_CERT");
    unsetenv ("TALLY_CURVE_ALLOW_DIR");
    unsetenv ("TALLY_CURVE_CLIENT_CERT");
    unsetenv ("TALLY_CURVE_SERVER_PUBLIC");
    zsys_dir_delete ("%s", allow);      //  only empty dirs: remove files first
    char cmd [200];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    //  Identities
    assert (tl_curve_valid_peer ("service:auth") && tl_curve_valid_peer ("operator"));
    assert (tl_curve_valid_peer ("gateway") && !tl_curve_valid_peer ("service:"));
    assert (!tl_curve_valid_peer ("root") && !tl_curve_valid_peer (NULL));
    if (verbose)
        printf ("(curve ok) ");
}
