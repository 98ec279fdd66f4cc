//  auth_password.c — argon2id password hashes under a concurrency bound
//  (see auth_password.h).
#include "auth_password.h"
#include "tl_error.h"
#include "auth_limits.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static unsigned long long s_opslimit;
static size_t s_memlimit;
static sem_t s_slots;
static bool s_ready;
static atomic_int s_running;
static char s_dummy [AUTH_PASSWORD_HASH_LEN];

int
auth_password_init (unsigned long long opslimit, size_t memlimit, int max_parallel)
{
    if (opslimit == 0)
        opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    if (memlimit == 0)
        memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    if (opslimit < crypto_pwhash_OPSLIMIT_INTERACTIVE
    ||  memlimit < crypto_pwhash_MEMLIMIT_INTERACTIVE
    ||  opslimit > crypto_pwhash_OPSLIMIT_MAX || memlimit > crypto_pwhash_MEMLIMIT_MAX
    ||  max_parallel < 1 || max_parallel > AUTH_HASHES_MAX)
        return TL_EINVAL;
    auth_password_shutdown ();
    s_opslimit = opslimit;
    s_memlimit = memlimit;
    if (sem_init (&s_slots, 0, (unsigned) max_parallel) != 0)
        return TL_ENOMEM;
    s_ready = true;
    //  The dummy: a hash of a random password nobody knows.
    unsigned char secret [32];
    char text [65];
    randombytes_buf (secret, sizeof secret);
    sodium_bin2hex (text, sizeof text, secret, sizeof secret);
    int rc = auth_password_hash (text, s_dummy);
    sodium_memzero (text, sizeof text);
    if (rc)
        auth_password_shutdown ();
    return rc;
}

void
auth_password_shutdown (void)
{
    if (s_ready)
        sem_destroy (&s_slots);
    s_ready = false;
}

//  Takes a slot if one is free now. Never waits: a request that waited
//  would hold its handler thread, and session.check, which every
//  authenticated request needs, would queue behind it. Returns 0 or
//  TL_EBUSY.
static int
s_acquire (void)
{
    assert (s_ready);
    while (sem_trywait (&s_slots) != 0)
        if (errno != EINTR)
            return TL_EBUSY;
    atomic_fetch_add (&s_running, 1);
    return 0;
}

static void
s_release (void)
{
    atomic_fetch_sub (&s_running, 1);
    sem_post (&s_slots);
}

int
auth_password_hash (const char *password, char hash [AUTH_PASSWORD_HASH_LEN])
{
    int rc = s_acquire ();
    if (rc)
        return rc;
    rc = crypto_pwhash_str (hash, password, strlen (password), s_opslimit, s_memlimit);
    s_release ();
    return rc == 0 ? 0 : TL_ENOMEM;
}

int
auth_password_verify (const char *stored, const char *password)
{
    int rc = s_acquire ();
    if (rc)
        return rc;
    char against [AUTH_PASSWORD_HASH_LEN] = "";
    if (stored && strlen (stored) < sizeof against)
        strcpy (against, stored);
    else
        strcpy (against, s_dummy);      //  unknown user, or a stored value too long
    bool match = crypto_pwhash_str_verify (against, password, strlen (password)) == 0;
    s_release ();
    return stored && match ? 1 : 0;
}

bool
auth_password_needs_rehash (const char *stored)
{
    //  libsodium's prototype promises a full buffer: give it one.
    char padded [AUTH_PASSWORD_HASH_LEN] = "";
    if (strlen (stored) >= sizeof padded)
        return true;
    strcpy (padded, stored);
    return crypto_pwhash_str_needs_rehash (padded, s_opslimit, s_memlimit) != 0;
}

int
auth_password_running (void)
{
    return atomic_load (&s_running);
}

//  --------------------------------------------------------------------------
//  Self-test. It checks with assert whatever the build type.

typedef struct {
    int rc;
    char hash [AUTH_PASSWORD_HASH_LEN];
} s_flood_t;

static void *
s_flood_hash (void *arg)
{
    s_flood_t *flood = (s_flood_t *) arg;
    flood->rc = auth_password_hash ("correct horse battery", flood->hash);
    return NULL;
}

