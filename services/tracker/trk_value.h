//  trk_value.h — a log's value, checked against its tracker's type.
//  A value arrives as MessagePack (the JSON body of POST /trackers/{id}/logs)
//  or as text (the value column of a CSV import), and leaves as MessagePack
//  (JSON replies) or as its canonical text (CSV export). Canonical text
//  reads back as the very same value: export, then import, changes nothing.
//
//  The types (shared/API.md) and what each accepts:
//    numerical        a finite number, |v| <= TRK_VALUE_MAX_ABS
//    duration         a finite number of seconds, 0 <= v <= TRK_DURATION_MAX_SEC
//                     (fractions allowed)
//    boolean          true or false, never 1, 0, "yes"
//    mood             an integer 1..5 (1 awful, 2 bad, 3 okay, 4 good, 5 great);
//                     3.0 is refused: a mood is not a measurement
//    multiple_choice  a string equal, byte for byte, to one of the choices
//  In MessagePack a number is an int or a float (32 or 64 bits), a boolean a
//  bool, a choice a str. As text a number is a JSON number (-?digits, then
//  an optional fraction and exponent: no '+', no leading zeros, no hex, no
//  inf or nan, no spaces) of at most TRK_VALUE_MAX_NUMBER_TEXT bytes; a
//  boolean "true" or "false"; a mood "1".."5" or its name in lower case; a
//  choice its text. -0 is stored as 0.
//  Numbers are read with strtod and written with snprintf: the process must
//  keep the "C" LC_NUMERIC locale (Tally never calls setlocale).
#ifndef TRK_VALUE_H_INCLUDED
#define TRK_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>

#include "trk_limits.h"

typedef enum {
    TRK_NUMERICAL,
    TRK_MULTIPLE_CHOICE,
    TRK_BOOLEAN,
    TRK_DURATION,
    TRK_MOOD
} trk_type_t;

//  One value. Only the member of its type is meaningful; the others are 0.
typedef struct {
    trk_type_t type;
    double number;                          //  numerical, duration
    bool boolean;                           //  boolean
    int mood;                               //  mood: 1..5
    char choice [TRK_CHOICE_MAX_LEN + 1];   //  multiple_choice, NUL-terminated
} trk_value_t;

//  Room for any value's canonical text and its NUL.
#define TRK_VALUE_TEXT_SIZE  (TRK_CHOICE_MAX_LEN + 1 > 32? TRK_CHOICE_MAX_LEN + 1: 32)

//  Reads a type's API name ("numerical", "multiple_choice", "boolean",
//  "duration", "mood") into *type. Returns 0, or TL_EINVAL for any other
//  text (NULL included).
int trk_type_parse (const char *name, trk_type_t *type);

//  Returns the API name of a type. Static.
const char *trk_type_name (trk_type_t type);

//  Returns the name of a mood 1..5 ("awful".."great"), NULL for another
//  number. Static.
const char *trk_mood_name (int mood);

//  Checks a value received as MessagePack against `type` (and, for
//  multiple_choice, against the tracker's `nchoices` NUL-terminated
//  `choices`). Returns 0 with the value in *value, or TL_EINVAL with *why
//  (when `why` is not NULL) a short static reason for the reply's
//  fields.value ("must be true or false").
int trk_value_from_mp (trk_type_t type, const char *const *choices, size_t nchoices,
                       const msgpack_object *obj, trk_value_t *value, const char **why);

//  The same for `size` bytes of text (a CSV field). Returns 0 or TL_EINVAL
//  with *why.
int trk_value_from_text (trk_type_t type, const char *const *choices, size_t nchoices,
                         const char *text, size_t size, trk_value_t *value,
                         const char **why);

//  Writes the canonical text of a value into `buf` (`size` bytes, NUL
//  included; TRK_VALUE_TEXT_SIZE is always enough): a number as an integer
//  when it is one, else with the fewest significant digits that read back
//  to the same double ("0.1", "1e-300"); "true"/"false"; a mood's digit;
//  a choice's text. Returns the length of the text, TL_ETOOBIG when `buf`
//  is too small, or TL_EINVAL for a value the checks above would refuse
//  (a NaN, a mood of 7).
int trk_value_to_text (const trk_value_t *value, char *buf, size_t size);

//  Packs a value for a JSON reply: a number as an int when it is integral
//  (every integral value in range fits an int64), else as a float64; a
//  bool; a mood as an int; a choice as a str. Returns 0 or the negative
//  code the packer's write callback returned.
int trk_value_pack (const trk_value_t *value, msgpack_packer *pk);

//  True when two values have the same type and the same value (numbers
//  compared bit for bit).
bool trk_value_equal (const trk_value_t *a, const trk_value_t *b);

//  Checks the `choices` of a multiple_choice tracker (create and update):
//  an array of 2..TRK_MAX_CHOICES distinct, non-empty strings of at most
//  TRK_CHOICE_MAX_LEN bytes of UTF-8 without control characters (C0, DEL,
//  C1). Returns 0, or TL_EINVAL with *why a short static reason.
int trk_choices_check (const msgpack_object *array, const char **why);

//  Self-test, run by ctest.
void trk_value_test (bool verbose);

#endif
