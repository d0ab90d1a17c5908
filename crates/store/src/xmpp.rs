//! XMPP persistence: SCRAM keys, the message archive (MAM) and offline queue written in group
//! commits, private XML, block lists and last activity. Rows only; no XML parsing here.
use crate::{Store, StoreError};
use iris_model::UserId;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Stored SCRAM keys of one user for one hash (RFC 5802 §3); never a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramRow {
    /// `SCRAM-SHA-1` or `SCRAM-SHA-256`.
    pub mechanism: String,
    pub salt: Vec<u8>,
    pub iterations: i64,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramRow")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// One archived message in one user's (or room's) archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRow {
    /// Bare JID whose archive holds it.
    pub owner: String,
    /// XEP-0359 stanza id, unique per owner.
    pub stanza_id: String,
    /// Bare JID of the other party (or the room occupant's nick JID).
    pub peer: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The serialised stanza.
    pub stanza: String,
}

/// A message waiting for its recipient to come online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineRow {
    /// Bare JID of the recipient.
    pub owner: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The serialised stanza.
    pub stanza: String,
}

/// Filters and paging of an archive query (XEP-0313 with XEP-0059 RSM).
#[derive(Debug, Clone, Default)]
pub struct ArchiveQuery {
    pub owner: String,
    /// Only messages with this peer (bare JID).
    pub with: Option<String>,
    /// Only messages at or after this time (Unix ms).
    pub start: Option<i64>,
    /// Only messages at or before this time (Unix ms).
    pub end: Option<i64>,
    /// Only messages after the one with this stanza id.
    pub after: Option<String>,
    /// Only messages before the one with this stanza id; `Some(None)`: the last page.
    pub before: Option<Option<String>>,
    /// Page size.
    pub max: i64,
}

/// A page of archive rows in archive order, and whether it reaches the end of the range.
#[derive(Debug, Clone, Default)]
pub struct ArchivePage {
    pub rows: Vec<ArchiveRow>,
    pub complete: bool,
}

fn archive_from_row(row: &AnyRow) -> Result<ArchiveRow, StoreError> {
    Ok(ArchiveRow {
        owner: row.try_get("owner")?,
        stanza_id: row.try_get("stanza_id")?,
        peer: row.try_get("peer")?,
        created_at: row.try_get("created_at")?,
        stanza: row.try_get("stanza")?,
    })
}

