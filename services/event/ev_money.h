//  ev_money.h — money as integers of a currency's minor unit (API.md:
//  `price: 1250` with `currency: "EUR"` is 12.50 €; JPY has no minor unit,
//  so 1250 JPY is ¥1250), never floating point. A small table of ISO 4217
//  currencies with their minor units; any other code is refused.
#ifndef EV_MONEY_H_INCLUDED
#define EV_MONEY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The largest amount of one price or one order total, in minor units
#define EV_MONEY_MAX 100000000000LL         //  10^11: a billion euros in cents

//  The minor units (decimals) of ISO 4217 currency `code` ("EUR": 2,
//  "JPY": 0, "BHD": 3), or -1 for a code not in the table (NULL, lower
//  case and made-up codes included).
int ev_money_minor_units (const char *code);

//  Writes `amount` minor units of `code` (a known currency) as text with
//  its decimals and the code: "12.50 EUR", "1250 JPY", "-0.05 USD".
//  Returns 0, or -1 for an unknown currency or a buffer too small.
int ev_money_format (int64_t amount, const char *code, char *text, size_t size);

//  Self-test, run by ctest.
void ev_money_test (bool verbose);

#endif
