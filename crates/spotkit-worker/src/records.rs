//! What the worker stores: object keys, fenced checkpoint records, poison records.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Object names keep `[A-Za-z0-9._-]` and percent-encode every other byte, so any idempotency key
/// maps to one valid, unambiguous blob name.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the committed effect for `key` lives.
#[must_use]
pub fn ledger_key(key: &str) -> String {
    format!("ledger/{}", encode_key(key))
}

/// Where the checkpoint for `key` lives.
#[must_use]
pub fn checkpoint_key(key: &str) -> String {
    format!("checkpoints/{}", encode_key(key))
}

const CHECKPOINT_MAGIC: &[u8] = b"spotkit-checkpoint-v1\n";

/// A checkpoint with the fence (dequeue count) of the attempt that wrote it.
pub fn encode_checkpoint(fence: u32, data: &[u8]) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    out.extend_from_slice(fence.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// `(fence, data)`, or `None` for bytes that are not a checkpoint record (treated as no checkpoint).
pub fn decode_checkpoint(raw: &[u8]) -> Option<(u32, Vec<u8>)> {
    let rest = raw.strip_prefix(CHECKPOINT_MAGIC)?;
    let newline = rest.iter().position(|b| *b == b'\n')?;
    let fence = std::str::from_utf8(&rest[..newline]).ok()?.parse().ok()?;
    Some((fence, rest[newline + 1..].to_vec()))
}

/// The fence rule of checkpoint writes: an attempt with `fence` (its dequeue count) may replace
/// the stored checkpoint `existing` unless a later attempt (a higher fence) wrote it. Pure, so
/// the deterministic simulation (spotkit-dst) checks the same rule the runner applies.
#[must_use]
pub fn checkpoint_write_allowed(existing: Option<&[u8]>, fence: u32) -> bool {
    existing
        .and_then(decode_checkpoint)
        .is_none_or(|(theirs, _)| theirs <= fence)
}

/// What goes on the poison queue: the original message and why it was set aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonRecord {
    /// Why.
    pub reason: String,
    /// The original message id.
    pub message_id: String,
    /// Receives before it was set aside.
    pub dequeue_count: u32,
    /// The original raw body, base64.
    pub body_b64: String,
}

impl PoisonRecord {
    pub(crate) fn new(reason: &str, message_id: &str, dequeue_count: u32, body: &[u8]) -> Self {
        Self {
            reason: reason.to_string(),
            message_id: message_id.to_string(),
            dequeue_count,
            body_b64: STANDARD.encode(body),
        }
    }

    /// The original body.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        STANDARD.decode(&self.body_b64).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_unambiguously() {
        assert_eq!(ledger_key("order-42"), "ledger/order-42");
        assert_eq!(checkpoint_key("a/b c%"), "checkpoints/a%2Fb%20c%25");
        assert_ne!(ledger_key("a/b"), ledger_key("a%2Fb"));
    }

    #[test]
    fn checkpoints_carry_their_fence() {
        let raw = encode_checkpoint(7, b"progress\n42");
        assert_eq!(decode_checkpoint(&raw), Some((7, b"progress\n42".to_vec())));
        assert_eq!(decode_checkpoint(b"something else"), None);
    }
}
