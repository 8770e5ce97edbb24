//! The shared SQLite connection: opening, schema, and running blocking work off the async runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

/// A `sqlite:PATH[?name=NAME]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedUrl {
    /// The database file.
    pub path: PathBuf,
    /// The queue or container name inside it.
    pub name: String,
}

/// Why an embedded backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not `sqlite:PATH[?name=NAME]`.
    #[error(
        "{url:?} is not an embedded URL: {problem}; write it like sqlite:/var/lib/spotkit/queue.db?name=jobs"
    )]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// SQLite refused to open or initialise the file.
    #[error("cannot open SQLite database {}: {source}; check the path and its permissions", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

impl EmbeddedUrl {
    /// Parses `sqlite:PATH` (name `default`) or `sqlite:PATH?name=NAME`.
    ///
    /// # Errors
    /// When the scheme is not `sqlite:`, the path is empty, or the name is not 1-63 of
    /// `[a-z0-9-]` (the same rule as Azure queue names, so names move between backends).
    pub fn parse(url: &str) -> Result<Self, OpenError> {
        let bad = |problem: &str| OpenError::BadUrl {
            url: url.to_string(),
            problem: problem.to_string(),
        };
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| bad("no sqlite: prefix"))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        let mut name = "default".to_string();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("name", v)) => name = v.to_string(),
                _ => return Err(bad(&format!("unknown parameter {pair:?} (only name=...)"))),
            }
        }
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(bad("name must be 1-63 characters of a-z, 0-9 and -"));
        }
        Ok(Self {
            path: PathBuf::from(path),
            name,
        })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS messages (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    inserted_ms INTEGER NOT NULL,
    visible_ms INTEGER NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    pop_receipt TEXT,
    seq INTEGER NOT NULL,
    PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_ms, seq);
CREATE TABLE IF NOT EXISTS containers (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS objects (
    container TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (container, key)
);
";

/// One connection per backend handle, used from blocking tasks.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
    pub(crate) path: PathBuf,
}

impl Db {
    /// Opens `path`, sharing one connection per file within the process: a queue, its poison
    /// queue and a store in the same file then never wait on each other's SQLite write locks
    /// (SQLite's busy handler sleeps in milliseconds, which would cap throughput).
    pub(crate) fn open(path: &Path) -> Result<Self, OpenError> {
        static OPEN: Mutex<Vec<(PathBuf, std::sync::Weak<Mutex<Connection>>)>> =
            Mutex::new(Vec::new());
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut open = OPEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(conn) = open
            .iter()
            .find(|(p, _)| *p == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(Self {
                conn,
                path: path.to_path_buf(),
            });
        }
        let db = Self::open_new(path)?;
        let key = std::fs::canonicalize(path).unwrap_or(key);
        open.push((key, Arc::downgrade(&db.conn)));
        Ok(db)
    }

    fn open_new(path: &Path) -> Result<Self, OpenError> {
        let wrap = |source| OpenError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        // Other processes (workers, `spotkit queue`) share the file: wait for their locks rather
        // than failing, and use WAL so readers never block the writer.
        conn.busy_timeout(Duration::from_secs(10)).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// Whether both handles use the same connection (the same file in this process), so one
    /// transaction can span them.
    pub(crate) fn same_connection(&self, other: &Db) -> bool {
        Arc::ptr_eq(&self.conn, &other.conn)
    }

    /// Runs `f` with the connection on a blocking thread.
    pub(crate) async fn run<T, E>(
        &self,
        on_panic: fn(String) -> E,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|e| Err(on_panic(format!("embedded backend task failed: {e}"))))
    }
}

/// Runs `sql` through the connection's prepared-statement cache: the hot statements are parsed
/// once, not once per message.
pub(crate) fn exec(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

/// `query_row` through the prepared-statement cache.
pub(crate) fn row<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(params, f)
}

/// A fresh random token (message ids, pop receipts, ETags).
pub(crate) fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_a_name() {
        assert_eq!(
            EmbeddedUrl::parse("sqlite:/tmp/q.db").unwrap(),
            EmbeddedUrl {
                path: "/tmp/q.db".into(),
                name: "default".into()
            }
        );
        assert_eq!(
            EmbeddedUrl::parse("sqlite:q.db?name=jobs-1").unwrap().name,
            "jobs-1"
        );
        assert_eq!(
            EmbeddedUrl::parse("sqlite:///tmp/q.db").unwrap().path,
            PathBuf::from("/tmp/q.db")
        );
        for bad in [
            "q.db",
            "sqlite:",
            "sqlite:q.db?name=Jobs",
            "sqlite:q.db?queue=x",
            "sqlite:q.db?name=",
        ] {
            let err = EmbeddedUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("sqlite:/var/lib/spotkit"), "{bad}: {err}");
        }
    }
}
