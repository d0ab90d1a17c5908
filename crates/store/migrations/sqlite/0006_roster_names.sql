-- RFC 6121 §2.1.2: the owner's own handle for a contact (roster item `name`, NULL: the
-- contact's display name) and the roster groups the owner filed it under, as a JSON array of
-- strings. Both belong to one side of the pair only.
ALTER TABLE contacts ADD COLUMN name TEXT;
ALTER TABLE contacts ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
