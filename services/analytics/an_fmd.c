//  an_fmd.c — readers of the FMD JSON export (see an_fmd.h), over jansson.
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "an_fmd.h"
#include "tl_error.h"
#include "tl_json.h"

struct _an_fmd_list_t {
    size_t size;
    an_fmd_call_t *calls;           //  one of the two
    an_fmd_rule_t *rules;
};

//  Reads `count` digits at `text` into *value. Returns false on a non-digit.

static bool
s_digits (const char *text, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (text [i] < '0' || text [i] > '9')
            return false;
        *value = *value * 10 + (text [i] - '0');
    }
    return true;
}

int
an_fmd_time_parse (const char *text, int64_t *time_us)
{
    int y, mo, d, h, mi, s;
    if (!text || strnlen (text, 27) < 19
    ||  !s_digits (text, 4, &y) || text [4] != '-' || !s_digits (text + 5, 2, &mo)
    ||  text [7] != '-' || !s_digits (text + 8, 2, &d) || text [10] != ' '
    ||  !s_digits (text + 11, 2, &h) || text [13] != ':' || !s_digits (text + 14, 2, &mi)
    ||  text [16] != ':' || !s_digits (text + 17, 2, &s))
        return TL_EINVAL;
    static const int month_days [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > month_days [mo - 1]
    ||  (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || s > 59)
        return TL_EINVAL;
    int64_t micro = 0;
    const char *rest = text + 19;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9' && digits < 6; rest++, digits++)
            micro = micro * 10 + (*rest - '0');
        if (digits == 0)
            return TL_EINVAL;
        for (; digits < 6; digits++)
            micro *= 10;
    }
    if (*rest)
        return TL_EINVAL;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = s };
    *time_us = (int64_t) timegm (&tm) * 1000000 + micro;
    return 0;
}