impl Store {
    /// The SCRAM keys of the user with `login` for `mechanism`.
    pub async fn scram_keys(
        &self,
        login: &str,
        mechanism: &str,
    ) -> Result<Option<ScramRow>, StoreError> {
        let row = sqlx::query(
            "SELECT s.mechanism, s.salt, s.iterations, s.stored_key, s.server_key FROM xmpp_scram s \
             JOIN users u ON u.id = s.user_id WHERE u.login = $1 AND s.mechanism = $2",
        )
        .bind(login)
        .bind(mechanism)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => Ok(Some(ScramRow {
                mechanism: row.try_get("mechanism")?,
                salt: row.try_get("salt")?,
                iterations: row.try_get("iterations")?,
                stored_key: row.try_get("stored_key")?,
                server_key: row.try_get("server_key")?,
            })),
            None => Ok(None),
        }
    }

    /// Replaces every SCRAM key of `user` with `rows`, atomically.
    pub async fn set_scram_keys(&self, user: UserId, rows: &[ScramRow]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM xmpp_scram WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO xmpp_scram (user_id, mechanism, salt, iterations, stored_key, server_key) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user.0)
            .bind(&r.mechanism)
            .bind(&r.salt)
            .bind(r.iterations)
            .bind(&r.stored_key)
            .bind(&r.server_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes archive and offline rows in one transaction (a group commit): all or none.
    pub async fn archive_batch(
        &self,
        archive: &[ArchiveRow],
        offline: &[OfflineRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for r in archive {
            sqlx::query(
                "INSERT INTO xmpp_archive (owner, stanza_id, peer, created_at, stanza) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.owner)
            .bind(&r.stanza_id)
            .bind(&r.peer)
            .bind(r.created_at)
            .bind(&r.stanza)
            .execute(&mut *tx)
            .await?;
        }
        for r in offline {
            sqlx::query("INSERT INTO xmpp_offline (owner, created_at, stanza) VALUES ($1, $2, $3)")
                .bind(&r.owner)
                .bind(r.created_at)
                .bind(&r.stanza)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn archive_row_id(
        &self,
        owner: &str,
        stanza_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM xmpp_archive WHERE owner = $1 AND stanza_id = $2")
            .bind(owner)
            .bind(stanza_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    /// A page of one archive, oldest first. `Ok(None)` when `after`/`before` names no
    /// archived message (XEP-0313 §6.2: `item-not-found`).
    pub async fn archive_query(&self, q: &ArchiveQuery) -> Result<Option<ArchivePage>, StoreError> {
        let after = match &q.after {
            Some(id) => match self.archive_row_id(&q.owner, id).await? {
                Some(n) => n,
                None => return Ok(None),
            },
            None => 0,
        };
        let (before, last_page) = match &q.before {
            Some(Some(id)) => match self.archive_row_id(&q.owner, id).await? {
                Some(n) => (n, true),
                None => return Ok(None),
            },
            Some(None) => (i64::MAX, true),
            None => (i64::MAX, false),
        };
        let max = q.max.clamp(0, 1000);
        let order = if last_page { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT owner, stanza_id, peer, created_at, stanza FROM xmpp_archive \
             WHERE owner = $1 AND id > $2 AND id < $3 AND ($4 = '' OR peer = $5) \
             AND created_at >= $6 AND created_at <= $7 ORDER BY id {order} LIMIT $8"
        );
        let with = q.with.clone().unwrap_or_default();
        let rows = sqlx::query(&sql)
            .bind(&q.owner)
            .bind(after)
            .bind(before)
            .bind(&with)
            .bind(&with)
            .bind(q.start.unwrap_or(i64::MIN))
            .bind(q.end.unwrap_or(i64::MAX))
            .bind(max + 1)
            .fetch_all(self.pool())
            .await?;
        let mut rows = rows
            .iter()
            .map(archive_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let complete = rows.len() as i64 <= max;
        rows.truncate(usize::try_from(max).unwrap_or(0));
        if last_page {
            rows.reverse();
        }
        Ok(Some(ArchivePage { rows, complete }))
    }

    /// Messages waiting for `owner`, oldest first, with their row ids.
    pub async fn offline_messages(
        &self,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, stanza FROM xmpp_offline WHERE owner = $1 ORDER BY id LIMIT $2",
        )
        .bind(owner)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("stanza")?)))
            .collect()
    }

    /// Forgets `owner`'s offline messages up to row id `upto` (once they were delivered).
    pub async fn delete_offline(&self, owner: &str, upto: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM xmpp_offline WHERE owner = $1 AND id <= $2")
            .bind(owner)
            .bind(upto)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Private XML of `owner` stored under `namespace` (XEP-0049, vCards).
    pub async fn private_xml(
        &self,
        owner: &str,
        namespace: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT xml FROM xmpp_private WHERE owner = $1 AND namespace = $2")
            .bind(owner)
            .bind(namespace)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("xml")?),
            None => None,
        })
    }

    /// Stores private XML of `owner` under `namespace`, replacing what was there.
    pub async fn set_private_xml(
        &self,
        owner: &str,
        namespace: &str,
        xml: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO xmpp_private (owner, namespace, xml) VALUES ($1, $2, $3) \
             ON CONFLICT (owner, namespace) DO UPDATE SET xml = excluded.xml",
        )
        .bind(owner)
        .bind(namespace)
        .bind(xml)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// JIDs `owner` blocks (XEP-0191).
    pub async fn blocklist(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT jid FROM xmpp_blocklist WHERE owner = $1 ORDER BY jid")
            .bind(owner)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("jid")?)).collect()
    }

    /// Adds (`block`) or removes JIDs from `owner`'s block list; an empty `jids` with
    /// `block = false` unblocks everyone.
    pub async fn set_blocked(
        &self,
        owner: &str,
        jids: &[String],
        block: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        if !block && jids.is_empty() {
            sqlx::query("DELETE FROM xmpp_blocklist WHERE owner = $1")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        for jid in jids {
            let sql = if block {
                "INSERT INTO xmpp_blocklist (owner, jid) VALUES ($1, $2) ON CONFLICT (owner, jid) DO NOTHING"
            } else {
                "DELETE FROM xmpp_blocklist WHERE owner = $1 AND jid = $2"
            };
            sqlx::query(sql)
                .bind(owner)
                .bind(jid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// When `owner` was last seen going offline (Unix ms) and their last status.
    pub async fn last_activity(&self, owner: &str) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT at, status FROM xmpp_last WHERE owner = $1")
            .bind(owner)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("at")?, r.try_get("status")?)),
            None => None,
        })
    }

    /// Records that `owner` went offline at `at` with `status`.
    pub async fn set_last_activity(
        &self,
        owner: &str,
        at: i64,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO xmpp_last (owner, at, status) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO UPDATE SET at = excluded.at, status = excluded.status",
        )
        .bind(owner)
        .bind(at)
        .bind(status)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// A persistent multi-user chat room (XEP-0045), also known as a bubble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    /// Bare JID of the room.
    pub jid: String,
    /// Human-readable name.
    pub name: String,
    /// Free text shown with the name.
    pub description: String,
    /// The company it belongs to; `None` for rooms made before companies were recorded.
    pub company_id: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// XEP-0045 moderated room: visitors (occupants without voice) may not send to all.
    pub moderated: bool,
}

