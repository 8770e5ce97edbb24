//! The SQLite queue: Azure Queue Storage semantics in one table.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use spotkit_cloud::{
    Clock, CommitError, Delivery, ETag, Lease, MessageId, ObjectStore, PeekedMessage, Queue,
    QueueError, StoreError,
};
use spotkit_core::Timestamp;

use crate::db::{Db, EmbeddedUrl, OpenError, exec, row, token};
use crate::store::{SqliteStore, new_etag};

/// Largest body accepted: the same 48 KiB of raw bytes that fit Azure's 64 KiB base64 limit, so a
/// message that works embedded also works on Azure.
pub const MAX_BODY_BYTES: usize = 48 * 1024;

/// A queue in a SQLite file. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    name: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SqliteQueue({}?name={})",
            self.db.path.display(),
            self.name
        )
    }
}

fn transient(e: impl std::fmt::Display) -> QueueError {
    QueueError::Transient {
        detail: e.to_string(),
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    /// Opens `url` (`sqlite:PATH[?name=NAME]`), creating the file and schema if needed.
    ///
    /// # Errors
    /// A malformed URL or a file SQLite cannot open.
    pub fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let url = EmbeddedUrl::parse(url)?;
        Ok(Self {
            db: Db::open(&url.path)?,
            name: url.name,
            clock,
        })
    }

    /// Another queue in the same file (the poison queue next to a work queue).
    #[must_use]
    pub fn sibling(&self, name: &str) -> Self {
        Self {
            db: self.db.clone(),
            name: name.to_string(),
            clock: self.clock.clone(),
        }
    }

    /// The queue's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn require_queue(&self) -> Result<(), QueueError> {
        let name = self.name.clone();
        self.db.run(transient, move |c| check_queue(c, &name)).await
    }
}

