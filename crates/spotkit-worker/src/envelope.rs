//! The optional message envelope that carries a producer-chosen idempotency key.
//!
//! A message whose body is a JSON object with `"spotkit_envelope": 1` is an envelope:
//! `{"spotkit_envelope":1,"key":"order-42","body_b64":"..."}`; the handler sees the decoded body
//! and the key. Any other body is delivered as is, with the message id as the key. A body that
//! claims to be an envelope but is malformed is rejected (poisoned with the reason), never retried:
//! it can never succeed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The idempotency key.
    pub key: String,
    /// The body the handler sees.
    pub body: Vec<u8>,
}

/// Why a message claiming to be an envelope is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not valid envelope JSON.
    #[error("malformed spotkit envelope: {0}")]
    Malformed(String),
    /// An envelope version this worker does not know.
    #[error("spotkit envelope version {0} is not supported (this worker knows 1)")]
    Version(u64),
    /// The key is empty or longer than 512 bytes.
    #[error("spotkit envelope key must be 1-512 bytes, got {0}")]
    BadKey(usize),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    spotkit_envelope: u64,
    key: String,
    body_b64: String,
}

const MARKER: &[u8] = b"\"spotkit_envelope\"";

/// Decodes a raw message body received with `message_id`.
///
/// # Errors
/// When the body claims to be an envelope (contains the `"spotkit_envelope"` key and is a JSON
/// object) but is not a valid one.
pub fn parse_envelope(message_id: &str, raw: &[u8]) -> Result<Envelope, EnvelopeError> {
    let trimmed = raw.trim_ascii_start();
    let claims = trimmed.first() == Some(&b'{') && raw.windows(MARKER.len()).any(|w| w == MARKER);
    if !claims {
        return Ok(Envelope {
            key: message_id.to_string(),
            body: raw.to_vec(),
        });
    }
    let wire: Wire =
        serde_json::from_slice(raw).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if wire.spotkit_envelope != 1 {
        return Err(EnvelopeError::Version(wire.spotkit_envelope));
    }
    if wire.key.is_empty() || wire.key.len() > 512 {
        return Err(EnvelopeError::BadKey(wire.key.len()));
    }
    let body = STANDARD
        .decode(wire.body_b64.as_bytes())
        .map_err(|e| EnvelopeError::Malformed(format!("body_b64: {e}")))?;
    Ok(Envelope {
        key: wire.key,
        body,
    })
}

/// Wraps `body` with a producer-chosen idempotency `key`.
#[must_use]
pub fn encode_envelope(key: &str, body: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&Wire {
        spotkit_envelope: 1,
        key: key.to_string(),
        body_b64: STANDARD.encode(body),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bodies_use_the_message_id_as_key() {
        let e = parse_envelope("m1", b"hello").unwrap();
        assert_eq!((e.key.as_str(), e.body.as_slice()), ("m1", &b"hello"[..]));
        let json = parse_envelope("m2", br#"{"order": 42}"#).unwrap();
        assert_eq!(json.key, "m2", "other JSON is just a body");
    }

    #[test]
    fn envelopes_round_trip_binary_bodies() {
        let body: Vec<u8> = (0..=255).collect();
        let e = parse_envelope("m", &encode_envelope("order-42", &body)).unwrap();
        assert_eq!(e.key, "order-42");
        assert_eq!(e.body, body);
    }

    #[test]
    fn broken_envelopes_are_errors_not_panics() {
        for (raw, expect) in [
            (&br#"{"spotkit_envelope":1,"key":"k"}"#[..], "malformed"),
            (
                br#"{"spotkit_envelope":2,"key":"k","body_b64":""}"#,
                "version 2",
            ),
            (br#"{"spotkit_envelope":1,"key":"","body_b64":""}"#, "1-512"),
            (
                br#"{"spotkit_envelope":1,"key":"k","body_b64":"%%%"}"#,
                "body_b64",
            ),
            (
                br#"{"spotkit_envelope":1,"key":"k","body_b64":"","x":1}"#,
                "malformed",
            ),
            (br#"{"spotkit_envelope":1,"#, "malformed"),
        ] {
            let err = parse_envelope("m", raw).unwrap_err().to_string();
            assert!(
                err.contains(expect),
                "{}: {err}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
