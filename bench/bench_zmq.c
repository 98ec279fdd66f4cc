//  bench_zmq.c — the bare ZeroMQ baseline: a REQ client and a REP echo
//  server (a separate process, as a worker is) over tcp loopback; N
//  sequential round trips after WARMUP, with REQ_BYTES out and REP_BYTES
//  back (the sizes of the mesh envelopes, printed by bench-mesh).
//
//  Usage: bench-zmq [N [WARMUP [REQ_BYTES [REP_BYTES]]]]
#include "bench_common.h"

#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static int
s_server (int port_fd, size_t rep_bytes)
{
    void *ctx = zmq_ctx_new ();
    void *rep = zmq_socket (ctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt (rep, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind (rep, "tcp://127.0.0.1:*") != 0)
        return 1;
    char endpoint [128];
    size_t len = sizeof endpoint;
    zmq_getsockopt (rep, ZMQ_LAST_ENDPOINT, endpoint, &len);
    if (write (port_fd, endpoint, strlen (endpoint) + 1) < 0)
        return 1;
    close (port_fd);
    char *reply = calloc (1, rep_bytes ? rep_bytes : 1);
    memset (reply, 'r', rep_bytes);
    char buf [65536];
    while (true) {
        int rc = zmq_recv (rep, buf, sizeof buf, 0);
        if (rc < 0)
            break;
        if (rc == 1 && buf [0] == 'Q') {
            zmq_send (rep, "Q", 1, 0);
            break;
        }
        zmq_send (rep, reply, rep_bytes, 0);
    }
    zmq_close (rep);
    zmq_ctx_term (ctx);
    free (reply);
    return 0;
}

int
main (int argc, char *argv [])
{
    size_t n = argc > 1 ? (size_t) atol (argv [1]) : 20000;
    size_t warmup = argc > 2 ? (size_t) atol (argv [2]) : 2000;
    size_t req_bytes = argc > 3 ? (size_t) atol (argv [3]) : 64;
    size_t rep_bytes = argc > 4 ? (size_t) atol (argv [4]) : 64;
    if (n < 1)
        n = 1;
    if (req_bytes < 2)
        req_bytes = 2;          //  a 1-byte "Q" tells the server to stop
    int fds [2];
    if (pipe (fds))
        return 1;
    //  Fork before any ZeroMQ context exists.
    pid_t child = fork ();
    if (child < 0)
        return 1;
    if (child == 0) {
        close (fds [0]);
        _exit (s_server (fds [1], rep_bytes));
    }
    close (fds [1]);
    char endpoint [128] = "";
    ssize_t got = read (fds [0], endpoint, sizeof endpoint - 1);
    close (fds [0]);
    if (got <= 0) {
        kill (child, SIGKILL);
        waitpid (child, NULL, 0);
        return 1;
    }

    void *ctx = zmq_ctx_new ();
    void *req = zmq_socket (ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger);
    int timeout = 5000;
    zmq_setsockopt (req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_connect (req, endpoint);
    char *request = calloc (1, req_bytes);
    memset (request, 'q', req_bytes);
    char buf [65536];
    int64_t *samples = calloc (n, sizeof *samples);
    int rc = 0;
    for (size_t i = 0; i < warmup + n; i++) {
        int64_t t0 = bench_now_ns ();
        zmq_send (req, request, req_bytes, 0);
        int got_bytes = zmq_recv (req, buf, sizeof buf, 0);
        int64_t t1 = bench_now_ns ();
        if (got_bytes != (int) rep_bytes) {
            fprintf (stderr, "bench-zmq: bad reply at %zu\n", i);
            rc = 1;
            break;
        }
        if (i >= warmup)
            samples [i - warmup] = t1 - t0;
    }
    if (rc == 0) {
        zmq_send (req, "Q", 1, 0);
        zmq_recv (req, buf, sizeof buf, 0);     //  the server acknowledges and leaves
        bench_report ("bare", samples, n, req_bytes, rep_bytes);
    }
    zmq_close (req);
    zmq_ctx_term (ctx);
    kill (child, SIGTERM);
    waitpid (child, NULL, 0);
    free (samples);
    free (request);
    return rc;
}
