//  fuzz_streams.c — fuzz target for what a gateway's streams read from the
//  mesh (gateway/gw_streams.c) and what the notification service reads
//  from its callers (services/notification/nt_push.c). The input, when it
//  is one MessagePack value, is the body of a notification.push and of an
//  auth.user.changed broadcast, handed to a set with two streams of user
//  "u1" (one with a Last-Event-ID); whatever it holds, the broadcast is
//  handled or refused, never crashes, and the streams end cleanly. The
//  input as text is also a stream cursor and a notification's text: a
//  cursor is -1 or the digits' value, and text accepted is valid UTF-8.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "gw_streams.h"
#include "nt_push.h"
#include "tl_mp.h"
#include "tl_valid.h"

#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static struct MHD_Response *
s_open (gw_streams_t *streams, const char *last_event_id)
{
    tl_msg_t *request = tl_msg_new (TL_MSG_REQUEST);
    tl_msg_set_str (request, TL_MSG_USER_ID, "u1");
    int status = 0;
    struct MHD_Response *response = gw_streams_open (streams, NULL, &request, "t",
                                                     last_event_id, &status);
    s_check (response && status == 200 && !request);
    return response;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  As text: a cursor and a notification's text
    char *text = malloc (size + 1);
    memcpy (text, data, size);
    text [size] = 0;
    int64_t cursor = nt_push_cursor (text);
    s_check (cursor >= -1);
    if (cursor >= 0)
        s_check (strlen (text) >= 1 && strlen (text) <= 18);
    if (nt_push_text_ok (text, 2000, true))
        s_check (tl_valid_utf8_chars (text, strlen (text)) >= 1);

    //  As a broadcast body
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    msgpack_object body;
    if (tl_mp_unpack ((const char *) data, size, &zone, &body) == 0) {
        gw_streams_t *streams = gw_streams_new (NULL);
        struct MHD_Response *one = s_open (streams, NULL);
        struct MHD_Response *two = s_open (streams, text);
        gw_streams_on_broadcast (streams, "notification.push", &body);
        gw_streams_on_broadcast (streams, "auth.user.changed", &body);
        gw_streams_tick (streams, 1 << 30);
        gw_streams_close_all (streams);
        MHD_destroy_response (one);
        MHD_destroy_response (two);
        s_check (gw_streams_size (streams) == 0);
        gw_streams_destroy (&streams);
    }
    msgpack_zone_destroy (&zone);
    free (text);
    return 0;
}
