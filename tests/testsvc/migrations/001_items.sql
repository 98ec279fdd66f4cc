-- Items: a user-owned resource that exercises writes, ownership and
-- idempotency keys through the runtime.
CREATE TABLE items (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    owner       text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX items_owner_created ON items (owner, created_at DESC);
