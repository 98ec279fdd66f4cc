//  selftest_main.c — runs the self-test of one class, or of all of them.
//  Usage: <runner> [-v] [class ...]. Each self-test asserts; a failure aborts
//  the process, which ctest reports with the class's name.
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>

typedef struct { const char *name; void (*fn) (bool); } selftest_t;
extern const selftest_t tl_selftests[];

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int first = 1;
    if (argc > 1 && streq (argv [1], "-v")) {
        verbose = true;
        first = 2;
    }
    zsys_init ();
    int ran = 0;
    for (const selftest_t *t = tl_selftests; t->name; t++) {
        bool wanted = first >= argc;
        for (int i = first; i < argc; i++)
            if (streq (argv [i], t->name))
                wanted = true;
        if (!wanted)
            continue;
        printf (" * %s: ", t->name);
        fflush (stdout);
        t->fn (verbose);
        printf ("OK\n");
        ran++;
    }
    zsys_shutdown ();
    if (ran == 0) {
        fprintf (stderr, "no self-test matched\n");
        return 1;
    }
    return 0;
}
