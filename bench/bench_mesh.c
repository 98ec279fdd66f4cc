//  bench_mesh.c — the mesh round trip: a tl_client (one DEALER, as services
//  and tallyctl use it) calls SERVICE.METHOD through a gateway's backend,
//  N sequential calls after WARMUP calls, and prints the latency
//  distribution of one call (send, gateway broker, worker, reply back).
//
//  Usage: bench-mesh ENDPOINT [N [WARMUP [SERVICE [METHOD]]]]
#include "bench_common.h"
#include "tl_client.h"
#include "tl_error.h"

#include <string.h>

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: bench-mesh ENDPOINT [N [WARMUP [SERVICE [METHOD]]]]\n");
        return 2;
    }
    const char *endpoint = argv [1];
    size_t n = argc > 2 ? (size_t) atol (argv [2]) : 20000;
    size_t warmup = argc > 3 ? (size_t) atol (argv [3]) : 2000;
    const char *service = argc > 4 ? argv [4] : "testsvc";
    const char *method = argc > 5 ? argv [5] : "echo.get";
    if (n < 1)
        n = 1;
    tl_client_t *client = tl_client_new (endpoint);
    if (!client) {
        fprintf (stderr, "bench-mesh: bad endpoint %s\n", endpoint);
        return 1;
    }
    int64_t *samples = calloc (n, sizeof *samples);
    size_t req_bytes = 0, rep_bytes = 0;
    int rc = 0;
    for (size_t i = 0; i < warmup + n && rc == 0; i++) {
        tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
        tl_msg_set_str (request, TL_MSG_SERVICE, service);
        tl_msg_set_str (request, TL_MSG_METHOD, method);
        tl_msg_set_deadline (request, tl_msg_now_ms () + 5000);
        tl_msg_t *reply = NULL;
        int64_t t0 = bench_now_ns ();
        rc = tl_client_call (client, request, &reply);
        int64_t t1 = bench_now_ns ();
        if (rc == 0 && tl_msg_status (reply) != 200) {
            fprintf (stderr, "bench-mesh: call %zu answered %d\n", i, tl_msg_status (reply));
            rc = TL_EIO;
        }
        if (rc == 0 && i >= warmup)
            samples [i - warmup] = t1 - t0;
        if (rc == 0 && i == warmup) {
            //  Sizes of the frames on the wire (the id is the client's own).
            char *data = NULL;
            size_t size = 0;
            if (tl_msg_encode (request, &data, &size) == 0)
                req_bytes = size;
            free (data);
            if (tl_msg_encode (reply, &data, &size) == 0)
                rep_bytes = size;
            free (data);
        }
        tl_msg_destroy (&reply);
        tl_msg_destroy (&request);
    }
    if (rc)
        fprintf (stderr, "bench-mesh: call failed: %s\n", tl_strerror (rc));
    else
        bench_report ("mesh", samples, n, req_bytes, rep_bytes);
    free (samples);
    tl_client_destroy (&client);
    return rc ? 1 : 0;
}
