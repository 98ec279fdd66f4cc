//  trk_value.c — a log's value, checked against its tracker's type (see
//  trk_value.h).
//  Every way in (MessagePack, text) ends in s_check_number or an exact
//  comparison, so that the two agree on what a type accepts; every way out
//  (text, MessagePack) writes only what those accept back.
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trk_value.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"
#include "tl_mp.h"

#define S_STRING(x)  #x
#define S_XSTRING(x) S_STRING (x)

static const char *s_type_names [] = {
    "numerical", "multiple_choice", "boolean", "duration", "mood"
};

static const char *s_mood_names [] = {
    NULL, "awful", "bad", "okay", "good", "great"
};

//  The reasons, for a reply's fields.value.
static const char *s_why_number = "must be a number";
static const char *s_why_finite = "must be a finite number";
static const char *s_why_range = "must be between -" S_XSTRING (TRK_VALUE_MAX_ABS)
                                 " and " S_XSTRING (TRK_VALUE_MAX_ABS);
static const char *s_why_seconds = "must be a number of seconds";
static const char *s_why_negative = "must not be negative";
static const char *s_why_too_long = "must be at most " S_XSTRING (TRK_DURATION_MAX_SEC)
                                    " seconds (ten years)";
static const char *s_why_boolean = "must be true or false";
static const char *s_why_mood = "must be an integer from 1 (awful) to 5 (great)";
static const char *s_why_mood_text = "must be 1 to 5 or awful, bad, okay, good, great";
static const char *s_why_choice = "must be one of the tracker's choices";
static const char *s_why_type = "unknown tracker type";

//  2^53: below it every integer is a double.
#define S_EXACT_INTEGERS    9007199254740992.0


//  Sets *why when the caller asked for it. Returns TL_EINVAL.

static int
s_refuse (const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return TL_EINVAL;
}


//  Checks a number against a numerical or duration type and stores it
//  (-0 as 0). Returns 0 or TL_EINVAL with *why.

static int
s_check_number (trk_type_t type, double number, trk_value_t *value, const char **why)
{
    if (isnan (number))
        return s_refuse (why, s_why_finite);
    if (type == TRK_NUMERICAL) {
        if (fabs (number) > TRK_VALUE_MAX_ABS)
            return s_refuse (why, isinf (number)? s_why_finite: s_why_range);
    }
    else {
        assert (type == TRK_DURATION);
        if (number < 0)
            return s_refuse (why, s_why_negative);
        if (number > TRK_DURATION_MAX_SEC)
            return s_refuse (why, s_why_too_long);
    }
    if (value) {
        memset (value, 0, sizeof *value);
        value->type = type;
        value->number = number == 0? 0.0: number;
    }
    return 0;
}


//  Reads a JSON number of `size` bytes. Returns true and *number, or false
//  when the text is not one.

static bool
s_parse_number (const char *text, size_t size, double *number)
{
    if (size == 0 || size > TRK_VALUE_MAX_NUMBER_TEXT)
        return false;
    size_t index = 0;
    if (text [index] == '-')
        index++;
    //  Integer part: 0, or a digit 1-9 and more digits.
    if (index < size && text [index] == '0')
        index++;
    else
    if (index < size && text [index] >= '1' && text [index] <= '9')
        while (index < size && text [index] >= '0' && text [index] <= '9')
            index++;
    else
        return false;
    //  Fraction: a dot and at least one digit.
    if (index < size && text [index] == '.') {
        size_t start = ++index;
        while (index < size && text [index] >= '0' && text [index] <= '9')
            index++;
        if (index == start)
            return false;
    }
    //  Exponent: e or E, a sign maybe, at least one digit.
    if (index < size && (text [index] == 'e' || text [index] == 'E')) {
        index++;
        if (index < size && (text [index] == '+' || text [index] == '-'))
            index++;
        size_t start = index;
        while (index < size && text [index] >= '0' && text [index] <= '9')
            index++;
        if (index == start)
            return false;
    }
    if (index != size)
        return false;
    char copy [TRK_VALUE_MAX_NUMBER_TEXT + 1];
    memcpy (copy, text, size);
    copy [size] = 0;
    char *end;
    *number = strtod (copy, &end);
    return end == copy + size;      //  not so in a locale with a decimal comma
}


//  Returns the index of the choice equal to `size` bytes of `text`, or -1.

static int
s_find_choice (const char *const *choices, size_t nchoices, const char *text, size_t size)
{
    if (size == 0 || size > TRK_CHOICE_MAX_LEN)
        return -1;
    for (size_t index = 0; index < nchoices; index++) {
        assert (choices [index]);
        if (strlen (choices [index]) == size && memcmp (choices [index], text, size) == 0)
            return (int) index;
    }
    return -1;
}


//  Stores the choice of `size` bytes (known to be one of the tracker's).

static void
s_set_choice (trk_value_t *value, const char *text, size_t size)
{
    assert (size <= TRK_CHOICE_MAX_LEN);
    memset (value, 0, sizeof *value);
    value->type = TRK_MULTIPLE_CHOICE;
    memcpy (value->choice, text, size);
    value->choice [size] = 0;
}


//  Writes a number's canonical text into `text` (TRK_VALUE_TEXT_SIZE bytes):
//  an integer's digits, or the fewest significant digits that read back to
//  the same double. The number is finite.

