-- 003_avatar.sql — a user's avatar: the URL of an upload's `avatar`
-- variant (the upload service keeps the reference, auth_avatar.c), NULL
-- when they have none.
ALTER TABLE users ADD COLUMN avatar_url text
    CHECK (avatar_url IS NULL OR char_length (avatar_url) <= 2200);
