//  ev_money.c — currencies and amounts in minor units (ev_money.h).
#include "ev_money.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

//  ISO 4217 codes in common use and their minor units
static const struct {
    const char code [4];
    int minor;
} s_currencies [] = {
    { "AUD", 2 }, { "BGN", 2 }, { "BHD", 3 }, { "BRL", 2 }, { "CAD", 2 }, { "CHF", 2 },
    { "CLP", 0 }, { "CNY", 2 }, { "CZK", 2 }, { "DKK", 2 }, { "EUR", 2 }, { "GBP", 2 },
    { "HKD", 2 }, { "HUF", 2 }, { "IDR", 2 }, { "ILS", 2 }, { "INR", 2 }, { "ISK", 0 },
    { "JOD", 3 }, { "JPY", 0 }, { "KRW", 0 }, { "KWD", 3 }, { "MXN", 2 }, { "MYR", 2 },
    { "NOK", 2 }, { "NZD", 2 }, { "OMR", 3 }, { "PHP", 2 }, { "PLN", 2 }, { "RON", 2 },
    { "SEK", 2 }, { "SGD", 2 }, { "THB", 2 }, { "TND", 3 }, { "TRY", 2 }, { "TWD", 2 },
    { "UAH", 2 }, { "USD", 2 }, { "VND", 0 }, { "ZAR", 2 },
};

int
ev_money_minor_units (const char *code)
{
    if (!code || strlen (code) != 3)
        return -1;
    for (size_t i = 0; i < sizeof s_currencies / sizeof s_currencies [0]; i++)
        if (memcmp (s_currencies [i].code, code, 3) == 0)
            return s_currencies [i].minor;
    return -1;
}

int
ev_money_format (int64_t amount, const char *code, char *text, size_t size)
{
    int minor = ev_money_minor_units (code);
    if (minor < 0 || amount < -EV_MONEY_MAX || amount > EV_MONEY_MAX)
        return -1;
    uint64_t magnitude = (uint64_t) (amount < 0 ? -amount : amount);
    uint64_t scale = 1;
    for (int i = 0; i < minor; i++)
        scale *= 10;
    int n = minor
          ? snprintf (text, size, "%s%" PRIu64 ".%0*" PRIu64 " %s", amount < 0 ? "-" : "",
                      magnitude / scale, minor, magnitude % scale, code)
          : snprintf (text, size, "%s%" PRIu64 " %s", amount < 0 ? "-" : "", magnitude, code);
    return n < 0 || (size_t) n >= size ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_test_minor_units_come_from_the_table (void)
{
    assert (ev_money_minor_units ("EUR") == 2);
    assert (ev_money_minor_units ("JPY") == 0);
    assert (ev_money_minor_units ("BHD") == 3);
    assert (ev_money_minor_units ("eur") == -1);
    assert (ev_money_minor_units ("EURO") == -1);
    assert (ev_money_minor_units ("ZZZ") == -1);       //  well-formed, not a currency
    assert (ev_money_minor_units ("") == -1);
    assert (ev_money_minor_units (NULL) == -1);
}

static void
s_test_amounts_format_with_their_decimals (void)
{
    char text [32];
    assert (ev_money_format (1250, "EUR", text, sizeof text) == 0 && !strcmp (text, "12.50 EUR"));
    assert (ev_money_format (1250, "JPY", text, sizeof text) == 0 && !strcmp (text, "1250 JPY"));
    assert (ev_money_format (5, "USD", text, sizeof text) == 0 && !strcmp (text, "0.05 USD"));
    assert (ev_money_format (-5, "USD", text, sizeof text) == 0 && !strcmp (text, "-0.05 USD"));
    assert (ev_money_format (1, "KWD", text, sizeof text) == 0 && !strcmp (text, "0.001 KWD"));
    assert (ev_money_format (0, "EUR", text, sizeof text) == 0 && !strcmp (text, "0.00 EUR"));
    assert (ev_money_format (EV_MONEY_MAX, "EUR", text, sizeof text) == 0
            && !strcmp (text, "1000000000.00 EUR"));
    assert (ev_money_format (EV_MONEY_MAX + 1, "EUR", text, sizeof text) == -1);
    assert (ev_money_format (1, "ABC", text, sizeof text) == -1);
    assert (ev_money_format (1250, "EUR", text, 5) == -1);
}

void
ev_money_test (bool verbose)
{
    if (verbose)
        printf (" * ev_money: ");
    s_test_minor_units_come_from_the_table ();
    s_test_amounts_format_with_their_decimals ();
    if (verbose)
        printf ("OK\n");
}
