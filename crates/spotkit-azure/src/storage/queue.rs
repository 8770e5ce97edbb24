//! [`AzureQueue`]: Azure Queue Storage as a [`spotkit_cloud::Queue`].

use std::time::Duration;

use reqwest::Method;
use spotkit_cloud::{Delivery, Lease, MessageId, PeekedMessage, Queue, QueueError};
use spotkit_core::Timestamp;

use super::auth::StorageCredential;
use super::connection_string::ConnectionString;
use super::transport::{Call, Class, Failure, Transport, parse_time};
use super::url::{ResourceUrl, Service, encode};
use super::{ConfigError, StorageOptions, xml};

/// The largest message the service accepts, measured after base64 encoding (FACTS.md 6).
pub const MAX_ENCODED_MESSAGE_BYTES: usize = 64 * 1024;

/// The longest visibility timeout or delay the service accepts: 7 days.
const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// An Azure Storage queue.
///
/// Bodies are sent base64-encoded, as the Azure SDKs do, so any bytes survive. On receive a
/// `MessageText` that is not valid base64 (a producer that sent plain text) is returned as its raw
/// UTF-8 bytes; plain text that happens to be valid base64 is decoded, so producers should encode.
///
/// Visibility timeouts and delays are whole seconds, rounded up; a receive's visibility is at
/// least 1 s (the service minimum); values above 7 days are rejected.
#[derive(Debug)]
pub struct AzureQueue {
    transport: Transport,
    message_ttl: String,
}

impl AzureQueue {
    /// The queue at `url` (`https://ACCOUNT.queue.core.windows.net/QUEUE`, or path style
    /// `http://127.0.0.1:PORT/ACCOUNT/QUEUE`; see [`ResourceUrl`]). A SAS query string in the URL
    /// is kept on every request.
    ///
    /// # Errors
    /// A malformed URL, a credential that does not fit it (`Sas` without a SAS, a shared key for
    /// another account), or an HTTP client that cannot be built.
    pub fn from_url(
        url: &str,
        credential: StorageCredential,
        options: StorageOptions,
    ) -> Result<Self, ConfigError> {
        Self::new(
            ResourceUrl::parse(url, Service::Queue)?,
            credential,
            &options,
        )
    }

    /// The queue `name` of the account a connection string (`AZURE_STORAGE_CONNECTION_STRING`
    /// format) describes.
    ///
    /// # Errors
    /// As [`ConnectionString::parse`] and [`AzureQueue::from_url`].
    pub fn from_connection_string(
        connection_string: &str,
        name: &str,
        options: StorageOptions,
    ) -> Result<Self, ConfigError> {
        let c = ConnectionString::parse(connection_string)?;
        let url = ResourceUrl::under_endpoint(c.queue_endpoint(), name, c.sas(), Service::Queue)?;
        Self::new(url, c.credential().clone(), &options)
    }

    fn new(
        url: ResourceUrl,
        credential: StorageCredential,
        options: &StorageOptions,
    ) -> Result<Self, ConfigError> {
        let message_ttl = options
            .message_ttl
            .map_or_else(|| "-1".to_string(), |d| d.as_secs().max(1).to_string());
        Ok(Self {
            transport: Transport::new(url, credential, options)?,
            message_ttl,
        })
    }

    /// The queue's URL (SAS signature redacted when displayed).
    #[must_use]
    pub fn url(&self) -> &ResourceUrl {
        self.transport.url()
    }

    /// Maps a failure of an operation on the queue itself (no lease involved).
    fn error(&self, f: &Failure) -> QueueError {
        if let Failure::Service(e) = f
            && e.is(404, "QueueNotFound")
        {
            return QueueError::QueueNotFound {
                queue: self.url().to_string(),
            };
        }
        match f.class() {
            Class::Unauthorized(detail) => QueueError::Unauthorized { detail },
            Class::Throttled(retry_after) => QueueError::Throttled { retry_after },
            Class::Transient(detail) => QueueError::Transient { detail },
            Class::Rejected(detail) => QueueError::Rejected { detail },
        }
    }

    /// Maps a failure of Update or Delete Message: a stale receipt or a gone message is a lost
    /// lease (404 `MessageNotFound` on Azure, 400 `PopReceiptMismatch` on Azurite and older docs).
    fn lease_error(&self, lease: &Lease, f: &Failure) -> QueueError {
        if let Failure::Service(e) = f
            && (e.is(404, "MessageNotFound") || e.is(400, "PopReceiptMismatch"))
        {
            return QueueError::LeaseLost {
                message_id: lease.message_id.clone(),
            };
        }
        self.error(f)
    }

    fn malformed(&self, what: &str) -> QueueError {
        // A body we cannot read is most likely a proxy or a truncated answer: worth a retry.
        QueueError::Transient {
            detail: format!("{}: malformed response: {what}", self.url()),
        }
    }
}

/// Whole seconds, rounded up, within `min..=7 days`.
fn seconds(d: Duration, min: u64, what: &str) -> Result<String, QueueError> {
    if d > MAX_VISIBILITY {
        return Err(QueueError::Rejected {
            detail: format!("{what} {d:?} exceeds the 7-day maximum"),
        });
    }
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Ok(secs.max(min).to_string())
}

fn check_max(max: u32) -> Result<String, QueueError> {
    if (1..=32).contains(&max) {
        Ok(max.to_string())
    } else {
        Err(QueueError::Rejected {
            detail: format!("max must be 1..=32, got {max}"),
        })
    }
}