static void
s_format_number (double number, char *text)
{
    if (number == 0) {
        strcpy (text, "0");     //  -0 too
        return;
    }
    if (number == trunc (number) && fabs (number) < S_EXACT_INTEGERS) {
        snprintf (text, TRK_VALUE_TEXT_SIZE, "%.0f", number);
        return;
    }
    //  A fraction: %g never uses an exponent for it above 1, since an
    //  exponent as large as the digits would make it an integer.
    for (int precision = 1; precision <= 17; precision++) {
        snprintf (text, TRK_VALUE_TEXT_SIZE, "%.*g", precision, number);
        if (strtod (text, NULL) == number)
            return;
    }
    assert (false);             //  17 significant digits always read back
}


//  --------------------------------------------------------------------------
//  Types

int
trk_type_parse (const char *name, trk_type_t *type)
{
    assert (type);
    if (!name)
        return TL_EINVAL;
    for (size_t index = 0; index < sizeof s_type_names / sizeof s_type_names [0]; index++)
        if (strcmp (name, s_type_names [index]) == 0) {
            *type = (trk_type_t) index;
            return 0;
        }
    return TL_EINVAL;
}

const char *
trk_type_name (trk_type_t type)
{
    assert ((size_t) type < sizeof s_type_names / sizeof s_type_names [0]);
    return s_type_names [type];
}

const char *
trk_mood_name (int mood)
{
    return mood >= 1 && mood <= 5? s_mood_names [mood]: NULL;
}


//  --------------------------------------------------------------------------
//  Checks a value received as MessagePack.

int
trk_value_from_mp (trk_type_t type, const char *const *choices, size_t nchoices,
                   const msgpack_object *obj, trk_value_t *value, const char **why)
{
    assert (obj);
    assert (value);
    assert (choices || nchoices == 0);
    switch (type) {
        case TRK_NUMERICAL:
        case TRK_DURATION: {
            const char *wrong = type == TRK_NUMERICAL? s_why_number: s_why_seconds;
            if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                return s_check_number (type, (double) obj->via.u64, value, why);
            if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return s_check_number (type, (double) obj->via.i64, value, why);
            if (obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64)
                return s_check_number (type, obj->via.f64, value, why);
            return s_refuse (why, wrong);
        }
        case TRK_BOOLEAN:
            if (obj->type != MSGPACK_OBJECT_BOOLEAN)
                return s_refuse (why, s_why_boolean);
            memset (value, 0, sizeof *value);
            value->type = TRK_BOOLEAN;
            value->boolean = obj->via.boolean;
            return 0;
        case TRK_MOOD: {
            int64_t mood;
            if (tl_mp_int (obj, &mood) != 0 || mood < 1 || mood > 5)
                return s_refuse (why, s_why_mood);
            memset (value, 0, sizeof *value);
            value->type = TRK_MOOD;
            value->mood = (int) mood;
            return 0;
        }
        case TRK_MULTIPLE_CHOICE:
            if (obj->type != MSGPACK_OBJECT_STR
            ||  s_find_choice (choices, nchoices, obj->via.str.ptr, obj->via.str.size) < 0)
                return s_refuse (why, s_why_choice);
            s_set_choice (value, obj->via.str.ptr, obj->via.str.size);
            return 0;
    }
    return s_refuse (why, s_why_type);
}


//  --------------------------------------------------------------------------
//  Checks a value received as text.

int
trk_value_from_text (trk_type_t type, const char *const *choices, size_t nchoices,
                     const char *text, size_t size, trk_value_t *value,
                     const char **why)
{
    assert (text || size == 0);
    assert (value);
    assert (choices || nchoices == 0);
    switch (type) {
        case TRK_NUMERICAL:
        case TRK_DURATION: {
            double number;
            if (!s_parse_number (text, size, &number))
                return s_refuse (why, type == TRK_NUMERICAL? s_why_number: s_why_seconds);
            return s_check_number (type, number, value, why);
        }
        case TRK_BOOLEAN: {
            bool truth = size == 4 && memcmp (text, "true", 4) == 0;
            if (!truth && !(size == 5 && memcmp (text, "false", 5) == 0))
                return s_refuse (why, s_why_boolean);
            memset (value, 0, sizeof *value);
            value->type = TRK_BOOLEAN;
            value->boolean = truth;
            return 0;
        }
        case TRK_MOOD: {
            int mood = 0;
            if (size == 1 && text [0] >= '1' && text [0] <= '5')
                mood = text [0] - '0';
            for (int index = 1; mood == 0 && index <= 5; index++)
                if (strlen (s_mood_names [index]) == size
                &&  memcmp (s_mood_names [index], text, size) == 0)
                    mood = index;
            if (mood == 0)
                return s_refuse (why, s_why_mood_text);
            memset (value, 0, sizeof *value);
            value->type = TRK_MOOD;
            value->mood = mood;
            return 0;
        }
        case TRK_MULTIPLE_CHOICE:
            if (s_find_choice (choices, nchoices, text, size) < 0)
                return s_refuse (why, s_why_choice);
            s_set_choice (value, text, size);
            return 0;
    }
    return s_refuse (why, s_why_type);
}


//  --------------------------------------------------------------------------
//  Writes the canonical text.

