//! The local history store: an embedded SQLite file with the pool's latest status and an
//! append-only log of evictions, replacements and operations, for `spotkit status` and for
//! statistics. The pool's state itself is always read back from the cloud (tags); losing this
//! file loses history only.
//!
//! Records are derived by comparing each [`StatusView`] with the previous one: a new eviction,
//! a replacement chosen, a replacement running, an operation started or ended. Blocking (SQLite):
//! call it from a blocking task.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::view::StatusView;

/// Why the history store failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The state URL is not `sqlite:PATH`.
    #[error("{url:?} is not a state store URL; write it like sqlite:/var/lib/spotkit/pool.db")]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// SQLite failed.
    #[error("history store {}: {source}; check the path and its permissions", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored status is not readable by this version.
    #[error("history store {}: the stored status of pool {pool:?} is unreadable ({message}); it is rewritten on the orchestrator's next step", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The pool.
        pool: String,
        /// The JSON error.
        message: String,
    },
}

/// One history record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Pool.
    pub pool: String,
    /// When (RFC 3339, the status's time).
    pub at: String,
    /// `eviction`, `replacement`, `replaced`, `operation-started`, `operation-ended`.
    pub kind: String,
    /// The VM concerned.
    pub vm: String,
    /// Details (offering, replacement, operation kind).
    pub detail: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pool_status (pool TEXT PRIMARY KEY, at TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pool_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pool TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    vm TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pool_history_by_pool ON pool_history (pool, seq);
";

/// The store.
pub struct History {
    conn: Connection,
    path: PathBuf,
    last: Option<StatusView>,
}

/// The path of a `sqlite:PATH` URL.
///
/// # Errors
/// [`HistoryError::BadUrl`] without the prefix or with an empty path.
pub fn state_path(url: &str) -> Result<PathBuf, HistoryError> {
    let rest = url
        .strip_prefix("sqlite:")
        .map(|r| r.strip_prefix("//").unwrap_or(r))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| HistoryError::BadUrl {
            url: url.to_string(),
        })?;
    Ok(PathBuf::from(rest))
}

