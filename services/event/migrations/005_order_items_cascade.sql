-- An event's deletion takes its tickets with it, and so the lines of its
-- orders that named them: without the cascade, an event with any order
-- at all (even a cancelled or expired one) could not be deleted.
ALTER TABLE order_items DROP CONSTRAINT order_items_ticket_id_fkey,
    ADD CONSTRAINT order_items_ticket_id_fkey
        FOREIGN KEY (ticket_id) REFERENCES tickets (id) ON DELETE CASCADE;
