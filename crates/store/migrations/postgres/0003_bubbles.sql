-- Bubbles over REST: the company a room belongs to (NULL for rooms made before this
-- migration) and a description. Members stay in xmpp_room_affiliations.
ALTER TABLE xmpp_rooms ADD COLUMN company_id BIGINT REFERENCES companies(id) ON DELETE CASCADE;
ALTER TABLE xmpp_rooms ADD COLUMN description TEXT NOT NULL DEFAULT '';
CREATE INDEX xmpp_rooms_company ON xmpp_rooms(company_id);
