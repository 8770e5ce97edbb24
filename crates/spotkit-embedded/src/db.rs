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
    /// Writes waiting for a group commit ([`Db::run_grouped`]); one list per connection.
    grouped: Arc<Mutex<Vec<Box<dyn GroupedOp>>>>,
    pub(crate) path: PathBuf,
}

/// One write of a group commit: applied inside its own savepoint, told the outcome after COMMIT.
trait GroupedOp: Send {
    /// Runs the write; `false` when it failed (its savepoint is then rolled back).
    fn apply(&mut self, c: &Connection) -> bool;
    /// Delivers the result; `commit_error` when the enclosing transaction did not commit.
    fn finish(self: Box<Self>, commit_error: Option<String>);
}

struct Op<T, E, F> {
    f: Option<F>,
    result: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    on_fail: fn(String) -> E,
}

impl<T, E, F> GroupedOp for Op<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn apply(&mut self, c: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panic must not leave the shared transaction half-applied: it fails this write only.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c)))
            .unwrap_or_else(|_| Err((self.on_fail)("embedded backend write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit_error: Option<String>) {
        let result = match (self.result, commit_error) {
            (Some(Ok(_)), Some(e)) => Err((self.on_fail)(e)),
            (Some(r), _) => r,
            (None, e) => {
                Err((self.on_fail)(e.unwrap_or_else(|| {
                    "group commit never ran this write".into()
                })))
            }
        };
        let _ = self.reply.send(result);
    }
}

impl Db {
    /// Opens `path`, sharing one connection per file within the process: a queue, its poison
    /// queue and a store in the same file then never wait on each other's SQLite write locks
    /// (SQLite's busy handler sleeps in milliseconds, which would cap throughput).
    pub(crate) fn open(path: &Path) -> Result<Self, OpenError> {
        type Weak<T> = std::sync::Weak<Mutex<T>>;
        type Grouped = Vec<Box<dyn GroupedOp>>;
        type Entry = (PathBuf, Weak<Connection>, Weak<Grouped>);
        static OPEN: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut open = OPEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|(_, weak, _)| weak.strong_count() > 0);
        if let Some(conn) = open
            .iter()
            .find(|(p, _, _)| *p == key)
            .and_then(|(_, c, g)| Some((c.upgrade()?, g.upgrade()?)))
        {
            return Ok(Self {
                conn: conn.0,
                grouped: conn.1,
                path: path.to_path_buf(),
            });
        }
        let db = Self::open_new(path)?;
        let key = std::fs::canonicalize(path).unwrap_or(key);
        open.push((key, Arc::downgrade(&db.conn), Arc::downgrade(&db.grouped)));
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
            grouped: Arc::new(Mutex::new(Vec::new())),
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

impl Db {
    /// Runs the write `f` in a *group commit*: writes that arrive while the connection is busy
    /// wait and then share one `BEGIN IMMEDIATE` ... `COMMIT` (one WAL commit for all of them
    /// instead of one each). Each write runs in its own savepoint, so a write that fails (returns
    /// `Err`) is rolled back alone and the others still commit; `Ok` is returned only after the
    /// shared COMMIT succeeded, else `on_fail` with the reason.
    pub(crate) async fn run_grouped<T, E>(
        &self,
        on_fail: fn(String) -> E,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        lock(&self.grouped).push(Box::new(Op {
            f: Some(f),
            result: None,
            reply,
            on_fail,
        }));
        let (conn, grouped) = (self.conn.clone(), self.grouped.clone());
        // Every write schedules a drain; a drain that finds the list empty (an earlier one took
        // this write along) does nothing.
        drop(tokio::task::spawn_blocking(move || {
            let conn = lock(&conn);
            let mut ops = std::mem::take(&mut *lock(&grouped));
            if ops.is_empty() {
                return;
            }
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                for op in ops {
                    op.finish(Some(e.to_string()));
                }
                return;
            }
            for op in &mut ops {
                let applied = conn.execute_batch("SAVEPOINT grouped").is_ok() && {
                    let ok = op.apply(&conn);
                    if ok {
                        conn.execute_batch("RELEASE grouped").is_ok()
                    } else {
                        let _ = conn.execute_batch("ROLLBACK TO grouped; RELEASE grouped");
                        true
                    }
                };
                if !applied {
                    // The savepoint machinery itself failed: give up on the whole group.
                    let _ = conn.execute_batch("ROLLBACK");
                    for op in ops {
                        op.finish(Some("savepoint failed in the group commit".into()));
                    }
                    return;
                }
            }
            let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
            if commit.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let error = commit.err();
            for op in ops {
                op.finish(error.clone());
            }
        }));
        result
            .await
            .unwrap_or_else(|_| Err(on_fail("embedded group commit task failed".into())))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
