//  fuzz_value.c — fuzz target for log values (services/tracker/trk_value).
//  The first byte picks the tracker's type (byte % 5; the choices are a
//  fixed list); the rest is a value as text (trk_value_from_text) and, when
//  it is exactly one MessagePack value, as MessagePack (trk_value_from_mp).
//  A refusal must come with a reason. An accepted value must have a
//  canonical text that is accepted again as the same value, with the same
//  text, and must pack to MessagePack that is accepted again as the same
//  value. A first byte of 0xF0 or more instead makes the rest a `choices`
//  array for trk_choices_check; every choice of an accepted array must then
//  work as a value of its own.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "tl_buf.h"
#include "tl_error.h"
#include "trk_limits.h"
#include "tl_mp.h"
#include "trk_value.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

static const char *s_choices [] = {
    "yes", "no", "maybe later", "caf\xC3\xA9", "a,b \"q\"", " padded ", "1", "true"
};
#define S_NCHOICES (sizeof s_choices / sizeof s_choices [0])

static void
s_check_reason (int rc, const char *why)
{
    s_check (rc == TL_EINVAL);
    s_check (why && why [0]);
    for (const char *c = why; *c; c++)
        s_check (*c >= 0x20 && *c < 0x7f);
}

//  An accepted value: its text and its packing read back the same.

static void
s_check_value (const trk_value_t *value, trk_type_t type, const char *const *choices,
               size_t nchoices)
{
    s_check (value->type == type);
    char text [TRK_VALUE_TEXT_SIZE];
    int length = trk_value_to_text (value, text, sizeof text);
    s_check (length > 0 && (size_t) length == strlen (text));

    trk_value_t back;
    const char *why = NULL;
    int rc = trk_value_from_text (type, choices, nchoices, text, (size_t) length,
                                  &back, &why);
    if (rc)
        fprintf (stderr, "canonical text '%s' refused: %s\n", text, why);
    s_check (rc == 0);
    s_check (trk_value_equal (value, &back));
    char again [TRK_VALUE_TEXT_SIZE];
    s_check (trk_value_to_text (&back, again, sizeof again) == length);
    s_check (strcmp (text, again) == 0);

    tl_buf_t *buf = tl_buf_new (1024);
    s_check (buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, tl_buf_mp_write);
    s_check (trk_value_pack (value, &pk) == 0);
    msgpack_zone zone;
    s_check (msgpack_zone_init (&zone, 256));
    msgpack_object obj;
    s_check (tl_mp_unpack (tl_buf_data (buf), tl_buf_size (buf), &zone, &obj) == 0);
    s_check (trk_value_from_mp (type, choices, nchoices, &obj, &back, &why) == 0);
    s_check (trk_value_equal (value, &back));
    msgpack_zone_destroy (&zone);
    tl_buf_destroy (&buf);
}

static void
s_value (trk_type_t type, const char *data, size_t size)
{
    trk_value_t value;
    const char *why = NULL;
    int rc = trk_value_from_text (type, s_choices, S_NCHOICES, data, size, &value, &why);
    if (rc == 0)
        s_check_value (&value, type, s_choices, S_NCHOICES);
    else
        s_check_reason (rc, why);

    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 4096))
        return;
    msgpack_object obj;
    if (tl_mp_unpack (data, size, &zone, &obj) == 0) {
        why = NULL;
        rc = trk_value_from_mp (type, s_choices, S_NCHOICES, &obj, &value, &why);
        if (rc == 0)
            s_check_value (&value, type, s_choices, S_NCHOICES);
        else
            s_check_reason (rc, why);
    }
    msgpack_zone_destroy (&zone);
}

static void
s_check_choices (const char *data, size_t size)
{
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 4096))
        return;
    msgpack_object obj;
    if (tl_mp_unpack (data, size, &zone, &obj) == 0) {
        const char *why = NULL;
        int rc = trk_choices_check (&obj, &why);
        if (rc == 0) {
            s_check (obj.type == MSGPACK_OBJECT_ARRAY);
            size_t count = obj.via.array.size;
            s_check (count >= 2 && count <= TRK_MAX_CHOICES);
            char *copies [TRK_MAX_CHOICES];
            for (size_t index = 0; index < count; index++) {
                copies [index] = tl_mp_strdup (&obj.via.array.ptr [index], TRK_CHOICE_MAX_LEN);
                s_check (copies [index]);
            }
            for (size_t index = 0; index < count; index++) {
                trk_value_t value;
                s_check (trk_value_from_text (TRK_MULTIPLE_CHOICE,
                                              (const char *const *) copies, count,
                                              copies [index], strlen (copies [index]),
                                              &value, &why) == 0);
                s_check (strcmp (value.choice, copies [index]) == 0);
                s_check_value (&value, TRK_MULTIPLE_CHOICE, (const char *const *) copies,
                               count);
            }
            for (size_t index = 0; index < count; index++)
                free (copies [index]);
        }
        else
            s_check_reason (rc, why);
    }
    msgpack_zone_destroy (&zone);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *rest = (const char *) data + 1;
    if (data [0] >= 0xF0)
        s_check_choices (rest, size - 1);
    else
        s_value ((trk_type_t) (data [0] % 5), rest, size - 1);
    return 0;
}
