//  nt_push.h — a notification as the service checks, shows and pushes it:
//  the checks of its plain texts, the cursor of a stream (Last-Event-ID),
//  its shape in replies, and the body of the push every gateway hears
//  (notification.push: {user_id, seq?, notification?, unread_count?,
//  version?}).
#ifndef NT_PUSH_H_INCLUDED
#define NT_PUSH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <msgpack.h>

//  The broadcast topic of pushes.
#define NT_PUSH_TOPIC "notification.push"

//  One notification as clients see it. Every pointer is borrowed.
typedef struct {
    const char *id;                 //  UUID
    int64_t seq;                    //  per-user sequence, the SSE id
    const char *title;
    const char *message;
    const char *action;             //  NULL when none
    const char *target_url;         //  NULL when none
    const char *received_at;        //  RFC 3339
    bool has_read;
} nt_item_t;

//  True when `text` is valid UTF-8 of 1..`max` characters without control
//  characters; line breaks and tabs are allowed when `lines`.
bool nt_push_text_ok (const char *text, long max, bool lines);

//  Reads a stream's cursor (Last-Event-ID, or the last_event_id param):
//  1 to 18 decimal digits. Returns it, or -1 when `text` is NULL or
//  anything else (negative, not a number, huge): then it counts as absent.
int64_t nt_push_cursor (const char *text);

//  Packs `item` as a map {id, seq, title, message, action, target_url,
//  received_at, has_read}.
void nt_push_pack_item (msgpack_packer *pk, const nt_item_t *item);

//  Writes the push body for `user_id` into `sbuf` (initialised by the
//  caller): {user_id, unread_count, version} and, with an item, its seq
//  and the item as "notification". `version` orders the user's counts
//  (counters.version). A negative `unread` leaves both out.
void nt_push_body (msgpack_sbuffer *sbuf, const char *user_id, const nt_item_t *item,
                   long unread, int64_t version);

//  Self-test, run by ctest.
void nt_push_test (bool verbose);

#endif
