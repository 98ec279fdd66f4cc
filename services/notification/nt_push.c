//  nt_push.c — a notification's checks, shape and push body (nt_push.h).
#include "nt_push.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
nt_push_text_ok (const char *text, long max, bool lines)
{
    if (!text)
        return false;
    size_t size = strlen (text);
    long chars = tl_valid_utf8_chars (text, size);
    if (chars < 1 || chars > max)
        return false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        bool control = *c < 0x20 || *c == 0x7f;
        if (control && !(lines && (*c == '\n' || *c == '\t' || *c == '\r')))
            return false;
        //  C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8
        if (*c == 0xc2 && c [1] >= 0x80 && c [1] <= 0x9f)
            return false;
    }
    return true;
}

int64_t
nt_push_cursor (const char *text)
{
    if (!text || !*text)
        return -1;
    int64_t value = 0;
    size_t digits = 0;
    for (const char *c = text; *c; c++, digits++) {
        if (*c < '0' || *c > '9' || digits >= 18)
            return -1;
        value = value * 10 + (*c - '0');
    }
    return value;
}

void
nt_push_pack_item (msgpack_packer *pk, const nt_item_t *item)
{
    msgpack_pack_map (pk, 8);
    tl_mp_pack_kv (pk, "id", item->id);
    tl_mp_pack_str (pk, "seq");
    msgpack_pack_int64 (pk, item->seq);
    tl_mp_pack_kv (pk, "title", item->title);
    tl_mp_pack_kv (pk, "message", item->message);
    tl_mp_pack_kv (pk, "action", item->action);
    tl_mp_pack_kv (pk, "target_url", item->target_url);
    tl_mp_pack_kv (pk, "received_at", item->received_at);
    tl_mp_pack_str (pk, "has_read");
    if (item->has_read)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

void
nt_push_body (msgpack_sbuffer *sbuf, const char *user_id, const nt_item_t *item, long unread,
              int64_t version)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1 + (item ? 2 : 0) + (unread >= 0 ? 2 : 0));
    tl_mp_pack_kv (&pk, "user_id", user_id);
    if (item) {
        tl_mp_pack_str (&pk, "seq");
        msgpack_pack_int64 (&pk, item->seq);
        tl_mp_pack_str (&pk, "notification");
        nt_push_pack_item (&pk, item);
    }
    if (unread >= 0) {
        tl_mp_pack_str (&pk, "unread_count");
        msgpack_pack_long (&pk, unread);
        tl_mp_pack_str (&pk, "version");
        msgpack_pack_int64 (&pk, version);
    }
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_test_text (void)
{
    assert (nt_push_text_ok ("Order paid", 200, false));
    assert (nt_push_text_ok ("caf\xc3\xa9", 4, false));
    assert (!nt_push_text_ok ("caf\xc3\xa9", 3, false));
    assert (!nt_push_text_ok ("", 200, false));
    assert (!nt_push_text_ok (NULL, 200, false));
    assert (!nt_push_text_ok ("two\nlines", 200, false));
    assert (nt_push_text_ok ("two\nlines", 200, true));
    assert (!nt_push_text_ok ("bell\a", 200, true));
    assert (!nt_push_text_ok ("c1 \xc2\x85", 200, true));
    assert (!nt_push_text_ok ("bad \xff utf-8", 200, true));
}

static void
s_test_cursor (void)
{
    assert (nt_push_cursor ("0") == 0);
    assert (nt_push_cursor ("42") == 42);
    assert (nt_push_cursor ("999999999999999999") == 999999999999999999LL);
    assert (nt_push_cursor ("9999999999999999999") == -1);     //  huge
    assert (nt_push_cursor ("-1") == -1);                      //  negative
    assert (nt_push_cursor ("abc") == -1);
    assert (nt_push_cursor ("12a") == -1);
    assert (nt_push_cursor (" 1") == -1);
    assert (nt_push_cursor ("") == -1);
    assert (nt_push_cursor (NULL) == -1);
}

static void
s_test_body (void)
{
    nt_item_t item = { "6f1c2b1e-0000-4000-8000-000000000001", 7, "Hi", "There", NULL,
                       "/orders/1", "2026-01-02T03:04:05Z", false };
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    nt_push_body (&sbuf, "u1", &item, 3, 9);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    assert (tl_mp_unpack (sbuf.data, sbuf.size, &zone, &obj) == 0);
    assert (tl_mp_str_eq (tl_mp_get (&obj, "user_id"), "u1"));
    uint64_t value = 0;
    assert (tl_mp_uint (tl_mp_get (&obj, "seq"), &value) == 0 && value == 7);
    assert (tl_mp_uint (tl_mp_get (&obj, "unread_count"), &value) == 0 && value == 3);
    assert (tl_mp_uint (tl_mp_get (&obj, "version"), &value) == 0 && value == 9);
    const msgpack_object *shown = tl_mp_get (&obj, "notification");
    assert (tl_mp_str_eq (tl_mp_get (shown, "title"), "Hi"));
    assert (tl_mp_get (shown, "action")->type == MSGPACK_OBJECT_NIL);
    assert (tl_mp_get (shown, "has_read")->type == MSGPACK_OBJECT_BOOLEAN);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);

    //  A count alone
    msgpack_sbuffer_init (&sbuf);
    nt_push_body (&sbuf, "u1", NULL, 0, 1);
    msgpack_zone_init (&zone, 1024);
    assert (tl_mp_unpack (sbuf.data, sbuf.size, &zone, &obj) == 0);
    assert (obj.via.map.size == 3 && !tl_mp_get (&obj, "seq"));
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);
}

void
nt_push_test (bool verbose)
{
    s_test_text ();
    s_test_cursor ();
    s_test_body ();
    if (verbose)
        printf ("(push ok) ");
}
