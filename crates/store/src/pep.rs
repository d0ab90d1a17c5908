//! Personal eventing (XEP-0163) persistence: nodes with their configuration and published
//! items, publish/trim in one transaction. Rows only; no XML parsing, no access rules here.
use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One node of an account's PEP service and its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepNodeRow {
    /// Bare JID of the account.
    pub owner: String,
    /// Node name (usually a namespace).
    pub node: String,
    /// `pubsub#access_model`: `presence`, `open` or `whitelist`.
    pub access_model: String,
    /// `pubsub#persist_items`: items are stored (else only notified).
    pub persist_items: bool,
    /// `pubsub#max_items`: most items kept, oldest dropped first.
    pub max_items: i64,
    /// `pubsub#send_last_published_item`: `never`, `on_sub` or `on_sub_and_presence`.
    pub send_last: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One published item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepItemRow {
    pub node: String,
    pub item_id: String,
    /// Bare JID of the publisher.
    pub publisher: String,
    /// The serialised payload element.
    pub payload: String,
    /// Unix milliseconds.
    pub published_at: i64,
}

/// A publish: the node is created with `config` when missing (unless the owner already has
/// `max_nodes` nodes), the item replaces one with the same id and the node is trimmed to its
/// `max_items`.
#[derive(Debug, Clone)]
pub struct PepPublish<'a> {
    pub config: &'a PepNodeRow,
    pub item: &'a PepItemRow,
    pub max_nodes: i64,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PepPublished {
    /// Stored (or, for a node without persistence, accepted); `created`: the node is new.
    Done { created: bool },
    /// The node did not exist and the owner has `max_nodes` nodes already: nothing written.
    NodeLimit,
}

const NODE_COLUMNS: &str =
    "owner, node, access_model, persist_items, max_items, send_last, created_at";

fn node_from_row(r: &AnyRow) -> Result<PepNodeRow, StoreError> {
    Ok(PepNodeRow {
        owner: r.try_get("owner")?,
        node: r.try_get("node")?,
        access_model: r.try_get("access_model")?,
        persist_items: r.try_get::<i64, _>("persist_items")? != 0,
        max_items: r.try_get("max_items")?,
        send_last: r.try_get("send_last")?,
        created_at: r.try_get("created_at")?,
    })
}

fn item_from_row(r: &AnyRow) -> Result<PepItemRow, StoreError> {
    Ok(PepItemRow {
        node: r.try_get("node")?,
        item_id: r.try_get("item_id")?,
        publisher: r.try_get("publisher")?,
        payload: r.try_get("payload")?,
        published_at: r.try_get("published_at")?,
    })
}

impl Store {
    /// The node `node` of `owner`'s PEP service.
    pub async fn pep_node(
        &self,
        owner: &str,
        node: &str,
    ) -> Result<Option<PepNodeRow>, StoreError> {
        let sql =
            format!("SELECT {NODE_COLUMNS} FROM xmpp_pep_nodes WHERE owner = $1 AND node = $2");
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(node)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(node_from_row).transpose()
    }

    /// Every node of `owner`, by name.
    pub async fn pep_nodes(&self, owner: &str) -> Result<Vec<PepNodeRow>, StoreError> {
        let sql =
            format!("SELECT {NODE_COLUMNS} FROM xmpp_pep_nodes WHERE owner = $1 ORDER BY node");
        let rows = sqlx::query(&sql).bind(owner).fetch_all(self.pool()).await?;
        rows.iter().map(node_from_row).collect()
    }

