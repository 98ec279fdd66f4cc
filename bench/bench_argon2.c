//  bench_argon2.c — the ceiling of a login: how many argon2id password
//  checks (crypto_pwhash_str_verify at libsodium's INTERACTIVE limits, the
//  limits tally-auth uses) this machine does per second, on one thread and
//  on THREADS threads at once. bench/auth.sh sets the login figures beside
//  these.
//
//    bench-argon2 SECONDS THREADS
//  prints: "argon2id threads=T checks=N seconds=S per_second=R mean_ms=M"
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char s_hash [crypto_pwhash_STRBYTES];
static int64_t s_until_ns;

typedef struct {
    long checks;
} s_worker_t;

static void *
s_worker (void *arg)
{
    s_worker_t *worker = (s_worker_t *) arg;
    const char *password = "correct horse battery";
    while (bench_now_ns () < s_until_ns) {
        if (crypto_pwhash_str_verify (s_hash, password, strlen (password)) != 0)
            abort ();
        worker->checks++;
    }
    return NULL;
}

int
main (int argc, char *argv [])
{
    double seconds = argc > 1 ? atof (argv [1]) : 5;
    int threads = argc > 2 ? atoi (argv [2]) : 1;
    if (sodium_init () < 0 || seconds <= 0 || threads < 1 || threads > 64) {
        fprintf (stderr, "usage: bench-argon2 SECONDS THREADS\n");
        return 2;
    }
    const char *password = "correct horse battery";
    if (crypto_pwhash_str (s_hash, password, strlen (password),
                           crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return 1;
    pthread_t ids [64];
    s_worker_t workers [64] = { { 0 } };
    int64_t start = bench_now_ns ();
    s_until_ns = start + (int64_t) (seconds * 1e9);
    for (int i = 0; i < threads; i++)
        pthread_create (&ids [i], NULL, s_worker, &workers [i]);
    long checks = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join (ids [i], NULL);
        checks += workers [i].checks;
    }
    double elapsed = (double) (bench_now_ns () - start) / 1e9;
    printf ("argon2id threads=%d checks=%ld seconds=%.2f per_second=%.1f mean_ms=%.1f\n",
            threads, checks, elapsed, (double) checks / elapsed,
            checks ? elapsed * 1000.0 * threads / (double) checks : 0.0);
    return 0;
}