int
trk_value_to_text (const trk_value_t *value, char *buf, size_t size)
{
    assert (value);
    assert (buf || size == 0);
    char text [TRK_VALUE_TEXT_SIZE];
    switch (value->type) {
        case TRK_NUMERICAL:
        case TRK_DURATION:
            if (s_check_number (value->type, value->number, NULL, NULL))
                return TL_EINVAL;
            s_format_number (value->number, text);
            break;
        case TRK_BOOLEAN:
            strcpy (text, value->boolean? "true": "false");
            break;
        case TRK_MOOD:
            if (value->mood < 1 || value->mood > 5)
                return TL_EINVAL;
            text [0] = (char) ('0' + value->mood);
            text [1] = 0;
            break;
        case TRK_MULTIPLE_CHOICE: {
            size_t length = strnlen (value->choice, sizeof value->choice);
            if (length == 0 || length == sizeof value->choice)
                return TL_EINVAL;
            memcpy (text, value->choice, length + 1);
            break;
        }
        default:
            return TL_EINVAL;
    }
    size_t length = strlen (text);
    if (length + 1 > size)
        return TL_ETOOBIG;
    memcpy (buf, text, length + 1);
    return (int) length;
}


//  --------------------------------------------------------------------------
//  Packs a value for a JSON reply.

int
trk_value_pack (const trk_value_t *value, msgpack_packer *pk)
{
    assert (value);
    assert (pk);
    switch (value->type) {
        case TRK_NUMERICAL:
        case TRK_DURATION: {
            double number = value->number;
            if (number == trunc (number) && fabs (number) < 9.2e18)
                return msgpack_pack_int64 (pk, (int64_t) number);
            return msgpack_pack_double (pk, number);
        }
        case TRK_BOOLEAN:
            return value->boolean? msgpack_pack_true (pk): msgpack_pack_false (pk);
        case TRK_MOOD:
            return msgpack_pack_int (pk, value->mood);
        case TRK_MULTIPLE_CHOICE: {
            size_t length = strnlen (value->choice, sizeof value->choice);
            int rc = msgpack_pack_str (pk, length);
            return rc? rc: msgpack_pack_str_body (pk, value->choice, length);
        }
    }
    return msgpack_pack_nil (pk);
}


bool
trk_value_equal (const trk_value_t *a, const trk_value_t *b)
{
    assert (a && b);
    if (a->type != b->type)
        return false;
    switch (a->type) {
        case TRK_NUMERICAL:
        case TRK_DURATION:
            return memcmp (&a->number, &b->number, sizeof a->number) == 0;
        case TRK_BOOLEAN:
            return a->boolean == b->boolean;
        case TRK_MOOD:
            return a->mood == b->mood;
        case TRK_MULTIPLE_CHOICE:
            return strncmp (a->choice, b->choice, sizeof a->choice) == 0;
    }
    return false;
}


//  --------------------------------------------------------------------------
//  Checks a tracker's choices.

//  True when `size` bytes are UTF-8 without C0 controls, DEL or C1 controls
//  (U+0080..U+009F, written C2 80..C2 9F).

static bool
s_plain_text (const char *text, size_t size)
{
    if (!tl_json_utf8_valid (text, size))
        return false;
    const unsigned char *byte = (const unsigned char *) text;
    for (size_t index = 0; index < size; index++) {
        if (byte [index] < 0x20 || byte [index] == 0x7f)
            return false;
        if (byte [index] == 0xc2 && index + 1 < size && byte [index + 1] <= 0x9f)
            return false;
    }
    return true;
}

int
trk_choices_check (const msgpack_object *array, const char **why)
{
    if (!array || array->type != MSGPACK_OBJECT_ARRAY
    ||  array->via.array.size < 2 || array->via.array.size > TRK_MAX_CHOICES)
        return s_refuse (why, "must be an array of 2 to " S_XSTRING (TRK_MAX_CHOICES)
                              " choices");
    const msgpack_object *items = array->via.array.ptr;
    for (uint32_t index = 0; index < array->via.array.size; index++) {
        const msgpack_object *item = &items [index];
        if (item->type != MSGPACK_OBJECT_STR)
            return s_refuse (why, "each choice must be a string");
        if (item->via.str.size == 0)
            return s_refuse (why, "a choice must not be empty");
        if (item->via.str.size > TRK_CHOICE_MAX_LEN)
            return s_refuse (why, "a choice must be at most "
                                  S_XSTRING (TRK_CHOICE_MAX_LEN) " bytes");
        if (!s_plain_text (item->via.str.ptr, item->via.str.size))
            return s_refuse (why, "a choice must be UTF-8 text without control characters");
        for (uint32_t other = 0; other < index; other++)
            if (items [other].via.str.size == item->via.str.size
            &&  memcmp (items [other].via.str.ptr, item->via.str.ptr, item->via.str.size) == 0)
                return s_refuse (why, "choices must be distinct");
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Self-test

//  A MessagePack object made by the test: how to pack it, and with what.
typedef struct {
    char kind;          //  i int64, u uint64, d double, f float, t true,
                        //  F false, n nil, s str, a array, m map, b bin
    double number;
    int64_t integer;
    const char *text;
} s_mp_t;

//  Packs `mp` into `sbuf` and unpacks it into `unpacked`; the caller
//  destroys both (strings in `unpacked` point into `sbuf`).

static void
s_unpack (const s_mp_t *mp, msgpack_sbuffer *sbuf, msgpack_unpacked *unpacked)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    switch (mp->kind) {
        case 'i': msgpack_pack_int64 (&pk, mp->integer); break;
        case 'u': msgpack_pack_uint64 (&pk, (uint64_t) mp->integer); break;
        case 'd': msgpack_pack_double (&pk, mp->number); break;
        case 'f': msgpack_pack_float (&pk, (float) mp->number); break;
        case 't': msgpack_pack_true (&pk); break;
        case 'F': msgpack_pack_false (&pk); break;
        case 'n': msgpack_pack_nil (&pk); break;
        case 's':
            msgpack_pack_str (&pk, strlen (mp->text));
            msgpack_pack_str_body (&pk, mp->text, strlen (mp->text));
            break;
        case 'b':
            msgpack_pack_bin (&pk, strlen (mp->text));
            msgpack_pack_bin_body (&pk, mp->text, strlen (mp->text));
            break;
        case 'a': msgpack_pack_array (&pk, 1); msgpack_pack_int (&pk, 1); break;
        case 'm': msgpack_pack_map (&pk, 0); break;
        default: assert (false);
    }
    msgpack_unpacked_init (unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (unpacked, sbuf->data, sbuf->size, &offset)
            == MSGPACK_UNPACK_SUCCESS);
    assert (offset == sbuf->size);
}

//  Checks that a value's canonical text reads back as the same value, and
//  that packing it reads back the same too. Returns the text's length.

static int
s_check_round_trip (const trk_value_t *value, const char *const *choices, size_t nchoices,
                    char *text)
{
    int length = trk_value_to_text (value, text, TRK_VALUE_TEXT_SIZE);
    assert (length > 0 && (size_t) length == strlen (text));
    trk_value_t back;
    const char *why = NULL;
    int rc = trk_value_from_text (value->type, choices, nchoices, text, (size_t) length,
                                  &back, &why);
    if (rc)
        printf ("\n%s: %s\n", text, why);
    assert (rc == 0);
    assert (trk_value_equal (value, &back));
    //  Packed, then read as MessagePack.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    assert (trk_value_pack (value, &pk) == 0);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset)
            == MSGPACK_UNPACK_SUCCESS);
    assert (trk_value_from_mp (value->type, choices, nchoices, &unpacked.data, &back,
                               &why) == 0);
    assert (trk_value_equal (value, &back));
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&sbuf);
    return length;
}