void
an_fmd_time_format (int64_t time_us, char text [32])
{
    int64_t micro = time_us % 1000000;
    if (micro < 0)
        micro += 1000000;
    time_t secs = (time_t) ((time_us - micro) / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (text, 32, "%Y-%m-%d %H:%M:%S", &tm);
    if (micro && n > 0 && n < 25)
        snprintf (text + n, 32 - n, ".%06d", (int) micro);
}

//  Copies an optional string member (null or absent: "") of at most `max`
//  bytes. Returns false when it is another type or too long.

static bool
s_text (const json_t *obj, const char *key, char *out, size_t max, bool required)
{
    const json_t *value = json_object_get (obj, key);
    out [0] = 0;
    if (!value || json_is_null (value))
        return !required;
    if (!json_is_string (value) || json_string_length (value) > max
    ||  memchr (json_string_value (value), 0, json_string_length (value)))
        return false;
    memcpy (out, json_string_value (value), json_string_length (value) + 1);
    return !required || out [0];
}

int
an_fmd_details_parse (const char *json, size_t len, an_fmd_details_t *details)
{
    memset (details, 0, sizeof *details);
    json_t *root = tl_json_parse (json, len, NULL, 0, NULL);
    int rc = TL_EINVAL;
    if (json_is_object (root)
    &&  s_text (root, "dashboard-version", details->version, AN_VERSION_MAX, true)) {
        const json_t *first = json_object_get (root, "first-request");
        const json_t *total = json_object_get (root, "total-requests");
        double value = json_is_number (first) ? json_number_value (first) : NAN;
        if (isfinite (value) && value >= -1 && value < 253402300800.0) {
            details->first_request = value < 0 ? -1 : (int64_t) value;
            details->total_requests = json_is_integer (total) ? json_integer_value (total) : 0;
            rc = 0;
        }
    }
    json_decref (root);
    return rc;
}

//  Reads one call object. Returns false when it is bad.

static bool
s_call_read (const json_t *item, an_fmd_call_t *call)
{
    if (!json_is_object (item))
        return false;
    const json_t *ms = json_object_get (item, "execution_time");
    const json_t *time = json_object_get (item, "time");
    if (!s_text (item, "endpoint", call->endpoint, AN_ENDPOINT_MAX, true)
    ||  !s_text (item, "version", call->version, AN_VERSION_MAX, false)
    ||  !s_text (item, "group_by", call->group_by, AN_GROUP_MAX, false)
    ||  !s_text (item, "ip", call->ip, AN_IP_MAX, false)
    ||  !json_is_number (ms) || !json_is_string (time)
    ||  an_fmd_time_parse (json_string_value (time), &call->time_us) != 0)
        return false;
    call->execution_ms = json_number_value (ms);
    return isfinite (call->execution_ms) && call->execution_ms >= 0
        && call->execution_ms < 1e12;
}

//  Reads one rule object. Returns false when it is bad.

static bool
s_rule_read (const json_t *item, an_fmd_rule_t *rule)
{
    if (!json_is_object (item)
    ||  !s_text (item, "endpoint", rule->endpoint, AN_ENDPOINT_MAX, true))
        return false;
    const json_t *monitor = json_object_get (item, "monitor");
    if (json_is_boolean (monitor))
        rule->monitor = json_is_true (monitor);
    else
    if (json_is_integer (monitor))
        rule->monitor = json_integer_value (monitor) != 0;
    else
        return false;
    return true;
}

//  Reads a list of calls or rules.

static an_fmd_list_t *
s_list_new (const char *json, size_t len, bool calls, int *err, char *why, size_t why_size)
{
    json_t *root = tl_json_parse (json, len, NULL, 0, err);
    if (!json_is_array (root)) {
        tl_error_format (why, why_size, "data is not a JSON array");
        json_decref (root);
        *err = TL_EINVAL;
        return NULL;
    }
    size_t size = json_array_size (root);
    if (size > (calls ? AN_FMD_MAX_CALLS : AN_FMD_MAX_RULES)) {
        tl_error_format (why, why_size, "data holds %zu items, more than allowed", size);
        json_decref (root);
        *err = TL_ETOOBIG;
        return NULL;
    }
    an_fmd_list_t *self = (an_fmd_list_t *) calloc (1, sizeof (an_fmd_list_t));
    if (self && size) {
        if (calls)
            self->calls = (an_fmd_call_t *) calloc (size, sizeof (an_fmd_call_t));
        else
            self->rules = (an_fmd_rule_t *) calloc (size, sizeof (an_fmd_rule_t));
    }
    if (!self || (size && !self->calls && !self->rules)) {
        an_fmd_list_destroy (&self);
        json_decref (root);
        *err = TL_ENOMEM;
        return NULL;
    }
    self->size = size;
    for (size_t i = 0; i < size; i++) {
        const json_t *item = json_array_get (root, i);
        if (calls ? !s_call_read (item, &self->calls [i]) : !s_rule_read (item, &self->rules [i])) {
            tl_error_format (why, why_size, "item %zu of the %s is malformed", i,
                             calls ? "calls" : "rules");
            an_fmd_list_destroy (&self);
            *err = TL_EINVAL;
            break;
        }
    }
    json_decref (root);
    return self;
}

an_fmd_list_t *
an_fmd_calls_new (const char *json, size_t len, int *err, char *why, size_t why_size)
{
    return s_list_new (json, len, true, err, why, why_size);
}

an_fmd_list_t *
an_fmd_rules_new (const char *json, size_t len, int *err, char *why, size_t why_size)
{
    return s_list_new (json, len, false, err, why, why_size);
}

void
an_fmd_list_destroy (an_fmd_list_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->calls);
        free ((*self_p)->rules);
        free (*self_p);
        *self_p = NULL;
    }
}

size_t
an_fmd_list_size (an_fmd_list_t *self)
{
    return self->size;
}

const an_fmd_call_t *
an_fmd_list_call (an_fmd_list_t *self, size_t index)
{
    return self->calls && index < self->size ? &self->calls [index] : NULL;
}

const an_fmd_rule_t *
an_fmd_list_rule (an_fmd_list_t *self, size_t index)
{
    return self->rules && index < self->size ? &self->rules [index] : NULL;
}


//  --------------------------------------------------------------------------
//  Self-test

