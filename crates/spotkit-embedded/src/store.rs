//! The SQLite object store: Blob Storage's conditional writes in one table.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use spotkit_cloud::{ETag, ObjectStore, StoreError, StoredObject, WriteCondition};

use crate::db::{Db, EmbeddedUrl, OpenError, exec, row, token};

/// A container of objects in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) db: Db,
    pub(crate) container: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SqliteStore({}?name={})",
            self.db.path.display(),
            self.container
        )
    }
}

fn transient(e: impl std::fmt::Display) -> StoreError {
    StoreError::Transient {
        detail: e.to_string(),
    }
}

/// A fresh ETag, quoted as Azure quotes them.
pub(crate) fn new_etag() -> String {
    format!("\"{}\"", token())
}

impl SqliteStore {
    /// Opens `url` (`sqlite:PATH[?name=CONTAINER]`), creating the file and schema if needed.
    ///
    /// # Errors
    /// A malformed URL or a file SQLite cannot open.
    pub fn open(url: &str) -> Result<Self, OpenError> {
        let url = EmbeddedUrl::parse(url)?;
        Ok(Self {
            db: Db::open(&url.path)?,
            container: url.name,
        })
    }

    pub(crate) fn check_container(
        c: &rusqlite::Connection,
        container: &str,
    ) -> Result<(), StoreError> {
        let exists: Option<i64> = row(
            c,
            "SELECT 1 FROM containers WHERE name = ?1",
            [container],
            |r| r.get(0),
        )
        .optional()
        .map_err(transient)?;
        exists.map(|_| ()).ok_or_else(|| StoreError::StoreNotFound {
            store: container.to_string(),
        })
    }
}

impl ObjectStore for SqliteStore {
    async fn create_if_missing(&self) -> Result<(), StoreError> {
        let container = self.container.clone();
        self.db
            .run(transient, move |c| {
                exec(
                    c,
                    "INSERT OR IGNORE INTO containers (name) VALUES (?1)",
                    [&container],
                )
                .map(|_| ())
                .map_err(transient)
            })
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let (container, key) = (self.container.clone(), key.to_string());
        self.db
            .run(transient, move |c| {
                Self::check_container(c, &container)?;
                row(
                    c,
                    "SELECT body, etag FROM objects WHERE container = ?1 AND key = ?2",
                    params![container, key],
                    |r| {
                        Ok(StoredObject {
                            body: r.get(0)?,
                            etag: ETag(r.get(1)?),
                        })
                    },
                )
                .optional()
                .map_err(transient)
            })
            .await
    }

    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition,
    ) -> Result<ETag, StoreError> {
        let (container, key, body) = (self.container.clone(), key.to_string(), body.to_vec());
        self.db
            .run(transient, move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(transient)?;
                Self::check_container(&tx, &container)?;
                let current: Option<String> = row(&tx,
                        "SELECT etag FROM objects WHERE container = ?1 AND key = ?2",
                        params![container, key],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(transient)?;
                let allowed = match (&condition, &current) {
                    (WriteCondition::Always, _) | (WriteCondition::IfAbsent, None) => true,
                    (WriteCondition::IfAbsent, Some(_)) | (WriteCondition::IfMatch(_), None) => false,
                    (WriteCondition::IfMatch(want), Some(have)) => want.0 == *have,
                };
                if !allowed {
                    return Err(StoreError::ConditionFailed { key });
                }
                let etag = new_etag();
                exec(&tx,
                    "INSERT INTO objects (container, key, body, etag) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (container, key) DO UPDATE SET body = excluded.body, etag = excluded.etag",
                    params![container, key, body, etag],
                )
                .map_err(transient)?;
                tx.commit().map_err(transient)?;
                Ok(ETag(etag))
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let (container, key) = (self.container.clone(), key.to_string());
        self.db
            .run(transient, move |c| {
                Self::check_container(c, &container)?;
                exec(
                    c,
                    "DELETE FROM objects WHERE container = ?1 AND key = ?2",
                    params![container, key],
                )
                .map(|_| ())
                .map_err(transient)
            })
            .await
    }

    fn transactional_backend(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (container, prefix) = (self.container.clone(), prefix.to_string());
        self.db
            .run(transient, move |c| {
                Self::check_container(c, &container)?;
                let mut select = c
                    .prepare_cached(
                        "SELECT key FROM objects WHERE container = ?1 AND substr(key, 1, length(?2)) = ?2
                         ORDER BY key",
                    )
                    .map_err(transient)?;
                let rows = select
                    .query_map(params![container, prefix], |r| r.get::<_, String>(0))
                    .map_err(transient)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(transient)
            })
            .await
    }
}