//  A double made of 64 random bits.

static double
s_random_double (uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    double number;
    memcpy (&number, state, sizeof number);
    return number;
}

void
trk_value_test (bool verbose)
{
    const char *choices [] = { "yes", "no", "maybe later", "caf\xC3\xA9", "a,b \"q\"" };
    size_t nchoices = sizeof choices / sizeof choices [0];
    const char *why;
    trk_value_t value;
    char text [TRK_VALUE_TEXT_SIZE];

    //  Types and moods by name.
    trk_type_t type;
    for (int index = TRK_NUMERICAL; index <= TRK_MOOD; index++) {
        assert (trk_type_parse (trk_type_name ((trk_type_t) index), &type) == 0);
        assert (type == (trk_type_t) index);
    }
    assert (trk_type_parse ("multiple_choice", &type) == 0 && type == TRK_MULTIPLE_CHOICE);
    assert (trk_type_parse ("Mood", &type) == TL_EINVAL);
    assert (trk_type_parse ("", &type) == TL_EINVAL);
    assert (trk_type_parse (NULL, &type) == TL_EINVAL);
    assert (strcmp (trk_mood_name (1), "awful") == 0);
    assert (strcmp (trk_mood_name (5), "great") == 0);
    assert (trk_mood_name (0) == NULL && trk_mood_name (6) == NULL);

    //  Values from MessagePack: accepted (why NULL, canonical text) or
    //  refused (with this reason).
    struct {
        trk_type_t type;
        s_mp_t mp;
        const char *text;       //  canonical text, or NULL: refused
        const char *why;
    } mp_cases [] = {
        { TRK_NUMERICAL, { 'i', 0, 42, NULL }, "42", NULL },
        { TRK_NUMERICAL, { 'i', 0, -7, NULL }, "-7", NULL },
        { TRK_NUMERICAL, { 'u', 0, 0, NULL }, "0", NULL },
        { TRK_NUMERICAL, { 'd', 2.5, 0, NULL }, "2.5", NULL },
        { TRK_NUMERICAL, { 'd', -0.0, 0, NULL }, "0", NULL },
        { TRK_NUMERICAL, { 'd', 0.1, 0, NULL }, "0.1", NULL },
        { TRK_NUMERICAL, { 'f', 0.5, 0, NULL }, "0.5", NULL },
        { TRK_NUMERICAL, { 'd', 1e15, 0, NULL }, "1000000000000000", NULL },
        { TRK_NUMERICAL, { 'd', -1e15, 0, NULL }, "-1000000000000000", NULL },
        { TRK_NUMERICAL, { 'i', 0, 1000000000000000, NULL }, "1000000000000000", NULL },
        { TRK_NUMERICAL, { 'i', 0, 1000000000000001, NULL }, NULL, s_why_range },
        { TRK_NUMERICAL, { 'i', 0, INT64_MIN, NULL }, NULL, s_why_range },
        { TRK_NUMERICAL, { 'u', 0, -1, NULL }, NULL, s_why_range },    //  UINT64_MAX
        { TRK_NUMERICAL, { 'd', 1.5e15, 0, NULL }, NULL, s_why_range },
        { TRK_NUMERICAL, { 'd', NAN, 0, NULL }, NULL, s_why_finite },
        { TRK_NUMERICAL, { 'd', INFINITY, 0, NULL }, NULL, s_why_finite },
        { TRK_NUMERICAL, { 'f', -INFINITY, 0, NULL }, NULL, s_why_finite },
        { TRK_NUMERICAL, { 's', 0, 0, "1" }, NULL, s_why_number },
        { TRK_NUMERICAL, { 't', 0, 0, NULL }, NULL, s_why_number },
        { TRK_NUMERICAL, { 'n', 0, 0, NULL }, NULL, s_why_number },
        { TRK_NUMERICAL, { 'a', 0, 0, NULL }, NULL, s_why_number },
        { TRK_DURATION, { 'i', 0, 90, NULL }, "90", NULL },
        { TRK_DURATION, { 'd', 1.5, 0, NULL }, "1.5", NULL },
        { TRK_DURATION, { 'u', 0, 0, NULL }, "0", NULL },
        { TRK_DURATION, { 'd', -0.0, 0, NULL }, "0", NULL },
        { TRK_DURATION, { 'i', 0, TRK_DURATION_MAX_SEC, NULL }, "316224000", NULL },
        { TRK_DURATION, { 'i', 0, TRK_DURATION_MAX_SEC + 1, NULL }, NULL, s_why_too_long },
        { TRK_DURATION, { 'i', 0, -1, NULL }, NULL, s_why_negative },
        { TRK_DURATION, { 'd', -0.001, 0, NULL }, NULL, s_why_negative },
        { TRK_DURATION, { 'd', INFINITY, 0, NULL }, NULL, s_why_too_long },
        { TRK_DURATION, { 'd', NAN, 0, NULL }, NULL, s_why_finite },
        { TRK_DURATION, { 's', 0, 0, "PT5M" }, NULL, s_why_seconds },
        { TRK_BOOLEAN, { 't', 0, 0, NULL }, "true", NULL },
        { TRK_BOOLEAN, { 'F', 0, 0, NULL }, "false", NULL },
        { TRK_BOOLEAN, { 'i', 0, 1, NULL }, NULL, s_why_boolean },
        { TRK_BOOLEAN, { 'i', 0, 0, NULL }, NULL, s_why_boolean },
        { TRK_BOOLEAN, { 's', 0, 0, "yes" }, NULL, s_why_boolean },
        { TRK_BOOLEAN, { 's', 0, 0, "true" }, NULL, s_why_boolean },
        { TRK_BOOLEAN, { 'n', 0, 0, NULL }, NULL, s_why_boolean },
        { TRK_MOOD, { 'i', 0, 1, NULL }, "1", NULL },
        { TRK_MOOD, { 'u', 0, 5, NULL }, "5", NULL },
        { TRK_MOOD, { 'i', 0, 0, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 'i', 0, 6, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 'i', 0, -3, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 'u', 0, -1, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 'd', 3.0, 0, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 'd', 2.5, 0, NULL }, NULL, s_why_mood },
        { TRK_MOOD, { 's', 0, 0, "good" }, NULL, s_why_mood },
        { TRK_MOOD, { 't', 0, 0, NULL }, NULL, s_why_mood },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "yes" }, "yes", NULL },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "maybe later" }, "maybe later", NULL },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "caf\xC3\xA9" }, "caf\xC3\xA9", NULL },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "a,b \"q\"" }, "a,b \"q\"", NULL },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "Yes" }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "yes " }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "" }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 's', 0, 0, "maybe" }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 'b', 0, 0, "yes" }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 'i', 0, 0, NULL }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 'a', 0, 0, NULL }, NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, { 'm', 0, 0, NULL }, NULL, s_why_choice },
    };
    for (size_t index = 0; index < sizeof mp_cases / sizeof mp_cases [0]; index++) {
        msgpack_sbuffer sbuf;
        msgpack_unpacked unpacked;
        s_unpack (&mp_cases [index].mp, &sbuf, &unpacked);
        why = NULL;
        int rc = trk_value_from_mp (mp_cases [index].type, choices, nchoices,
                                    &unpacked.data, &value, &why);
        if (verbose)
            printf ("\n  mp case %zu: %d %s", index, rc, why? why: "");
        if (mp_cases [index].text) {
            assert (rc == 0 && why == NULL);
            assert (value.type == mp_cases [index].type);
            assert (trk_value_to_text (&value, text, sizeof text) >= 0);
            assert (strcmp (text, mp_cases [index].text) == 0);
            s_check_round_trip (&value, choices, nchoices, text);
        }
        else {
            assert (rc == TL_EINVAL);
            assert (why && strcmp (why, mp_cases [index].why) == 0);
        }
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&sbuf);
    }
    //  A multiple_choice tracker without choices accepts nothing.
    msgpack_sbuffer yes_sbuf;
    msgpack_unpacked unpacked;
    s_mp_t yes = { 's', 0, 0, "yes" };
    s_unpack (&yes, &yes_sbuf, &unpacked);
    assert (trk_value_from_mp (TRK_MULTIPLE_CHOICE, NULL, 0, &unpacked.data, &value,
                               NULL) == TL_EINVAL);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&yes_sbuf);

    //  Values from text (CSV): accepted with this canonical text, or refused.
    struct {
        trk_type_t type;
        const char *input;
        const char *text;       //  canonical text, or NULL: refused
        const char *why;
    } text_cases [] = {
        { TRK_NUMERICAL, "42", "42", NULL },
        { TRK_NUMERICAL, "-7", "-7", NULL },
        { TRK_NUMERICAL, "0", "0", NULL },
        { TRK_NUMERICAL, "-0", "0", NULL },
        { TRK_NUMERICAL, "-0.0", "0", NULL },
        { TRK_NUMERICAL, "0.1", "0.1", NULL },
        { TRK_NUMERICAL, "0.10", "0.1", NULL },
        { TRK_NUMERICAL, "1.0", "1", NULL },
        { TRK_NUMERICAL, "2.50", "2.5", NULL },
        { TRK_NUMERICAL, "1e3", "1000", NULL },
        { TRK_NUMERICAL, "1E+3", "1000", NULL },
        { TRK_NUMERICAL, "15e-1", "1.5", NULL },
        { TRK_NUMERICAL, "1e-300", "1e-300", NULL },
        { TRK_NUMERICAL, "1e-400", "0", NULL },         //  underflows to 0
        { TRK_NUMERICAL, "0.0000001", "1e-07", NULL },
        { TRK_NUMERICAL, "123456789.123", "123456789.123", NULL },
        { TRK_NUMERICAL, "1000000000000000", "1000000000000000", NULL },
        { TRK_NUMERICAL, "-1e15", "-1000000000000000", NULL },
        { TRK_NUMERICAL, "999999999999999.9", "999999999999999.9", NULL },
        { TRK_NUMERICAL, "0.30000000000000004", "0.30000000000000004", NULL },
        { TRK_NUMERICAL, "1000000000000001", NULL, s_why_range },
        { TRK_NUMERICAL, "1e16", NULL, s_why_range },
        { TRK_NUMERICAL, "1e999", NULL, s_why_finite },
        { TRK_NUMERICAL, "", NULL, s_why_number },
        { TRK_NUMERICAL, "-", NULL, s_why_number },
        { TRK_NUMERICAL, "+1", NULL, s_why_number },
        { TRK_NUMERICAL, " 1", NULL, s_why_number },
        { TRK_NUMERICAL, "1 ", NULL, s_why_number },
        { TRK_NUMERICAL, "01", NULL, s_why_number },
        { TRK_NUMERICAL, "1.", NULL, s_why_number },
        { TRK_NUMERICAL, ".5", NULL, s_why_number },
        { TRK_NUMERICAL, "1e", NULL, s_why_number },
        { TRK_NUMERICAL, "1e+", NULL, s_why_number },
        { TRK_NUMERICAL, "0x10", NULL, s_why_number },
        { TRK_NUMERICAL, "inf", NULL, s_why_number },
        { TRK_NUMERICAL, "NaN", NULL, s_why_number },
        { TRK_NUMERICAL, "1,5", NULL, s_why_number },
        { TRK_NUMERICAL, "1_000", NULL, s_why_number },
        { TRK_NUMERICAL, "true", NULL, s_why_number },
        { TRK_NUMERICAL, "0.000000000000000000000000000000000000000000000000000000000000001",
          NULL, s_why_number },                         //  65 bytes
        { TRK_DURATION, "3600", "3600", NULL },
        { TRK_DURATION, "0.25", "0.25", NULL },
        { TRK_DURATION, "-0", "0", NULL },
        { TRK_DURATION, "316224000", "316224000", NULL },
        { TRK_DURATION, "316224000.5", NULL, s_why_too_long },
        { TRK_DURATION, "-1", NULL, s_why_negative },
        { TRK_DURATION, "1h", NULL, s_why_seconds },
        { TRK_DURATION, "01:00:00", NULL, s_why_seconds },
        { TRK_BOOLEAN, "true", "true", NULL },
        { TRK_BOOLEAN, "false", "false", NULL },
        { TRK_BOOLEAN, "TRUE", NULL, s_why_boolean },
        { TRK_BOOLEAN, "1", NULL, s_why_boolean },
        { TRK_BOOLEAN, "yes", NULL, s_why_boolean },
        { TRK_BOOLEAN, "true ", NULL, s_why_boolean },
        { TRK_BOOLEAN, "", NULL, s_why_boolean },
        { TRK_MOOD, "1", "1", NULL },
        { TRK_MOOD, "5", "5", NULL },
        { TRK_MOOD, "awful", "1", NULL },
        { TRK_MOOD, "okay", "3", NULL },
        { TRK_MOOD, "great", "5", NULL },
        { TRK_MOOD, "0", NULL, s_why_mood_text },
        { TRK_MOOD, "6", NULL, s_why_mood_text },
        { TRK_MOOD, "3.0", NULL, s_why_mood_text },
        { TRK_MOOD, "03", NULL, s_why_mood_text },
        { TRK_MOOD, "Good", NULL, s_why_mood_text },
        { TRK_MOOD, "", NULL, s_why_mood_text },
        { TRK_MULTIPLE_CHOICE, "no", "no", NULL },
        { TRK_MULTIPLE_CHOICE, "a,b \"q\"", "a,b \"q\"", NULL },
        { TRK_MULTIPLE_CHOICE, "NO", NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, " no", NULL, s_why_choice },
        { TRK_MULTIPLE_CHOICE, "", NULL, s_why_choice },
    };
    for (size_t index = 0; index < sizeof text_cases / sizeof text_cases [0]; index++) {
        why = NULL;
        const char *input = text_cases [index].input;
        int rc = trk_value_from_text (text_cases [index].type, choices, nchoices,
                                      input, strlen (input), &value, &why);
        if (verbose)
            printf ("\n  text case '%s': %d %s", input, rc, why? why: "");
        if (text_cases [index].text) {
            assert (rc == 0 && why == NULL);
            assert (trk_value_to_text (&value, text, sizeof text) >= 0);
            if (strcmp (text, text_cases [index].text) != 0)
                printf ("\n'%s' gave '%s'\n", input, text);
            assert (strcmp (text, text_cases [index].text) == 0);
            s_check_round_trip (&value, choices, nchoices, text);
        }
        else {
            if (rc == 0 || !why || strcmp (why, text_cases [index].why) != 0)
                printf ("\n'%s': %d %s\n", input, rc, why? why: "-");
            assert (rc == TL_EINVAL);
            assert (why && strcmp (why, text_cases [index].why) == 0);
        }
    }
    //  Text is bytes: a NUL inside does not end it.
    assert (trk_value_from_text (TRK_BOOLEAN, NULL, 0, "true\0", 5, &value, NULL)
            == TL_EINVAL);
    assert (trk_value_from_text (TRK_MULTIPLE_CHOICE, choices, nchoices, "no\0", 3,
                                 &value, NULL) == TL_EINVAL);
    assert (trk_value_from_text (TRK_NUMERICAL, NULL, 0, "1\0", 2, &value, NULL)
            == TL_EINVAL);

    //  Doubles: the canonical text is the shortest that reads back, and
    //  reads back bit for bit.
    struct {
        double number;
        const char *text;
    } doubles [] = {
        { 0.1, "0.1" }, { 1e-300, "1e-300" }, { -0.0, "0" }, { 0.0, "0" },
        { 123456789.123, "123456789.123" }, { 1e15, "1000000000000000" },
        { -1e15, "-1000000000000000" }, { 5e-324, "5e-324" },
        { 2.2250738585072014e-308, "2.2250738585072014e-308" },
        { 1.0 / 3, "0.3333333333333333" }, { -2.0 / 3, "-0.6666666666666666" },
        { 3.141592653589793, "3.141592653589793" }, { 100, "100" }, { -1, "-1" },
        { 0.5, "0.5" }, { 1e-5, "1e-05" }, { 0.0001, "0.0001" },
        { 4503599627370495.5, NULL },   //  out of range: refused
        { 999999999999999.875, "999999999999999.9" },
        { 9007199254740993.0, NULL },
    };
    for (size_t index = 0; index < sizeof doubles / sizeof doubles [0]; index++) {
        memset (&value, 0, sizeof value);
        value.type = TRK_NUMERICAL;
        value.number = doubles [index].number;
        int length = trk_value_to_text (&value, text, sizeof text);
        if (!doubles [index].text) {
            assert (length == TL_EINVAL);
            continue;
        }
        if (length < 0 || strcmp (text, doubles [index].text) != 0)
            printf ("\n%.17g gave '%s'\n", doubles [index].number, text);
        assert (length > 0 && strcmp (text, doubles [index].text) == 0);
        value.number = value.number == 0? 0.0: value.number;
        s_check_round_trip (&value, NULL, 0, text);
    }
    //  Many random doubles in range, and random integers, and durations.
    uint64_t state = 0x9E3779B97F4A7C15ull;
    size_t tried = 0;
    size_t longest = 0;
    while (tried < 50000) {
        double number = s_random_double (&state);
        if (!isfinite (number) || fabs (number) > TRK_VALUE_MAX_ABS)
            number = fmod (number, TRK_VALUE_MAX_ABS);     //  NaN stays NaN
        if (isnan (number))
            continue;
        if (tried % 3 == 1)
            number = trunc (number);
        if (tried % 7 == 2)
            number = ldexp (number, -(int) (state % 1000));
        memset (&value, 0, sizeof value);
        value.type = tried % 2? TRK_NUMERICAL: TRK_DURATION;
        value.number = number == 0? 0.0: number;
        if (value.type == TRK_DURATION)
            value.number = fmod (fabs (value.number), TRK_DURATION_MAX_SEC);
        int length = s_check_round_trip (&value, NULL, 0, text);
        if ((size_t) length > longest)
            longest = (size_t) length;
        tried++;
    }
    assert (longest < 32 && longest <= TRK_VALUE_MAX_NUMBER_TEXT);

    //  Values that no check accepts are not written.
    memset (&value, 0, sizeof value);
    value.type = TRK_MOOD;
    value.mood = 7;
    assert (trk_value_to_text (&value, text, sizeof text) == TL_EINVAL);
    value.type = TRK_MULTIPLE_CHOICE;
    assert (trk_value_to_text (&value, text, sizeof text) == TL_EINVAL);    //  empty
    value.type = TRK_DURATION;
    value.number = -1;
    assert (trk_value_to_text (&value, text, sizeof text) == TL_EINVAL);
    value.number = NAN;
    assert (trk_value_to_text (&value, text, sizeof text) == TL_EINVAL);
    //  The caller's buffer is respected.
    value.number = 12345;
    assert (trk_value_to_text (&value, text, 5) == TL_ETOOBIG);
    assert (trk_value_to_text (&value, text, 6) == 5);
    assert (strcmp (text, "12345") == 0);
    //  The longest choice fits TRK_VALUE_TEXT_SIZE.
    char long_choice [TRK_CHOICE_MAX_LEN + 1];
    memset (long_choice, 'c', TRK_CHOICE_MAX_LEN);
    long_choice [TRK_CHOICE_MAX_LEN] = 0;
    const char *long_choices [] = { "short", long_choice };
    assert (trk_value_from_text (TRK_MULTIPLE_CHOICE, long_choices, 2, long_choice,
                                 TRK_CHOICE_MAX_LEN, &value, NULL) == 0);
    assert (s_check_round_trip (&value, long_choices, 2, text) == TRK_CHOICE_MAX_LEN);

    //  Packing: integral numbers as ints, others as float64.
    struct {
        trk_value_t value;
        msgpack_object_type type;
    } packs [] = {
        { { TRK_NUMERICAL, 3.0, false, 0, "" }, MSGPACK_OBJECT_POSITIVE_INTEGER },
        { { TRK_NUMERICAL, -2.0, false, 0, "" }, MSGPACK_OBJECT_NEGATIVE_INTEGER },
        { { TRK_NUMERICAL, 2.5, false, 0, "" }, MSGPACK_OBJECT_FLOAT64 },
        { { TRK_DURATION, 1e9, false, 0, "" }, MSGPACK_OBJECT_POSITIVE_INTEGER },
        { { TRK_BOOLEAN, 0, true, 0, "" }, MSGPACK_OBJECT_BOOLEAN },
        { { TRK_MOOD, 0, false, 4, "" }, MSGPACK_OBJECT_POSITIVE_INTEGER },
        { { TRK_MULTIPLE_CHOICE, 0, false, 0, "no" }, MSGPACK_OBJECT_STR },
    };
    for (size_t index = 0; index < sizeof packs / sizeof packs [0]; index++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        assert (trk_value_pack (&packs [index].value, &pk) == 0);
        msgpack_unpacked_init (&unpacked);
        size_t offset = 0;
        assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset)
                == MSGPACK_UNPACK_SUCCESS);
        assert (unpacked.data.type == packs [index].type);
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&sbuf);
    }

    //  Choices of a tracker.
    struct {
        const char *items [TRK_MAX_CHOICES + 2];
        size_t count;
        bool ok;
    } choice_cases [] = {
        { { "yes", "no" }, 2, true },
        { { "caf\xC3\xA9", "\xF0\x9F\x98\x80", "a, \"b\"" }, 3, true },
        { { "only" }, 1, false },
        { { NULL }, 0, false },
        { { "a", "a" }, 2, false },
        { { "a", "b", "a" }, 3, false },
        { { "a", "" }, 2, false },
        { { "a", "b\nc" }, 2, false },
        { { "a", "b\tc" }, 2, false },
        { { "a", "b\x7f" }, 2, false },
        { { "a", "b\xC2\x85" }, 2, false },     //  U+0085, a C1 control
        { { "a", "b\xC2\xA0" }, 2, true },      //  U+00A0, a space
        { { "a", "\xC3\x28" }, 2, false },
        { { "a", "\xED\xA0\x80" }, 2, false },
    };
    for (size_t index = 0; index < sizeof choice_cases / sizeof choice_cases [0]; index++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, choice_cases [index].count);
        for (size_t item = 0; item < choice_cases [index].count; item++) {
            const char *choice = choice_cases [index].items [item];
            msgpack_pack_str (&pk, strlen (choice));
            msgpack_pack_str_body (&pk, choice, strlen (choice));
        }
        msgpack_unpacked_init (&unpacked);
        size_t offset = 0;
        assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset)
                == MSGPACK_UNPACK_SUCCESS);
        why = NULL;
        int rc = trk_choices_check (&unpacked.data, &why);
        if (verbose)
            printf ("\n  choices case %zu: %d %s", index, rc, why? why: "");
        assert (rc == (choice_cases [index].ok? 0: TL_EINVAL));
        assert ((why == NULL) == choice_cases [index].ok);
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&sbuf);
    }
    //  Sizes and counts at their bounds, and other kinds.
    s_mp_t not_array [] = { { 'n', 0, 0, NULL }, { 's', 0, 0, "a" }, { 'm', 0, 0, NULL } };
    for (size_t index = 0; index < 3; index++) {
        msgpack_sbuffer sbuf;
        s_unpack (&not_array [index], &sbuf, &unpacked);
        assert (trk_choices_check (&unpacked.data, &why) == TL_EINVAL);
        assert (strcmp (why, "must be an array of 2 to 50 choices") == 0);
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&sbuf);
    }
    assert (trk_choices_check (NULL, NULL) == TL_EINVAL);
    for (size_t count = TRK_MAX_CHOICES; count <= TRK_MAX_CHOICES + 1; count++)
        for (size_t length = TRK_CHOICE_MAX_LEN; length <= TRK_CHOICE_MAX_LEN + 1; length++) {
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init (&sbuf);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
            msgpack_pack_array (&pk, count);
            for (size_t item = 0; item < count; item++) {
                char choice [TRK_CHOICE_MAX_LEN + 1];
                memset (choice, 'x', length);
                snprintf (choice, sizeof choice, "%zu", item);
                choice [strlen (choice)] = 'x';         //  distinct, `length` bytes
                msgpack_pack_str (&pk, length);
                msgpack_pack_str_body (&pk, choice, length);
            }
            msgpack_unpacked_init (&unpacked);
            size_t offset = 0;
            assert (msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset)
                    == MSGPACK_UNPACK_SUCCESS);
            bool ok = count <= TRK_MAX_CHOICES && length <= TRK_CHOICE_MAX_LEN;
            assert (trk_choices_check (&unpacked.data, &why) == (ok? 0: TL_EINVAL));
            msgpack_unpacked_destroy (&unpacked);
            msgpack_sbuffer_destroy (&sbuf);
        }
    if (verbose)
        printf ("\n");
}
