//! ARM's error bodies and [`ArmError`].
//!
//! ARM wraps errors as `{"error":{"code","message","details":[…]}}`; the root cause is usually
//! the innermost detail (FACTS.md section 5). Some answers, such as the Compute provider's 429,
//! carry the same object without the `error` wrapper. Both parse into [`ArmErrorDetail`].

use std::time::Duration;

use serde::Deserialize;

/// One error object: code, message, optional target and nested details.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ArmErrorDetail {
    /// Machine-readable code (`SkuNotAvailable`, `OperationNotAllowed`...).
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// What the error is about, if said.
    #[serde(default)]
    pub target: Option<String>,
    /// Nested causes.
    #[serde(default)]
    pub details: Vec<ArmErrorDetail>,
}

impl ArmErrorDetail {
    /// The innermost detail with a code (depth first, first branch): usually the root cause.
    #[must_use]
    pub fn root_cause(&self) -> &ArmErrorDetail {
        match self.details.iter().find(|d| !d.code.is_empty()) {
            Some(inner) => inner.root_cause(),
            None => self,
        }
    }

    /// Every code in the tree, outermost first.
    #[must_use]
    pub fn codes(&self) -> Vec<&str> {
        let mut out = vec![self.code.as_str()];
        for d in &self.details {
            out.extend(d.codes());
        }
        out.retain(|c| !c.is_empty());
        out
    }

    /// Whether the tree says the request was throttled (`TooManyRequests` anywhere).
    #[must_use]
    pub fn is_too_many_requests(&self) -> bool {
        self.codes()
            .iter()
            .any(|c| c.eq_ignore_ascii_case("TooManyRequests"))
    }
}

#[derive(Deserialize)]
struct Wrapped {
    error: ArmErrorDetail,
}

/// Parses an ARM error body, wrapped or not; `None` if it is not one.
#[must_use]
pub fn parse_error_body(bytes: &[u8]) -> Option<ArmErrorDetail> {
    if let Ok(w) = serde_json::from_slice::<Wrapped>(bytes)
        && !w.error.code.is_empty()
    {
        return Some(w.error);
    }
    serde_json::from_slice::<ArmErrorDetail>(bytes)
        .ok()
        .filter(|d| !d.code.is_empty())
}

/// Why an ARM request failed. Messages never contain a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    /// HTTP 429 (or `TooManyRequests` in the body), or our own pacing would wait too long: wait
    /// `retry_after`, then try again.
    #[error("ARM throttled the request ({}): {message}; retry after {retry_after:?}", code.as_deref().unwrap_or("429"))]
    Throttled {
        /// How long to wait.
        retry_after: Duration,
        /// ARM's code, if the body had one (`OperationNotAllowed` for Compute's 429s).
        code: Option<String>,
        /// ARM's message.
        message: String,
    },
    /// The service answered with an error status.
    #[error("ARM answered {status} {code}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The outer error code (empty if the body had none).
        code: String,
        /// The outer message (or the start of the body).
        message: String,
        /// Nested details, innermost usually the root cause.
        details: Vec<ArmErrorDetail>,
    },
    /// 401/403, or no token could be had: fix the credential or its role assignment.
    #[error("ARM refused the credentials ({status} {code}): {message}")]
    Unauthorized {
        /// HTTP status (0 when no token could be obtained).
        status: u16,
        /// ARM's code (`AuthorizationFailed`, `InvalidAuthenticationToken`...).
        code: String,
        /// ARM's message.
        message: String,
    },
    /// The connection failed or broke: retry later.
    #[error("ARM request failed in transport: {detail}")]
    Transport {
        /// What happened.
        detail: String,
    },
    /// No complete answer within the timeout.
    #[error("ARM did not answer within {after:?}")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The answer is not what the API documents.
    #[error("malformed ARM answer: {what}; body starts {body_excerpt:?}")]
    Malformed {
        /// What was expected.
        what: String,
        /// The start of the body.
        body_excerpt: String,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("ARM operation ended {status}: {code}: {message}")]
    OperationFailed {
        /// `Failed` or `Canceled`.
        status: String,
        /// The operation's error code.
        code: String,
        /// The operation's error message.
        message: String,
        /// Nested details.
        details: Vec<ArmErrorDetail>,
    },
    /// A long-running operation did not end within the client's overall timeout.
    #[error("ARM operation still running after {after:?}; observe the resource later")]
    OperationTimeout {
        /// How long we polled.
        after: Duration,
    },
    /// A URL from a response points at another origin than the configured ARM endpoint; we do
    /// not follow it, because we would send it our bearer token.
    #[error("refusing to follow {url}: not on the ARM endpoint {base}")]
    UntrustedUrl {
        /// The URL (start of it).
        url: String,
        /// The configured origin.
        base: String,
    },
    /// The client is misconfigured (bad base URL...).
    #[error("ARM client configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
}

