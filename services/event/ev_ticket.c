//  ev_ticket.c — the rules of tickets and order items (ev_ticket.h).
#include "ev_ticket.h"
#include "ev_money.h"
#include "event_limits.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *s_types [] = { "free", "paid", "donation" };

int
ev_ticket_type_parse (const char *name, ev_ticket_type_t *type)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp (name, s_types [i]) == 0) {
            *type = (ev_ticket_type_t) i;
            return 0;
        }
    return -1;
}

const char *
ev_ticket_type_name (ev_ticket_type_t type)
{
    return type >= 0 && type <= EV_TICKET_DONATION ? s_types [type] : "";
}

#define S_FAIL(f, w) do { *field = (f); *why = (w); return 422; } while (0)

int
ev_ticket_check (const ev_ticket_t *ticket, int64_t event_ends_ms, const char **field,
                 const char **why)
{
    const ev_ticket_t *t = ticket;
    if (t->type != EV_TICKET_FREE && ev_money_minor_units (t->currency) < 0)
        S_FAIL ("currency", "a paid or donation ticket needs an ISO 4217 currency such as EUR");
    if (t->currency [0] && ev_money_minor_units (t->currency) < 0)
        S_FAIL ("currency", "must be an ISO 4217 currency such as EUR");
    if (t->type == EV_TICKET_PAID && (t->price <= 0 || t->price > EV_MONEY_MAX))
        S_FAIL ("price", "a paid ticket has a price above 0 (in minor units)");
    if (t->type != EV_TICKET_PAID && t->price != 0)
        S_FAIL ("price", "only paid tickets have a price");
    if (t->type == EV_TICKET_DONATION
    &&  (t->min_price < 0 || t->min_price > t->max_price || t->max_price > EV_MONEY_MAX))
        S_FAIL ("max_price", "a donation ticket needs 0 <= min_price <= max_price");
    if (t->type != EV_TICKET_DONATION && (t->min_price != 0 || t->max_price != 0))
        S_FAIL ("min_price", "only donation tickets have min_price and max_price");
    if (t->quantity < 1 || t->quantity > EV_MAX_TICKET_QUANTITY)
        S_FAIL ("quantity", "must be 1 to 1000000");
    if (t->min_order < 1)
        S_FAIL ("min_order", "must be at least 1");
    if (t->min_order > t->max_order)
        S_FAIL ("max_order", "must be at least min_order");
    if (t->max_order > t->quantity)
        S_FAIL ("max_order", "must be at most the quantity");
    if (t->sales_starts_ms >= t->sales_ends_ms)
        S_FAIL ("sales_ends_at", "sales must start before they end");
    if (t->sales_ends_ms > event_ends_ms)
        S_FAIL ("sales_ends_at", "sales end no later than the event");
    return 0;
}

#undef S_FAIL
#define S_FAIL(c, w) do { *code = (c); *why = (w); return 422; } while (0)

int
ev_ticket_item_check (const ev_ticket_t *ticket, int64_t quantity, bool price_given,
                      int64_t price, int64_t *unit_price, const char **code,
                      const char **why)
{
    if (quantity < ticket->min_order)
        S_FAIL ("below_min_order", "fewer tickets than the ticket's min_order");
    if (quantity > ticket->max_order)
        S_FAIL ("above_max_order", "more tickets than the ticket's max_order");
    if (ticket->type == EV_TICKET_DONATION) {
        if (!price_given || price < ticket->min_price || price > ticket->max_price)
            S_FAIL ("donation_out_of_range",
                    "a donation needs a price within the ticket's min_price..max_price");
        *unit_price = price;
        return 0;
    }
    *unit_price = ticket->type == EV_TICKET_PAID ? ticket->price : 0;
    if (price_given && price != *unit_price)
        S_FAIL ("price_mismatch", "only a donation names its price");
    return 0;
}

//  ---------------------------------------------------------------------
//  Self-test

static ev_ticket_t
s_paid (void)
{
    ev_ticket_t t = { .type = EV_TICKET_PAID, .price = 1250, .currency = "EUR",
                      .quantity = 100, .min_order = 1, .max_order = 10,
                      .sales_starts_ms = 1000, .sales_ends_ms = 2000 };
    return t;
}

