//  fuzz_fmd.c — fuzz target for API monitoring's readers of a remote
//  dashboard's export (services/analytics: an_jwt, an_fmd). The first
//  byte picks the reader, the rest is the body: 0 a JWT to
//  an_jwt_verify_data (key "k"), 1 get_json_details to
//  an_fmd_details_parse, 2 the calls and 3 the rules of a verified "data"
//  claim, 4 an FMD time. Beyond "no crash, no leak": a token that
//  verifies gives back the same data when its data is signed again; a
//  refused list has a reason; every call read has a non-empty endpoint,
//  a finite time >= 0 and a time that formats and reads back the same.
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "an_fmd.h"
#include "an_jwt.h"
#include "tl_error.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static void
s_jwt (const char *body, size_t size)
{
    char *data = NULL;
    int rc = an_jwt_verify_data (body, size, "k", 1, &data);
    s_check ((rc == 0) == (data != NULL));
    if (rc == 0) {
        char *token = an_jwt_sign_data (data, "k", 1);
        if (token) {            //  NULL for data that is not UTF-8
            char *again = NULL;
            s_check (an_jwt_verify_data (token, strlen (token), "k", 1, &again) == 0);
            s_check (strcmp (again, data) == 0);
            char *other = NULL;
            s_check (an_jwt_verify_data (token, strlen (token), "K", 1, &other) == TL_EPROTO);
            s_check (other == NULL);
            free (again);
            free (token);
        }
    }
    free (data);
}

static void
s_time_round_trip (int64_t time_us)
{
    char text [32];
    an_fmd_time_format (time_us, text);
    int64_t again;
    s_check (an_fmd_time_parse (text, &again) == 0 && again == time_us);
}

static void
s_lists (const char *body, size_t size, bool calls)
{
    int err = 0;
    char why [128] = "";
    an_fmd_list_t *list = calls ? an_fmd_calls_new (body, size, &err, why, sizeof why)
                                : an_fmd_rules_new (body, size, &err, why, sizeof why);
    if (!list) {
        s_check (err < 0);
        return;
    }
    for (size_t i = 0; i < an_fmd_list_size (list); i++) {
        if (calls) {
            const an_fmd_call_t *call = an_fmd_list_call (list, i);
            s_check (call && call->endpoint [0]);
            s_check (isfinite (call->execution_ms) && call->execution_ms >= 0);
            s_time_round_trip (call->time_us);
        }
        else {
            const an_fmd_rule_t *rule = an_fmd_list_rule (list, i);
            s_check (rule && rule->endpoint [0]);
        }
    }
    an_fmd_list_destroy (&list);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *) data + 1;
    size_t len = size - 1;
    switch (data [0] % 5) {
        case 0:
            s_jwt (body, len);
            break;
        case 1: {
            an_fmd_details_t details;
            if (an_fmd_details_parse (body, len, &details) == 0)
                s_check (details.first_request >= -1 && details.version [0]);
            break;
        }
        case 2:
            s_lists (body, len, true);
            break;
        case 3:
            s_lists (body, len, false);
            break;
        default: {
            //  Not strndup: it may read the input as a C string past `len`
            char *text = malloc (len + 1);
            if (text) {
                memcpy (text, body, len);
                text [len] = 0;
            }
            int64_t time_us;
            if (text && an_fmd_time_parse (text, &time_us) == 0)
                s_time_round_trip (time_us);
            free (text);
        }
    }
    return 0;
}
