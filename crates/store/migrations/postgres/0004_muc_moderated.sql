-- XEP-0045 moderated rooms: only occupants with voice (participants, moderators) may send
-- to the whole room. 0 or 1; roles themselves live only while someone is in the room.
ALTER TABLE xmpp_rooms ADD COLUMN moderated BIGINT NOT NULL DEFAULT 0;