void
auth_password_test (bool verbose)
{
    assert (sodium_init () >= 0);
    //  Limits below INTERACTIVE are refused
    assert (auth_password_init (1, 0, 1) == TL_EINVAL);
    assert (auth_password_init (0, 1024 * 1024, 1) == TL_EINVAL);
    assert (auth_password_init (0, 0, 0) == TL_EINVAL);
    assert (auth_password_init (0, 0, AUTH_HASHES_MAX + 1) == TL_EINVAL);
    assert (auth_password_init (0, 0, 2) == 0);

    //  argon2id, verifiable, salted
    char one [AUTH_PASSWORD_HASH_LEN], two [AUTH_PASSWORD_HASH_LEN];
    assert (auth_password_hash ("correct horse battery", one) == 0);
    assert (auth_password_hash ("correct horse battery", two) == 0);
    assert (strncmp (one, "$argon2id$", 10) == 0);
    assert (strcmp (one, two) != 0);
    assert (strstr (one, "correct") == NULL);
    assert (auth_password_verify (one, "correct horse battery") == 1);
    assert (auth_password_verify (two, "correct horse battery") == 1);
    assert (auth_password_verify (one, "correct horse batterY") == 0);
    assert (auth_password_verify (one, "") == 0);
    //  An unknown user never matches, whatever the password
    assert (auth_password_verify (NULL, "correct horse battery") == 0);
    assert (auth_password_verify (NULL, "") == 0);
    //  The dummy costs about what a real check costs
    struct timespec t0, t1, t2;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    auth_password_verify (one, "wrong password here");
    clock_gettime (CLOCK_MONOTONIC, &t1);
    auth_password_verify (NULL, "wrong password here");
    clock_gettime (CLOCK_MONOTONIC, &t2);
    double real = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double dummy = (double) (t2.tv_sec - t1.tv_sec) + (double) (t2.tv_nsec - t1.tv_nsec) / 1e9;
    if (verbose)
        printf ("(real %.0f ms, dummy %.0f ms) ", real * 1e3, dummy * 1e3);

    //  Rehash when the limits rise, not when they are the same
    assert (!auth_password_needs_rehash (one));
    assert (auth_password_needs_rehash ("$2y$10$notargon"));
    auth_password_shutdown ();
    assert (auth_password_init (crypto_pwhash_OPSLIMIT_INTERACTIVE + 1, 0, 2) == 0);
    assert (auth_password_needs_rehash (one));
    assert (auth_password_verify (one, "correct horse battery") == 1);  //  still verifies
    char three [AUTH_PASSWORD_HASH_LEN];
    assert (auth_password_hash ("correct horse battery", three) == 0);
    assert (!auth_password_needs_rehash (three));
    auth_password_shutdown ();

    //  The bound: with one slot, a flood of 6 hashes runs one at a time,
    //  and those that cannot start at once get TL_EBUSY (never more than
    //  one in flight: `running` never passes 1).
    assert (auth_password_init (0, 0, 1) == 0);
    enum { FLOOD = 6 };
    pthread_t threads [FLOOD];
    s_flood_t floods [FLOOD];
    for (int i = 0; i < FLOOD; i++)
        assert (pthread_create (&threads [i], NULL, s_flood_hash, &floods [i]) == 0);
    int peak = 0;
    for (int spin = 0; spin < 200; spin++) {
        int now = auth_password_running ();
        peak = now > peak ? now : peak;
        struct timespec nap = { 0, 5 * 1000000L };
        nanosleep (&nap, NULL);
    }
    int done = 0, busy = 0;
    for (int i = 0; i < FLOOD; i++) {
        pthread_join (threads [i], NULL);
        assert (floods [i].rc == 0 || floods [i].rc == TL_EBUSY);
        done += floods [i].rc == 0;
        busy += floods [i].rc == TL_EBUSY;
    }
    assert (peak == 1);
    assert (done >= 1 && done + busy == FLOOD);
    assert (auth_password_running () == 0);
    //  With the only slot held, a hash gives up at once
    assert (s_acquire () == 0);
    char four [AUTH_PASSWORD_HASH_LEN];
    assert (auth_password_hash ("correct horse battery", four) == TL_EBUSY);
    assert (auth_password_verify (one, "correct horse battery") == TL_EBUSY);
    s_release ();
    assert (auth_password_verify (one, "correct horse battery") == 1);
    auth_password_shutdown ();
    auth_password_shutdown ();
    if (verbose)
        printf ("(auth_password: argon2id, dummy, rehash, bound: %d done, %d busy) ",
                done, busy);
}