static int
s_check (const ev_ticket_t *t, const char *want_field)
{
    const char *field = NULL, *why = NULL;
    int rc = ev_ticket_check (t, 3000, &field, &why);
    assert (want_field ? rc == 422 && strcmp (field, want_field) == 0 : rc == 0);
    return rc;
}

static void
s_test_open_event_rules_for_tickets (void)
{
    ev_ticket_t t = s_paid ();
    s_check (&t, NULL);
    t.price = 0;                            s_check (&t, "price");
    t = s_paid (); t.currency [0] = 0;      s_check (&t, "currency");
    t = s_paid (); strcpy (t.currency, "EUX"); s_check (&t, "currency");
    t = s_paid (); t.quantity = 0;          s_check (&t, "quantity");
    t = s_paid (); t.min_order = 0;         s_check (&t, "min_order");
    t = s_paid (); t.min_order = 11;        s_check (&t, "max_order");
    t = s_paid (); t.max_order = 101;       s_check (&t, "max_order");
    t = s_paid (); t.sales_ends_ms = 1000;  s_check (&t, "sales_ends_at");
    t = s_paid (); t.sales_ends_ms = 3001;  s_check (&t, "sales_ends_at");
    t = s_paid (); t.sales_ends_ms = 3000;  s_check (&t, NULL);
    //  Free: no price, a currency optional
    t = s_paid (); t.type = EV_TICKET_FREE; s_check (&t, "price");
    t.price = 0; t.currency [0] = 0;        s_check (&t, NULL);
    //  Donation: 0 <= min <= max
    t = s_paid (); t.type = EV_TICKET_DONATION; t.price = 0;
    t.min_price = 0; t.max_price = 0;       s_check (&t, NULL);
    t.min_price = 500; t.max_price = 100;   s_check (&t, "max_price");
    t.min_price = -1; t.max_price = 100;    s_check (&t, "max_price");
    t = s_paid (); t.min_price = 1; t.max_price = 5; s_check (&t, "min_price");
}

static void
s_test_items_order_within_the_rules (void)
{
    ev_ticket_t t = s_paid ();
    t.min_order = 2;
    t.max_order = 4;
    int64_t unit = -1;
    const char *code = NULL, *why = NULL;
    assert (ev_ticket_item_check (&t, 2, false, 0, &unit, &code, &why) == 0 && unit == 1250);
    assert (ev_ticket_item_check (&t, 1, false, 0, &unit, &code, &why) == 422
            && !strcmp (code, "below_min_order"));
    assert (ev_ticket_item_check (&t, 5, false, 0, &unit, &code, &why) == 422
            && !strcmp (code, "above_max_order"));
    assert (ev_ticket_item_check (&t, 2, true, 1, &unit, &code, &why) == 422
            && !strcmp (code, "price_mismatch"));
    assert (ev_ticket_item_check (&t, 2, true, 1250, &unit, &code, &why) == 0);
    t.type = EV_TICKET_DONATION;
    t.price = 0, t.min_price = 100, t.max_price = 1000;
    assert (ev_ticket_item_check (&t, 2, false, 0, &unit, &code, &why) == 422
            && !strcmp (code, "donation_out_of_range"));
    assert (ev_ticket_item_check (&t, 2, true, 99, &unit, &code, &why) == 422);
    assert (ev_ticket_item_check (&t, 2, true, 1001, &unit, &code, &why) == 422);
    assert (ev_ticket_item_check (&t, 2, true, 1000, &unit, &code, &why) == 0 && unit == 1000);
    t.type = EV_TICKET_FREE;
    assert (ev_ticket_item_check (&t, 3, false, 0, &unit, &code, &why) == 0 && unit == 0);
}

static void
s_test_type_names_read_back (void)
{
    ev_ticket_type_t type;
    for (int i = 0; i < 3; i++)
        assert (ev_ticket_type_parse (ev_ticket_type_name ((ev_ticket_type_t) i), &type) == 0
                && (int) type == i);
    assert (ev_ticket_type_parse ("Free", &type) == -1);
    assert (ev_ticket_type_parse (NULL, &type) == -1);
}

void
ev_ticket_test (bool verbose)
{
    if (verbose)
        printf (" * ev_ticket: ");
    s_test_open_event_rules_for_tickets ();
    s_test_items_order_within_the_rules ();
    s_test_type_names_read_back ();
    if (verbose)
        printf ("OK\n");
}
