-- Personal eventing (XEP-0163, a subset of XEP-0060 on each account's bare JID): nodes with
-- their configuration, and published items in publish order (a republished id moves last).
CREATE TABLE xmpp_pep_nodes (
    owner         TEXT NOT NULL,
    node          TEXT NOT NULL,
    access_model  TEXT NOT NULL,
    persist_items BIGINT NOT NULL,
    max_items     BIGINT NOT NULL,
    send_last     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (owner, node)
);

CREATE TABLE xmpp_pep_items (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner         TEXT NOT NULL,
    node          TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    publisher     TEXT NOT NULL,
    payload       TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    FOREIGN KEY (owner, node) REFERENCES xmpp_pep_nodes(owner, node) ON DELETE CASCADE
);
CREATE UNIQUE INDEX xmpp_pep_items_id ON xmpp_pep_items(owner, node, item_id);
CREATE INDEX xmpp_pep_items_order ON xmpp_pep_items(owner, node, seq);
