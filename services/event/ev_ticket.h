//  ev_ticket.h — Open Event's rules for a ticket and for one item of an
//  order (API.md): free, paid (price > 0) and donation (0 ≤ min_price ≤
//  max_price) tickets in an ISO 4217 currency, sales that start before they
//  end and end no later than the event, 1 ≤ min_order ≤ max_order ≤
//  quantity; an item orders min_order..max_order of a ticket at its price
//  (a donation: an amount within min..max). Pure: no database, no
//  allocation. Availability is not here: it needs the database's locks
//  (event_orders.c).
#ifndef EV_TICKET_H_INCLUDED
#define EV_TICKET_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef enum { EV_TICKET_FREE = 0, EV_TICKET_PAID, EV_TICKET_DONATION } ev_ticket_type_t;

typedef struct {
    ev_ticket_type_t type;
    int64_t price;                      //  paid: > 0; otherwise 0
    int64_t min_price, max_price;       //  donation; otherwise 0
    char currency [4];                  //  ISO 4217; "" for a free ticket without one
    int64_t quantity;
    int64_t min_order, max_order;
    int64_t sales_starts_ms, sales_ends_ms;
} ev_ticket_t;

//  Checks a ticket against the rules, for an event that ends at
//  `event_ends_ms`. Returns 0, or 422 with the offending field and why in
//  *field and *why (static strings).
int ev_ticket_check (const ev_ticket_t *ticket, int64_t event_ends_ms, const char **field,
                     const char **why);

//  Checks one item of an order: `quantity` of `ticket`, with the donor's
//  amount `price` per ticket when `price_given` (donations need one; other
//  types refuse one that differs from theirs). Returns 0 with the price of
//  one ticket in *unit_price, or 422 with an error code
//  (below_min_order, above_max_order, donation_out_of_range, price_mismatch)
//  and why in *code and *why (static strings).
int ev_ticket_item_check (const ev_ticket_t *ticket, int64_t quantity, bool price_given,
                          int64_t price, int64_t *unit_price, const char **code,
                          const char **why);

//  Names as the API spells them: _parse returns 0 or -1 (NULL included).
int ev_ticket_type_parse (const char *name, ev_ticket_type_t *type);
const char *ev_ticket_type_name (ev_ticket_type_t type);

//  Self-test, run by ctest.
void ev_ticket_test (bool verbose);

#endif