/// A new room: its owner and first members (bare JID, affiliation).
#[derive(Debug, Clone)]
pub struct NewRoom<'a> {
    pub jid: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub company_id: Option<i64>,
    pub owner: &'a str,
    pub members: &'a [(String, String)],
    pub now: i64,
}

/// One affiliation of a room with the user behind it, when the JID is a local login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMemberRow {
    pub jid: String,
    pub affiliation: String,
    pub user_id: Option<i64>,
    pub display_name: Option<String>,
}

const ROOM_COLUMNS: &str = "r.jid, r.name, r.description, r.company_id, r.created_at, r.moderated";

fn room_from_row(r: &AnyRow) -> Result<RoomRow, StoreError> {
    Ok(RoomRow {
        jid: r.try_get("jid")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        company_id: r.try_get("company_id")?,
        created_at: r.try_get("created_at")?,
        moderated: r.try_get::<i64, _>("moderated")? != 0,
    })
}

impl Store {
    /// The room with this JID.
    pub async fn room(&self, jid: &str) -> Result<Option<RoomRow>, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM xmpp_rooms r WHERE r.jid = $1");
        let row = sqlx::query(&sql)
            .bind(jid)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    /// Creates a room with its owner and members in one transaction; `Conflict("room")` if
    /// it exists.
    pub async fn create_room(&self, new: &NewRoom<'_>) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO xmpp_rooms (jid, name, description, company_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new.jid)
        .bind(new.name)
        .bind(new.description)
        .bind(new.company_id)
        .bind(new.now)
        .execute(&mut *tx)
        .await
        .map_err(crate::error::conflict_as("room"))?;
        let owner = [(new.owner.to_owned(), "owner".to_owned())];
        for (jid, aff) in owner.iter().chain(new.members) {
            sqlx::query(
                "INSERT INTO xmpp_room_affiliations (room, jid, affiliation) VALUES ($1, $2, $3) \
                 ON CONFLICT (room, jid) DO NOTHING",
            )
            .bind(new.jid)
            .bind(jid)
            .bind(aff)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Changes the name and/or description of a room.
    pub async fn update_room(
        &self,
        jid: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE xmpp_rooms SET name = COALESCE($1, name), description = COALESCE($2, description) \
             WHERE jid = $3",
        )
        .bind(name)
        .bind(description)
        .bind(jid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes a room, its affiliations and its archive in one transaction; false if absent.
    pub async fn delete_room(&self, jid: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM xmpp_room_affiliations WHERE room = $1")
            .bind(jid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM xmpp_archive WHERE owner = $1")
            .bind(jid)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM xmpp_rooms WHERE jid = $1")
            .bind(jid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// Every affiliation of `room` with the local user behind it, by JID.
    pub async fn room_members(&self, room: &str) -> Result<Vec<RoomMemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.jid, a.affiliation, u.id AS user_id, u.display_name FROM xmpp_room_affiliations a \
             LEFT JOIN users u ON u.login = a.jid WHERE a.room = $1 ORDER BY a.jid",
        )
        .bind(room)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoomMemberRow {
                    jid: r.try_get("jid")?,
                    affiliation: r.try_get("affiliation")?,
                    user_id: r.try_get("user_id")?,
                    display_name: r.try_get("display_name")?,
                })
            })
            .collect()
    }

    /// Renames a room.
    pub async fn set_room_name(&self, jid: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE xmpp_rooms SET name = $1 WHERE jid = $2")
            .bind(name)
            .bind(jid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Makes `jid` a moderated room or not (XEP-0045 `muc#roomconfig_moderatedroom`).
    pub async fn set_room_moderated(&self, jid: &str, moderated: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE xmpp_rooms SET moderated = $1 WHERE jid = $2")
            .bind(i64::from(moderated))
            .bind(jid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The affiliation (`owner`, `admin`, `member`, `outcast`) of `jid` with `room`.
    pub async fn room_affiliation(
        &self,
        room: &str,
        jid: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT affiliation FROM xmpp_room_affiliations WHERE room = $1 AND jid = $2",
        )
        .bind(room)
        .bind(jid)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("affiliation")?),
            None => None,
        })
    }

    /// Sets (or with `None` removes) the affiliation of `jid` with `room`.
    pub async fn set_room_affiliation(
        &self,
        room: &str,
        jid: &str,
        affiliation: Option<&str>,
    ) -> Result<(), StoreError> {
        match affiliation {
            Some(a) => {
                sqlx::query(
                    "INSERT INTO xmpp_room_affiliations (room, jid, affiliation) VALUES ($1, $2, $3) \
                     ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation",
                )
                .bind(room)
                .bind(jid)
                .bind(a)
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM xmpp_room_affiliations WHERE room = $1 AND jid = $2")
                    .bind(room)
                    .bind(jid)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// Every affiliation of `room`, by JID.
    pub async fn room_affiliations(&self, room: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT jid, affiliation FROM xmpp_room_affiliations WHERE room = $1 ORDER BY jid",
        )
        .bind(room)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("jid")?, r.try_get("affiliation")?)))
            .collect()
    }

    /// Rooms `jid` is affiliated with (other than as outcast), by JID.
    pub async fn rooms_of(&self, jid: &str) -> Result<Vec<RoomRow>, StoreError> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM xmpp_rooms r JOIN xmpp_room_affiliations a ON a.room = r.jid \
             WHERE a.jid = $1 AND a.affiliation <> 'outcast' ORDER BY r.jid"
        );
        let rows = sqlx::query(&sql).bind(jid).fetch_all(self.pool()).await?;
        rows.iter().map(room_from_row).collect()
    }

    /// Every room of a company, by JID.
    pub async fn company_rooms(&self, company_id: i64) -> Result<Vec<RoomRow>, StoreError> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM xmpp_rooms r WHERE r.company_id = $1 ORDER BY r.jid"
        );
        let rows = sqlx::query(&sql)
            .bind(company_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(room_from_row).collect()
    }
}