static void
s_test_time (void)
{
    int64_t us;
    assert (an_fmd_time_parse ("1970-01-01 00:00:00", &us) == 0 && us == 0);
    assert (an_fmd_time_parse ("2024-02-29 12:34:56.5", &us) == 0);
    assert (us == 1709210096500000);
    assert (an_fmd_time_parse ("2024-02-29 12:34:56.123456", &us) == 0);
    assert (us == 1709210096123456);
    char text [32];
    an_fmd_time_format (us, text);
    assert (strcmp (text, "2024-02-29 12:34:56.123456") == 0);
    an_fmd_time_format (1709210096000000, text);
    assert (strcmp (text, "2024-02-29 12:34:56") == 0);
    const char *bad [] = { "", "2023-02-29 00:00:00", "2024-13-01 00:00:00",
        "2024-01-01T00:00:00", "2024-01-01 24:00:00", "2024-01-01 00:00:00.",
        "2024-01-01 00:00:00.1234567", "2024-01-01 00:00:00Z", "1969-12-31 23:59:59",
        "2024-1-01 00:00:00", NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert (an_fmd_time_parse (bad [i], &us) == TL_EINVAL);
}

static void
s_test_details (void)
{
    an_fmd_details_t details;
    const char *good = "{\"link\":\"dashboard\",\"dashboard-version\":\"1.13.0\","
                       "\"config-version\":1,\"first-request\":1700000000.5,\"total-requests\":7}";
    assert (an_fmd_details_parse (good, strlen (good), &details) == 0);
    assert (strcmp (details.version, "1.13.0") == 0);
    assert (details.first_request == 1700000000 && details.total_requests == 7);
    const char *none = "{\"dashboard-version\":\"1.12\",\"first-request\":-1}";
    assert (an_fmd_details_parse (none, strlen (none), &details) == 0);
    assert (details.first_request == -1);
    const char *bad [] = { "", "[]", "{}", "{\"dashboard-version\":1,\"first-request\":1}",
        "{\"dashboard-version\":\"1\",\"first-request\":\"1\"}",
        "{\"dashboard-version\":\"1\",\"first-request\":-2}", "<html>" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert (an_fmd_details_parse (bad [i], strlen (bad [i]), &details) == TL_EINVAL);
}

static void
s_test_lists (void)
{
    int err = 0;
    char why [128];
    const char *calls = "[{\"endpoint\":\"a\",\"execution_time\":1.5,\"time\":\"2024-01-01 00:00:01\","
        "\"version\":\"1.0\",\"group_by\":null,\"ip\":\"10.0.0.1\"},"
        "{\"endpoint\":\"b\",\"execution_time\":2,\"time\":\"2024-01-01 00:00:02.25\"}]";
    an_fmd_list_t *list = an_fmd_calls_new (calls, strlen (calls), &err, why, sizeof why);
    assert (list && an_fmd_list_size (list) == 2);
    const an_fmd_call_t *call = an_fmd_list_call (list, 1);
    assert (call && strcmp (call->endpoint, "b") == 0 && call->execution_ms == 2);
    assert (call->time_us == 1704067202250000 && call->ip [0] == 0);
    assert (strcmp (an_fmd_list_call (list, 0)->ip, "10.0.0.1") == 0);
    assert (an_fmd_list_call (list, 2) == NULL && an_fmd_list_rule (list, 0) == NULL);
    an_fmd_list_destroy (&list);
    an_fmd_list_destroy (&list);
    const char *bad_calls [] = { "{}", "[1]", "[{\"endpoint\":\"\",\"execution_time\":1,"
        "\"time\":\"2024-01-01 00:00:00\"}", "[{\"endpoint\":\"a\",\"execution_time\":-1,"
        "\"time\":\"2024-01-01 00:00:00\"}]", "[{\"endpoint\":\"a\",\"execution_time\":1,"
        "\"time\":\"yesterday\"}]", "[{\"endpoint\":\"a\",\"execution_time\":\"1\","
        "\"time\":\"2024-01-01 00:00:00\"}]", "[{\"endpoint\":\"a\",\"execution_time\":1,"
        "\"time\":\"2024-01-01 00:00:00\",\"ip\":5}]" };
    for (size_t i = 0; i < sizeof bad_calls / sizeof bad_calls [0]; i++) {
        assert (an_fmd_calls_new (bad_calls [i], strlen (bad_calls [i]), &err, why,
                                  sizeof why) == NULL);
        assert (err == TL_EINVAL);
    }
    const char *rules = "[{\"endpoint\":\"a\",\"monitor\":true,\"last_accessed\":null},"
                        "{\"endpoint\":\"b\",\"monitor\":0}]";
    list = an_fmd_rules_new (rules, strlen (rules), &err, why, sizeof why);
    assert (list && an_fmd_list_size (list) == 2);
    assert (an_fmd_list_rule (list, 0)->monitor && !an_fmd_list_rule (list, 1)->monitor);
    an_fmd_list_destroy (&list);
    const char *bad_rule = "[{\"endpoint\":\"a\",\"monitor\":\"yes\"}]";
    assert (an_fmd_rules_new (bad_rule, strlen (bad_rule), &err, why, sizeof why) == NULL);
    list = an_fmd_calls_new ("[]", 2, &err, why, sizeof why);
    assert (list && an_fmd_list_size (list) == 0);
    an_fmd_list_destroy (&list);
}

void
an_fmd_test (bool verbose)
{
    (void) verbose;
    s_test_time ();
    s_test_details ();
    s_test_lists ();
}
