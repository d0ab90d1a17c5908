-- XMPP: SCRAM keys (never passwords), message archive (MAM), offline queue, private XML and
-- vCards, block lists, last activity.
CREATE TABLE xmpp_scram (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    mechanism   TEXT NOT NULL,
    salt        BYTEA NOT NULL,
    iterations  BIGINT NOT NULL,
    stored_key  BYTEA NOT NULL,
    server_key  BYTEA NOT NULL,
    PRIMARY KEY (user_id, mechanism)
);

CREATE TABLE xmpp_archive (
    id          BIGSERIAL PRIMARY KEY,
    owner       TEXT NOT NULL,
    stanza_id   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    stanza      TEXT NOT NULL
);
CREATE UNIQUE INDEX xmpp_archive_stanza ON xmpp_archive(owner, stanza_id);
CREATE INDEX xmpp_archive_owner ON xmpp_archive(owner, id);

CREATE TABLE xmpp_offline (
    id          BIGSERIAL PRIMARY KEY,
    owner       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    stanza      TEXT NOT NULL
);
CREATE INDEX xmpp_offline_owner ON xmpp_offline(owner, id);

CREATE TABLE xmpp_private (
    owner       TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    xml         TEXT NOT NULL,
    PRIMARY KEY (owner, namespace)
);

CREATE TABLE xmpp_blocklist (
    owner       TEXT NOT NULL,
    jid         TEXT NOT NULL,
    PRIMARY KEY (owner, jid)
);

CREATE TABLE xmpp_last (
    owner       TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    status      TEXT NOT NULL
);

-- Multi-user chat (XEP-0045): persistent members-only rooms ("bubbles") and affiliations.
CREATE TABLE xmpp_rooms (
    jid         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE xmpp_room_affiliations (
    room         TEXT NOT NULL REFERENCES xmpp_rooms(jid) ON DELETE CASCADE,
    jid          TEXT NOT NULL,
    affiliation  TEXT NOT NULL,
    PRIMARY KEY (room, jid)
);
CREATE INDEX xmpp_room_affiliations_jid ON xmpp_room_affiliations(jid);
