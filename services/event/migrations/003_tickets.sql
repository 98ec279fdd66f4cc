-- 003_tickets.sql — tickets, orders and the holds of pending orders.
--
-- Never oversell (README.md "Never oversell"): an order locks the rows of
-- its tickets (FOR UPDATE, in id order) and, under those locks, counts
-- `sold` (completed orders, a counter kept under the same lock) plus the
-- live holds of pending orders (rows of `holds` whose expires_at is still
-- ahead); only then does it sell or hold. Orders of different tickets lock
-- different rows and run in parallel. A hold past its expires_at is not
-- counted, whether or not the job that expires its order has run.

CREATE TABLE tickets (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (char_length (name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '' CHECK (char_length (description) <= 2000),
    type            text NOT NULL CHECK (type IN ('free', 'paid', 'donation')),
    price           bigint NOT NULL DEFAULT 0 CHECK (price >= 0),
    min_price       bigint NOT NULL DEFAULT 0 CHECK (min_price >= 0),
    max_price       bigint NOT NULL DEFAULT 0 CHECK (max_price >= min_price),
    currency        text CHECK (currency ~ '^[A-Z]{3}$'),
    quantity        integer NOT NULL CHECK (quantity > 0),
    sold            integer NOT NULL DEFAULT 0,
    sales_starts_at timestamptz NOT NULL,
    sales_ends_at   timestamptz NOT NULL,
    min_order       integer NOT NULL DEFAULT 1,
    max_order       integer NOT NULL DEFAULT 10,
    hidden          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now (),
    updated_at      timestamptz NOT NULL DEFAULT now (),
    UNIQUE (event_id, name),
    CHECK (sold >= 0 AND sold <= quantity),
    CHECK (1 <= min_order AND min_order <= max_order AND max_order <= quantity),
    CHECK (sales_starts_at < sales_ends_at)
);
CREATE INDEX tickets_event ON tickets (event_id, created_at, id);

CREATE TABLE orders (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    event_id            uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    buyer               text,               -- NULL once the buyer's account is gone
    status              text NOT NULL
                        CHECK (status IN ('pending', 'completed', 'cancelled', 'expired')),
    total               bigint NOT NULL CHECK (total >= 0),
    currency            text,
    expires_at          timestamptz,        -- the hold of a pending order
    payment_reference   text CHECK (char_length (payment_reference) <= 200),
    created_at          timestamptz NOT NULL DEFAULT now (),
    updated_at          timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX orders_event ON orders (event_id, created_at DESC, id DESC);
CREATE INDEX orders_buyer ON orders (buyer, created_at DESC, id DESC);

CREATE TABLE order_items (
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    ticket_id   uuid NOT NULL REFERENCES tickets (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price       bigint NOT NULL CHECK (price >= 0),     -- of one ticket
    PRIMARY KEY (order_id, ticket_id)
);
CREATE INDEX order_items_ticket ON order_items (ticket_id);

-- The tickets a pending order holds, until it is paid, cancelled or
-- expired (then its rows go).
CREATE TABLE holds (
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    ticket_id   uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    quantity    integer NOT NULL CHECK (quantity > 0),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (order_id, ticket_id)
);
CREATE INDEX holds_ticket ON holds (ticket_id, expires_at);
