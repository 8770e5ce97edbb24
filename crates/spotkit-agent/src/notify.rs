//! JSON notices: to the orchestrator (`--notify-url`) and to the workload (`--drain-url`).

use std::time::Duration;

use serde::Serialize;
use spotkit_core::Timestamp;
use spotkit_core::agent::Notice;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The wire form of a notice. Field names are the documented contract (docs/agent.md).
#[derive(Debug, Serialize)]
pub(crate) struct NoticeBody {
    pub vm_name: String,
    pub event_id: String,
    pub event_type: String,
    pub not_before: Option<String>,
    pub observed_at: String,
    pub drain_deadline: Option<String>,
}

/// The wire form of a heartbeat (docs/agent.md).
#[derive(Debug, Serialize)]
pub(crate) struct HeartbeatBody {
    pub vm_name: String,
    pub healthy: bool,
    pub at: String,
}

pub(crate) fn rfc3339(t: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.unix_millis().to_string())
}

impl From<&Notice> for NoticeBody {
    fn from(n: &Notice) -> Self {
        Self {
            vm_name: n.vm_name.clone(),
            event_id: n.event_id.to_string(),
            event_type: n.event_type.to_string(),
            not_before: n.not_before.map(rfc3339),
            observed_at: rfc3339(n.observed_at),
            drain_deadline: n.drain_deadline.map(rfc3339),
        }
    }
}

/// `url` as it may be logged: the query (which can carry a SAS-style signature or token) and any
/// password are replaced by `REDACTED`; the origin and path stay, to tell the endpoints apart.
pub(crate) fn loggable_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        // Not a URL we could send to anyway; show only what cannot be a credential.
        return url.split(['?', '@']).next().unwrap_or_default().to_string() + "?REDACTED";
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("REDACTED"));
    }
    if parsed.query().is_some() {
        parsed.set_query(Some("REDACTED"));
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

/// The orchestrator's endpoint token, sent as `Authorization: Bearer` with notices and
/// heartbeats (docs/orchestrator.md). `Debug` never shows it.
#[derive(Clone)]
pub struct OrchestratorToken(std::sync::Arc<str>);

impl OrchestratorToken {
    /// `value` trimmed (token files end with a newline); `None` when nothing is left.
    #[must_use]
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.into()))
    }

    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&*self.0)
    }
}

impl std::fmt::Debug for OrchestratorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrchestratorToken(REDACTED)")
    }
}

/// POSTs `body` to `url`, retrying transport errors and 5xx a few times within `budget`.
/// Returns whether it was delivered.
pub(crate) async fn post_notice(
    http: &reqwest::Client,
    url: &str,
    body: &NoticeBody,
    token: Option<&OrchestratorToken>,
    budget: Duration,
) -> bool {
    let attempts = 3u32;
    let per_try = (budget / attempts).max(Duration::from_millis(200));
    let shown = loggable_url(url);
    let url_for_log = shown.as_str();
    for attempt in 1..=attempts {
        let mut request = http.post(url).json(body).timeout(per_try);
        if let Some(t) = token {
            request = t.authorize(request);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(
                    url = url_for_log,
                    status = r.status().as_u16(),
                    "notice rejected; not retrying"
                );
                return false;
            }
            Ok(r) => tracing::warn!(
                url = url_for_log,
                status = r.status().as_u16(),
                attempt,
                "notice failed"
            ),
            Err(e) => tracing::warn!(
                url = url_for_log,
                attempt,
                "notice failed: {}",
                e.without_url()
            ),
        }
        if attempt < attempts {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::loggable_url;

    #[test]
    fn logged_urls_never_carry_the_query_or_a_password() {
        assert_eq!(
            loggable_url("http://127.0.0.1:8080/drain?sig=secret&sv=1"),
            "http://127.0.0.1:8080/drain?REDACTED"
        );
        assert_eq!(
            loggable_url("https://user:secret@orchestrator.example/notify"),
            "https://user:REDACTED@orchestrator.example/notify"
        );
        assert_eq!(loggable_url("http://h/x"), "http://h/x");
        assert!(!loggable_url("not a url?token=secret").contains("secret"));
    }
}