impl History {
    /// Opens (creating) the store at `path`.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`] when the file cannot be opened or initialised.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let sql = |source| HistoryError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.execute_batch("PRAGMA journal_mode=WAL;")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            last: None,
        })
    }

    fn sql(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores `view` as the pool's latest status and appends what changed since the previous
    /// one this handle recorded (after opening, the stored latest status is the baseline).
    ///
    /// # Errors
    /// [`HistoryError`] when SQLite fails.
    pub fn record(&mut self, view: &StatusView) -> Result<Vec<Record>, HistoryError> {
        if self.last.is_none() {
            self.last = self.latest(Some(&view.pool)).ok().flatten();
        }
        let records = changes(self.last.as_ref(), view);
        let json = serde_json::to_string(view).unwrap_or_default();
        let tx = self.conn.transaction().map_err(|e| HistoryError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        tx.execute(
            "INSERT INTO pool_status (pool, at, json) VALUES (?1, ?2, ?3)
             ON CONFLICT(pool) DO UPDATE SET at = excluded.at, json = excluded.json",
            params![view.pool, view.at, json],
        )
        .map_err(|e| HistoryError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        for r in &records {
            tx.execute(
                "INSERT INTO pool_history (pool, at, kind, vm, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.pool, r.at, r.kind, r.vm, r.detail],
            )
            .map_err(|e| HistoryError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
        }
        tx.commit().map_err(|e| self.sql(e))?;
        self.last = Some(view.clone());
        Ok(records)
    }

    /// The latest stored status of `pool` (or of the most recently updated pool).
    ///
    /// # Errors
    /// [`HistoryError`] when SQLite fails or the stored JSON is unreadable.
    pub fn latest(&self, pool: Option<&str>) -> Result<Option<StatusView>, HistoryError> {
        let row: Option<(String, String)> = match pool {
            Some(p) => self
                .conn
                .query_row(
                    "SELECT pool, json FROM pool_status WHERE pool = ?1",
                    params![p],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
            None => self
                .conn
                .query_row(
                    "SELECT pool, json FROM pool_status ORDER BY at DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        }
        .map_err(|e| self.sql(e))?;
        row.map(|(pool, json)| {
            serde_json::from_str(&json).map_err(|e| HistoryError::Corrupt {
                path: self.path.clone(),
                pool,
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// The last `limit` records of `pool`, oldest first.
    ///
    /// # Errors
    /// [`HistoryError`] when SQLite fails.
    pub fn recent(&self, pool: &str, limit: u32) -> Result<Vec<Record>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pool, at, kind, vm, detail FROM pool_history WHERE pool = ?1
                 ORDER BY seq DESC LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![pool, limit], |r| {
                Ok(Record {
                    pool: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    vm: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        let mut out = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        out.reverse();
        Ok(out)
    }
}

/// What changed from `before` to `after`, as records stamped with `after.at`.
#[must_use]
pub fn changes(before: Option<&StatusView>, after: &StatusView) -> Vec<Record> {
    let record = |kind: &str, vm: &str, detail: String| Record {
        pool: after.pool.clone(),
        at: after.at.clone(),
        kind: kind.to_string(),
        vm: vm.to_string(),
        detail,
    };
    let mut out = Vec::new();
    let old: BTreeMap<(&str, &str), &crate::view::EvictionRow> = before
        .map(|b| {
            b.evictions
                .iter()
                .map(|e| ((e.vm.as_str(), e.seen_at.as_str()), e))
                .collect()
        })
        .unwrap_or_default();
    for e in &after.evictions {
        let prev = old.get(&(e.vm.as_str(), e.seen_at.as_str()));
        if prev.is_none() {
            out.push(record(
                "eviction",
                &e.vm,
                format!("{} seen via {} at {}", e.offering, e.via, e.seen_at),
            ));
        }
        if let Some(r) = &e.replacement
            && prev.is_none_or(|p| p.replacement.is_none())
        {
            out.push(record("replacement", &e.vm, format!("replaced by {r}")));
        }
        if let (Some(r), Some(t)) = (&e.replacement, e.time_to_replace_s)
            && prev.is_none_or(|p| p.replaced_at.is_none())
        {
            out.push(record(
                "replaced",
                &e.vm,
                format!("{r} running, {t:.1} s after the loss was seen"),
            ));
        }
    }
    let old_ops: BTreeSet<u64> = before
        .map(|b| b.pending.iter().map(|p| p.op).collect())
        .unwrap_or_default();
    let new_ops: BTreeSet<u64> = after.pending.iter().map(|p| p.op).collect();
    for p in &after.pending {
        if !old_ops.contains(&p.op) {
            out.push(record(
                "operation-started",
                &p.vm,
                format!("{} (op {})", p.class, p.op),
            ));
        }
    }
    if let Some(b) = before {
        for p in &b.pending {
            if !new_ops.contains(&p.op) {
                out.push(record(
                    "operation-ended",
                    &p.vm,
                    format!("{} (op {})", p.class, p.op),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{EvictionRow, OpRow};

    fn view(at: &str) -> StatusView {
        StatusView {
            pool: "p".into(),
            at: at.into(),
            desired: 1,
            desired_regular: 0,
            desired_spot: 1,
            live: 1,
            running: 1,
            occupying: 1,
            regular_vms: 0,
            spot_vms: 1,
            fallback_vms: 0,
            evicting_vms: 0,
            unplaced: 0,
            usd_per_hour: 0.0,
            unpriced_vms: 0,
            vms: vec![],
            pending: vec![],
            avoiding: vec![],
            restarting: vec![],
            evictions: vec![],
            conditions: vec![],
        }
    }

    #[test]
    fn records_each_change_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut h = History::open(&path).unwrap();
        let mut v1 = view("2026-01-01T00:00:00Z");
        v1.pending.push(OpRow {
            op: 1,
            class: "create".into(),
            vm: "p-1".into(),
            since: v1.at.clone(),
        });
        v1.evictions.push(EvictionRow {
            vm: "p-0".into(),
            offering: "Standard_D2s_v5/eastus".into(),
            seen_at: v1.at.clone(),
            via: "notice".into(),
            replacement: Some("p-1".into()),
            replaced_at: None,
            time_to_replace_s: None,
        });
        let kinds = |r: Vec<Record>| r.into_iter().map(|r| r.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(h.record(&v1).unwrap()),
            ["eviction", "replacement", "operation-started"]
        );
        assert!(h.record(&v1).unwrap().is_empty(), "same view, no records");
        let mut v2 = v1.clone();
        v2.at = "2026-01-01T00:00:40Z".into();
        v2.pending.clear();
        v2.evictions[0].replaced_at = Some(v2.at.clone());
        v2.evictions[0].time_to_replace_s = Some(40.0);
        assert_eq!(
            kinds(h.record(&v2).unwrap()),
            ["replaced", "operation-ended"]
        );
        drop(h);
        let mut h = History::open(&path).unwrap();
        assert_eq!(h.latest(None).unwrap().as_ref(), Some(&v2));
        assert!(
            h.record(&v2).unwrap().is_empty(),
            "the stored status is the baseline"
        );
        assert_eq!(h.recent("p", 100).unwrap().len(), 5);
        assert_eq!(h.recent("p", 2).unwrap()[1].kind, "operation-ended");
    }

    #[test]
    fn state_urls() {
        assert_eq!(
            state_path("sqlite:/tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert!(state_path("/tmp/x.db").is_err());
        assert!(state_path("sqlite:").is_err());
    }
}
