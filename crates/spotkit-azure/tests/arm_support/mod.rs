//! A scripted in-process fake of ARM on 127.0.0.1 and a virtual clock, for the `arm_*` tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use spotkit_azure::arm::{ArmClient, ArmClientOptions, StaticToken};
use spotkit_cloud::Clock;
use spotkit_core::Timestamp;

/// The token the tests authorize with (it must never show up in output).
pub const TOKEN: &str = "test-bearer-token-7f3a";

/// 2026-12-02T00:00:00Z.
pub const T0_MS: i64 = 1_796_169_600_000;

/// Time that only moves when someone sleeps (or the test advances it); sleeps return at once.
#[derive(Default)]
pub struct VirtualClock {
    now_ms: AtomicI64,
    sleeps: Mutex<Vec<Duration>>,
}

impl VirtualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            now_ms: AtomicI64::new(T0_MS),
            sleeps: Mutex::new(Vec::new()),
        })
    }

    /// Every sleep asked for, in order (zero-length ones excluded).
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    pub fn advance(&self, d: Duration) {
        self.now_ms
            .fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now_ms.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, until: Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let now = self.now();
        if until > now {
            self.sleeps.lock().unwrap().push(until.since(now));
            self.now_ms.store(until.unix_millis(), Ordering::SeqCst);
        }
        Box::pin(std::future::ready(()))
    }
}

/// One request the fake saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub uri: String,
    pub authorization: String,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap()
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Real time to wait before answering (for timeouts).
    pub delay: Option<Duration>,
}

impl Answer {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: None,
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: None,
        }
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// `(base URL, request, index of this request)` → answer.
pub type Script = dyn Fn(&str, &Seen, usize) -> Answer + Send + Sync;

pub struct Fake {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct AppState {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Script>,
}

async fn handle(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        uri: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let index = {
        let mut log = app.seen.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    let answer = (app.script)(&app.base, &seen, index);
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (k, v) in answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

/// Serves `script` on 127.0.0.1 (OS-assigned port).
pub async fn serve(script: impl Fn(&str, &Seen, usize) -> Answer + Send + Sync + 'static) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().fallback(handle).with_state(AppState {
        base: base.clone(),
        seen: seen.clone(),
        script: Arc::new(script),
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake { base, seen }
}

/// A client of `fake` on `clock`, with a fixed jitter seed.
pub fn client(fake: &Fake, clock: Arc<VirtualClock>) -> Arc<ArmClient> {
    Arc::new(
        ArmClient::new(
            &fake.base,
            Arc::new(StaticToken::new(TOKEN)),
            ArmClientOptions {
                clock,
                jitter_seed: Some(7),
                request_timeout: Duration::from_secs(5),
                ..ArmClientOptions::default()
            },
        )
        .unwrap(),
    )
}

/// A fixture file under `fixtures/azure/`.
pub fn fixture(path: &str) -> serde_json::Value {
    let full = format!("{}/../../fixtures/azure/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}")))
        .unwrap()
}