impl Queue for AzureQueue {
    async fn create_if_missing(&self) -> Result<(), QueueError> {
        // 201 created, 204 already exists; 409 QueueAlreadyExists (exists with other metadata) is
        // fine too: we set no metadata.
        match self.transport.send(&Call::new(Method::PUT, "")).await {
            Ok(_) => Ok(()),
            Err(Failure::Service(e)) if e.is(409, "QueueAlreadyExists") => Ok(()),
            Err(f) => Err(self.error(&f)),
        }
    }

    async fn send(&self, body: &[u8], delay: Duration) -> Result<MessageId, QueueError> {
        let text = xml::encode_body(body);
        if text.len() > MAX_ENCODED_MESSAGE_BYTES {
            return Err(QueueError::Rejected {
                detail: format!(
                    "message of {} bytes is {} bytes base64-encoded; the limit is {MAX_ENCODED_MESSAGE_BYTES}",
                    body.len(),
                    text.len()
                ),
            });
        }
        let mut call =
            Call::new(Method::POST, "/messages").query("messagettl", self.message_ttl.clone());
        if !delay.is_zero() {
            call = call.query("visibilitytimeout", seconds(delay, 0, "delay")?);
        }
        let call = call.body("application/xml", xml::message_body(&text).into_bytes());
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.error(&f))?;
        let messages = xml::parse_messages(&reply.body).map_err(|e| self.malformed(&e))?;
        let first = messages
            .into_iter()
            .next()
            .ok_or_else(|| self.malformed("Put Message returned no message"))?;
        Ok(MessageId(first.message_id))
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        let call = Call::new(Method::GET, "/messages")
            .query("numofmessages", check_max(max)?)
            .query("visibilitytimeout", seconds(visibility, 1, "visibility")?);
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.error(&f))?;
        let messages = xml::parse_messages(&reply.body).map_err(|e| self.malformed(&e))?;
        messages
            .into_iter()
            .map(|m| {
                let pop_receipt = m
                    .pop_receipt
                    .ok_or_else(|| self.malformed("a received message has no PopReceipt"))?;
                let visible_at = m
                    .time_next_visible
                    .as_deref()
                    .and_then(parse_time)
                    .ok_or_else(|| self.malformed("bad TimeNextVisible"))?;
                Ok(Delivery {
                    lease: Lease {
                        message_id: MessageId(m.message_id),
                        pop_receipt,
                        visible_at,
                    },
                    dequeue_count: m.dequeue_count,
                    body: xml::decode_body(&m.message_text),
                    inserted_at: inserted_at(&m.insertion_time),
                })
            })
            .collect()
    }

    async fn set_visibility(
        &self,
        lease: &Lease,
        visibility: Duration,
    ) -> Result<Lease, QueueError> {
        let call = Call::new(
            Method::PUT,
            format!("/messages/{}", encode(&lease.message_id.0, false)),
        )
        .query("popreceipt", lease.pop_receipt.clone())
        .query("visibilitytimeout", seconds(visibility, 0, "visibility")?);
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.lease_error(lease, &f))?;
        let pop_receipt = reply
            .header("x-ms-popreceipt")
            .ok_or_else(|| self.malformed("Update Message returned no x-ms-popreceipt"))?
            .to_string();
        let visible_at = reply
            .header("x-ms-time-next-visible")
            .and_then(parse_time)
            .ok_or_else(|| {
                self.malformed("Update Message returned no valid x-ms-time-next-visible")
            })?;
        Ok(Lease {
            message_id: lease.message_id.clone(),
            pop_receipt,
            visible_at,
        })
    }

    async fn delete(&self, lease: &Lease) -> Result<(), QueueError> {
        let call = Call::new(
            Method::DELETE,
            format!("/messages/{}", encode(&lease.message_id.0, false)),
        )
        .query("popreceipt", lease.pop_receipt.clone());
        self.transport
            .send(&call)
            .await
            .map(|_| ())
            .map_err(|f| self.lease_error(lease, &f))
    }

    async fn peek(&self, max: u32) -> Result<Vec<PeekedMessage>, QueueError> {
        let call = Call::new(Method::GET, "/messages")
            .query("peekonly", "true")
            .query("numofmessages", check_max(max)?);
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.error(&f))?;
        let messages = xml::parse_messages(&reply.body).map_err(|e| self.malformed(&e))?;
        Ok(messages
            .into_iter()
            .map(|m| PeekedMessage {
                message_id: MessageId(m.message_id),
                dequeue_count: m.dequeue_count,
                body: xml::decode_body(&m.message_text),
                inserted_at: inserted_at(&m.insertion_time),
            })
            .collect())
    }

    async fn approximate_len(&self) -> Result<u64, QueueError> {
        let call = Call::new(Method::GET, "").query("comp", "metadata");
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.error(&f))?;
        reply
            .header("x-ms-approximate-messages-count")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| self.malformed("no valid x-ms-approximate-messages-count"))
    }
}

/// The insertion time; informational only, so an unreadable one becomes the epoch rather than
/// failing the receive.
fn inserted_at(value: &str) -> Timestamp {
    parse_time(value).unwrap_or(Timestamp::from_unix_millis(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_and_cap() {
        assert_eq!(seconds(Duration::from_millis(1500), 0, "v").unwrap(), "2");
        assert_eq!(seconds(Duration::ZERO, 1, "v").unwrap(), "1");
        assert_eq!(seconds(Duration::ZERO, 0, "v").unwrap(), "0");
        assert!(matches!(
            seconds(MAX_VISIBILITY + Duration::from_secs(1), 0, "v"),
            Err(QueueError::Rejected { .. })
        ));
        assert!(check_max(0).is_err());
        assert!(check_max(33).is_err());
    }
}
