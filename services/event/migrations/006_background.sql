-- 006_background.sql — an event's background image: the URL of an
-- upload's `background` variant (the upload service keeps the reference,
-- event_background.c), NULL when it has none.
ALTER TABLE events ADD COLUMN background_url text
    CHECK (background_url IS NULL OR char_length (background_url) <= 2200);
