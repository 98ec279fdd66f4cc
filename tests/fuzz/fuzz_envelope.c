//  fuzz_envelope.c — fuzz target for the mesh envelope decoder: every frame
//  a gateway or a worker reads comes from a peer, so no bytes may crash,
//  leak, or make it read outside the frame or allocate without bound.
//  The input is one frame: pre-scanned by tl_mp_scan, then decoded by
//  tl_msg_decode (and the message destroyed when it decoded).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tl_error.h"
#include "tl_mp.h"
#include "tl_msg.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t used = 0;
    int rc = tl_mp_scan ((const char *) data, size, &used);
    s_check (rc <= 0);
    if (rc == 0)
        s_check (used > 0 && used <= size);

    tl_msg_t *msg = NULL;
    rc = tl_msg_decode (data, size, &msg);
    s_check (rc <= 0);
    if (rc == 0) {
        s_check (msg);
        tl_msg_destroy (&msg);
        s_check (msg == NULL);
    }
    return 0;
}