/// `QueueNotFound` unless the queue exists; run inside the operation's own closure so the check
/// costs no extra hop to the blocking pool.
fn check_queue(c: &rusqlite::Connection, name: &str) -> Result<(), QueueError> {
    let exists: Option<i64> = row(c, "SELECT 1 FROM queues WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map_err(transient)?;
    match exists {
        Some(_) => Ok(()),
        None => Err(QueueError::QueueNotFound {
            queue: name.to_string(),
        }),
    }
}

impl Queue for SqliteQueue {
    async fn create_if_missing(&self) -> Result<(), QueueError> {
        let name = self.name.clone();
        self.db
            .run(transient, move |c| {
                exec(
                    c,
                    "INSERT OR IGNORE INTO queues (name) VALUES (?1)",
                    [&name],
                )
                .map(|_| ())
                .map_err(transient)
            })
            .await
    }

    async fn send(&self, body: &[u8], delay: Duration) -> Result<MessageId, QueueError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(QueueError::Rejected {
                detail: format!(
                    "message of {} bytes exceeds {MAX_BODY_BYTES} bytes (Azure's 64 KiB after base64)",
                    body.len()
                ),
            });
        }
        let now = self.clock.now().unix_millis();
        let (name, body, id) = (self.name.clone(), body.to_vec(), token());
        let visible = now.saturating_add(ms(delay));
        self.db
            .run(transient, move |c| {
                check_queue(c, &name)?;
                exec(
                    c,
                    "INSERT INTO messages (queue, id, body, inserted_ms, visible_ms, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5,
                             (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE queue = ?1))",
                    params![name, id, body, now, visible],
                )
                .map_err(transient)?;
                Ok(MessageId(id))
            })
            .await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        if !(1..=32).contains(&max) {
            return Err(QueueError::Rejected {
                detail: format!("receive of {max} messages: must be 1..=32, as Azure allows"),
            });
        }
        let now = self.clock.now().unix_millis();
        let name = self.name.clone();
        let visible_at = now.saturating_add(ms(visibility));
        self.db
            .run(transient, move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(transient)?;
                check_queue(&tx, &name)?;
                let mut out = Vec::new();
                {
                    let mut select = tx
                        .prepare_cached(
                            "SELECT id, body, inserted_ms, dequeue_count FROM messages
                             WHERE queue = ?1 AND visible_ms <= ?2 ORDER BY visible_ms, seq LIMIT ?3",
                        )
                        .map_err(transient)?;
                    let rows = select
                        .query_map(params![name, now, max], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, Vec<u8>>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, u32>(3)?,
                            ))
                        })
                        .map_err(transient)?;
                    for row in rows {
                        let (id, body, inserted_ms, count) = row.map_err(transient)?;
                        let receipt = token();
                        exec(&tx,
                            "UPDATE messages SET visible_ms = ?1, dequeue_count = dequeue_count + 1,
                             pop_receipt = ?2 WHERE queue = ?3 AND id = ?4",
                            params![visible_at, receipt, name, id],
                        )
                        .map_err(transient)?;
                        out.push(Delivery {
                            lease: Lease {
                                message_id: MessageId(id),
                                pop_receipt: receipt,
                                visible_at: Timestamp::from_unix_millis(visible_at),
                            },
                            dequeue_count: count + 1,
                            body,
                            inserted_at: Timestamp::from_unix_millis(inserted_ms),
                        });
                    }
                }
                tx.commit().map_err(transient)?;
                Ok(out)
            })
            .await
    }

    async fn set_visibility(
        &self,
        lease: &Lease,
        visibility: Duration,
    ) -> Result<Lease, QueueError> {
        let now = self.clock.now().unix_millis();
        let (name, lease) = (self.name.clone(), lease.clone());
        let visible_at = now.saturating_add(ms(visibility));
        self.db
            .run(transient, move |c| {
                let receipt = token();
                let changed = exec(
                    c,
                    "UPDATE messages SET visible_ms = ?1, pop_receipt = ?2
                         WHERE queue = ?3 AND id = ?4 AND pop_receipt = ?5",
                    params![
                        visible_at,
                        receipt,
                        name,
                        lease.message_id.0,
                        lease.pop_receipt
                    ],
                )
                .map_err(transient)?;
                if changed == 0 {
                    return Err(QueueError::LeaseLost {
                        message_id: lease.message_id,
                    });
                }
                Ok(Lease {
                    message_id: lease.message_id,
                    pop_receipt: receipt,
                    visible_at: Timestamp::from_unix_millis(visible_at),
                })
            })
            .await
    }

    async fn delete(&self, lease: &Lease) -> Result<(), QueueError> {
        let (name, lease) = (self.name.clone(), lease.clone());
        self.db
            .run(transient, move |c| {
                let changed = exec(
                    c,
                    "DELETE FROM messages WHERE queue = ?1 AND id = ?2 AND pop_receipt = ?3",
                    params![name, lease.message_id.0, lease.pop_receipt],
                )
                .map_err(transient)?;
                if changed == 0 {
                    return Err(QueueError::LeaseLost {
                        message_id: lease.message_id,
                    });
                }
                Ok(())
            })
            .await
    }

    /// The create-only insert and the receipt-checked delete commit together or roll back
    /// together, in a group commit (`Db::run_grouped`): one WAL commit for all the pairs that
    /// arrive while the connection is busy, instead of two per message.
    fn commit_and_delete<S: ObjectStore>(
        &self,
        store: &S,
        key: &str,
        body: &[u8],
        lease: &Lease,
    ) -> impl std::future::Future<Output = Result<ETag, CommitError>> + Send {
        let target = store
            .transactional_backend()
            .and_then(|b| b.downcast_ref::<SqliteStore>())
            .filter(|s| s.db.same_connection(&self.db))
            .map(|s| s.container.clone());
        let (db, name, key, body, lease) = (
            self.db.clone(),
            self.name.clone(),
            key.to_string(),
            body.to_vec(),
            lease.clone(),
        );
        async move {
            let Some(container) = target else {
                return Err(CommitError::Unsupported);
            };
            let queue_err = |e: rusqlite::Error| CommitError::Queue(transient(e));
            // A group commit: the commits of concurrent handlers share one transaction, each pair
            // in its own savepoint, so one lost lease rolls back only its own pair.
            db.run_grouped(
                |detail| CommitError::Queue(QueueError::Transient { detail }),
                move |c| {
                    SqliteStore::check_container(c, &container).map_err(CommitError::Store)?;
                    let etag = new_etag();
                    let inserted = exec(
                        c,
                        "INSERT INTO objects (container, key, body, etag) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (container, key) DO NOTHING",
                        params![container, key, body, etag],
                    )
                    .map_err(queue_err)?;
                    if inserted == 0 {
                        // An error rolls back this write's savepoint: the message stays.
                        return Err(CommitError::Store(StoreError::ConditionFailed { key }));
                    }
                    let deleted = exec(
                        c,
                        "DELETE FROM messages WHERE queue = ?1 AND id = ?2 AND pop_receipt = ?3",
                        params![name, lease.message_id.0, lease.pop_receipt],
                    )
                    .map_err(queue_err)?;
                    if deleted == 0 {
                        // Rolls back the ledger insert too: a lost lease commits nothing.
                        return Err(CommitError::Queue(QueueError::LeaseLost {
                            message_id: lease.message_id,
                        }));
                    }
                    Ok(ETag(etag))
                },
            )
            .await
        }
    }

    async fn peek(&self, max: u32) -> Result<Vec<PeekedMessage>, QueueError> {
        self.require_queue().await?;
        let now = self.clock.now().unix_millis();
        let name = self.name.clone();
        self.db
            .run(transient, move |c| {
                let mut select = c
                    .prepare_cached(
                        "SELECT id, body, inserted_ms, dequeue_count FROM messages
                         WHERE queue = ?1 AND visible_ms <= ?2 ORDER BY visible_ms, seq LIMIT ?3",
                    )
                    .map_err(transient)?;
                let rows = select
                    .query_map(params![name, now, max.clamp(1, 32)], |r| {
                        Ok(PeekedMessage {
                            message_id: MessageId(r.get(0)?),
                            body: r.get(1)?,
                            inserted_at: Timestamp::from_unix_millis(r.get(2)?),
                            dequeue_count: r.get(3)?,
                        })
                    })
                    .map_err(transient)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(transient)
            })
            .await
    }

    async fn approximate_len(&self) -> Result<u64, QueueError> {
        self.require_queue().await?;
        let name = self.name.clone();
        self.db
            .run(transient, move |c| {
                row(
                    c,
                    "SELECT COUNT(*) FROM messages WHERE queue = ?1",
                    [&name],
                    |r| r.get::<_, i64>(0),
                )
                .map(i64::unsigned_abs)
                .map_err(transient)
            })
            .await
    }
}
