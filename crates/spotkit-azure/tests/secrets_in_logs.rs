//! ARM calls at trace log level never write the bearer token: every `tracing` line (ours,
//! reqwest's, hyper's) is captured while the client succeeds, retries a 401, fails on a 500 and
//! follows a long-running operation, and is scanned for the token; so are the errors.

mod arm_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use arm_support::{Answer, TOKEN, VirtualClock, client, serve};
use spotkit_azure::arm::{LroOptions, OperationClass, wait_for_operation};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn arm_calls_at_trace_level_never_log_the_bearer_token() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = serve(|base, req, _| match req.path() {
        "/ok" => Answer::json(200, r#"{"value":[]}"#),
        "/unauthorized" => Answer::json(
            401,
            r#"{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}"#,
        ),
        "/broken" => Answer::json(500, r#"{"error":{"code":"InternalServerError","message":"try later"}}"#),
        "/op" => Answer::json(200, r#"{"status":"Failed","error":{"code":"AllocationFailed","message":"no capacity"}}"#),
        _ => Answer::json(404, format!(r#"{{"error":{{"code":"NotFound","message":"{base} has no such path"}}}}"#)),
    })
    .await;
    let arm = client(&fake, VirtualClock::new());
    let mut shown = Vec::new();
    arm.get_json::<serde_json::Value>("/ok?api-version=1", OperationClass::Arm)
        .await
        .unwrap();
    for path in [
        "/unauthorized?api-version=1",
        "/broken?api-version=1",
        "/missing?api-version=1",
    ] {
        let err = arm
            .get_json::<serde_json::Value>(path, OperationClass::Arm)
            .await
            .unwrap_err();
        shown.push(format!("{err} {err:?}"));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "azure-asyncoperation",
        format!("{}/op?api-version=1", fake.base).parse().unwrap(),
    );
    let err = wait_for_operation(
        &arm,
        201,
        &headers,
        &OperationClass::Arm,
        &LroOptions::default(),
    )
    .await
    .unwrap_err();
    shown.push(format!("{err} {err:?} {arm:?}"));
    drop(_guard);

    assert!(
        fake.seen()
            .iter()
            .all(|s| s.authorization == format!("Bearer {TOKEN}")),
        "the token is sent on every request"
    );
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "nothing was captured: {log}"
    );
    assert!(!log.contains(TOKEN), "the log has the token:\n{log}");
    for s in &shown {
        assert!(!s.contains(TOKEN), "{s}");
    }
}