    /// Publishes one item (see [`PepPublish`]) in one transaction.
    pub async fn pep_publish(&self, p: &PepPublish<'_>) -> Result<PepPublished, StoreError> {
        let c = p.config;
        let mut tx = self.pool().begin().await?;
        let exists = sqlx::query(
            "SELECT max_items, persist_items FROM xmpp_pep_nodes WHERE owner = $1 AND node = $2",
        )
        .bind(&c.owner)
        .bind(&c.node)
        .fetch_optional(&mut *tx)
        .await?;
        let (created, max_items, persist) = match exists {
            Some(r) => (
                false,
                r.try_get::<i64, _>("max_items")?,
                r.try_get::<i64, _>("persist_items")? != 0,
            ),
            None => {
                let count: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM xmpp_pep_nodes WHERE owner = $1")
                        .bind(&c.owner)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                if count >= p.max_nodes {
                    return Ok(PepPublished::NodeLimit);
                }
                sqlx::query(
                    "INSERT INTO xmpp_pep_nodes (owner, node, access_model, persist_items, max_items, send_last, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&c.owner)
                .bind(&c.node)
                .bind(&c.access_model)
                .bind(i64::from(c.persist_items))
                .bind(c.max_items)
                .bind(&c.send_last)
                .bind(c.created_at)
                .execute(&mut *tx)
                .await
                .map_err(crate::error::conflict_as("pep node"))?;
                (true, c.max_items, c.persist_items)
            }
        };
        if persist {
            let it = p.item;
            sqlx::query(
                "DELETE FROM xmpp_pep_items WHERE owner = $1 AND node = $2 AND item_id = $3",
            )
            .bind(&c.owner)
            .bind(&c.node)
            .bind(&it.item_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO xmpp_pep_items (owner, node, item_id, publisher, payload, published_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&c.owner)
            .bind(&c.node)
            .bind(&it.item_id)
            .bind(&it.publisher)
            .bind(&it.payload)
            .bind(it.published_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM xmpp_pep_items WHERE owner = $1 AND node = $2 AND seq NOT IN \
                 (SELECT seq FROM xmpp_pep_items WHERE owner = $3 AND node = $4 ORDER BY seq DESC LIMIT $5)",
            )
            .bind(&c.owner)
            .bind(&c.node)
            .bind(&c.owner)
            .bind(&c.node)
            .bind(max_items.max(1))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(PepPublished::Done { created })
    }

    /// Items of a node in publish order: those with the given ids (all when `ids` is empty),
    /// at most the `max` most recent.
    pub async fn pep_items(
        &self,
        owner: &str,
        node: &str,
        ids: &[String],
        max: Option<i64>,
    ) -> Result<Vec<PepItemRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT node, item_id, publisher, payload, published_at FROM xmpp_pep_items \
             WHERE owner = $1 AND node = $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(owner)
        .bind(node)
        .bind(if ids.is_empty() {
            max.unwrap_or(i64::MAX).max(0)
        } else {
            i64::MAX
        })
        .fetch_all(self.pool())
        .await?;
        let mut items = rows
            .iter()
            .map(item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if !ids.is_empty() {
            items.retain(|i| ids.contains(&i.item_id));
            items.truncate(usize::try_from(max.unwrap_or(i64::MAX)).unwrap_or(usize::MAX));
        }
        items.reverse();
        Ok(items)
    }

    /// The newest item of every node of `owner` that has one, with its node.
    pub async fn pep_last_items(
        &self,
        owner: &str,
    ) -> Result<Vec<(PepNodeRow, PepItemRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.owner, n.node, n.access_model, n.persist_items, n.max_items, n.send_last, n.created_at, \
             i.item_id, i.publisher, i.payload, i.published_at FROM xmpp_pep_nodes n \
             JOIN xmpp_pep_items i ON i.owner = n.owner AND i.node = n.node \
             WHERE n.owner = $1 AND i.seq = (SELECT MAX(seq) FROM xmpp_pep_items l WHERE l.owner = n.owner AND l.node = n.node) \
             ORDER BY n.node",
        )
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((node_from_row(r)?, item_from_row(r)?)))
            .collect()
    }

    /// Removes one item; false when it was not there.
    pub async fn pep_retract(
        &self,
        owner: &str,
        node: &str,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "DELETE FROM xmpp_pep_items WHERE owner = $1 AND node = $2 AND item_id = $3",
        )
        .bind(owner)
        .bind(node)
        .bind(item_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes a node and its items in one transaction; false when it did not exist.
    pub async fn pep_delete_node(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM xmpp_pep_items WHERE owner = $1 AND node = $2")
            .bind(owner)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM xmpp_pep_nodes WHERE owner = $1 AND node = $2")
            .bind(owner)
            .bind(node)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }
}