impl ArmError {
    /// The error for a non-2xx, non-429 status.
    #[must_use]
    pub fn from_status(status: u16, body: Option<ArmErrorDetail>, raw: &[u8]) -> Self {
        let detail = body.unwrap_or_else(|| ArmErrorDetail {
            message: super::client::excerpt(raw),
            ..ArmErrorDetail::default()
        });
        // A 403 `OperationNotAllowed` is a refused operation (Spot quota, FACTS.md section 5),
        // not a refused credential.
        let refused_operation = detail.code.eq_ignore_ascii_case("OperationNotAllowed");
        if status == 401 || (status == 403 && !refused_operation) {
            return Self::Unauthorized {
                status,
                code: detail.code,
                message: detail.message,
            };
        }
        Self::Http {
            status,
            code: detail.code,
            message: detail.message,
            details: detail.details,
        }
    }

    /// The innermost error code and message (for `Http` and `OperationFailed`), falling back to
    /// the outer ones.
    #[must_use]
    pub fn root_cause(&self) -> Option<(String, String)> {
        let (code, message, details) = match self {
            Self::Http {
                code,
                message,
                details,
                ..
            }
            | Self::OperationFailed {
                code,
                message,
                details,
                ..
            } => (code, message, details),
            _ => return None,
        };
        let tree = ArmErrorDetail {
            code: code.clone(),
            message: message.clone(),
            target: None,
            details: details.clone(),
        };
        let root = tree.root_cause();
        Some((root.code.clone(), root.message.clone()))
    }

    /// Whether the same request may succeed later unchanged.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. }
            | Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::OperationTimeout { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 409,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_and_bare_bodies_parse_and_the_innermost_detail_is_the_root_cause() {
        let wrapped = br#"{"error":{"code":"DeploymentFailed","message":"outer","details":[{"code":"Conflict","message":"mid","details":[{"code":"SkuNotAvailable","message":"inner"}]}]}}"#;
        let e = parse_error_body(wrapped).unwrap();
        assert_eq!(e.root_cause().code, "SkuNotAvailable");
        assert_eq!(
            e.codes(),
            vec!["DeploymentFailed", "Conflict", "SkuNotAvailable"]
        );
        let bare = br#"{"code":"OperationNotAllowed","message":"m","details":[{"code":"TooManyRequests","target":"HighCostGet30Min","message":"x"}]}"#;
        let e = parse_error_body(bare).unwrap();
        assert!(e.is_too_many_requests());
        assert_eq!(e.details[0].target.as_deref(), Some("HighCostGet30Min"));
        assert!(parse_error_body(b"<html>bad gateway</html>").is_none());
        assert!(parse_error_body(b"{}").is_none());
    }

    #[test]
    fn statuses_classify() {
        let e = ArmError::from_status(
            403,
            parse_error_body(br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#),
            b"",
        );
        assert!(matches!(e, ArmError::Unauthorized { status: 403, .. }));
        let e = ArmError::from_status(502, None, b"<html>bad gateway</html>");
        match &e {
            ArmError::Http {
                status: 502,
                message,
                ..
            } => assert!(message.contains("bad gateway")),
            other => panic!("{other:?}"),
        }
        assert!(e.is_retryable());
    }
}
