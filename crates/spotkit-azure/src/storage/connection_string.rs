//! `AZURE_STORAGE_CONNECTION_STRING`: endpoints plus a Shared Key (or SAS) credential.

use std::fmt;

use super::ConfigError;
use super::auth::{SharedKeyCredential, StorageCredential};

/// Azurite's well-known development account (public: it is in the Azurite README).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A parsed storage connection string.
///
/// Understood keys (case-insensitive): `DefaultEndpointsProtocol` (default `https`),
/// `AccountName`, `AccountKey`, `SharedAccessSignature`, `EndpointSuffix` (default
/// `core.windows.net`), `QueueEndpoint`, `BlobEndpoint`; and `UseDevelopmentStorage=true`, which
/// means Azurite on its default ports with the development account. Other keys are ignored.
/// `Debug` never shows the key or the SAS signature.
#[derive(Clone)]
pub struct ConnectionString {
    queue_endpoint: String,
    blob_endpoint: String,
    sas: Option<String>,
    credential: StorageCredential,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("queue_endpoint", &self.queue_endpoint)
            .field("blob_endpoint", &self.blob_endpoint)
            .field("credential", &self.credential)
            .field("has_sas", &self.sas.is_some())
            .finish()
    }
}

impl ConnectionString {
    /// Parses `s`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidConnectionString`] when a part is not `key=value`, when neither
    /// `AccountKey` nor `SharedAccessSignature` is given, or when an endpoint cannot be derived;
    /// [`ConfigError::InvalidKey`] when the key is not base64.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let bad = |detail: &str| ConfigError::InvalidConnectionString {
            detail: detail.to_string(),
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("every part must be key=value"))?;
            pairs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self {
                queue_endpoint: format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"),
                blob_endpoint: format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"),
                sas: None,
                credential: StorageCredential::SharedKey(SharedKeyCredential::new(
                    DEV_ACCOUNT,
                    DEV_KEY,
                )?),
            });
        }
        let account = get("accountname");
        let protocol = get("defaultendpointsprotocol").unwrap_or("https");
        let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
        let endpoint = |explicit: &str, service: &str| -> Result<String, ConfigError> {
            match (get(explicit), account) {
                (Some(e), _) => Ok(e.trim_end_matches('/').to_string()),
                (None, Some(a)) => Ok(format!("{protocol}://{a}.{service}.{suffix}")),
                (None, None) => Err(bad("AccountName or explicit endpoints are required")),
            }
        };
        let queue_endpoint = endpoint("queueendpoint", "queue")?;
        let blob_endpoint = endpoint("blobendpoint", "blob")?;
        let (credential, sas) = match (get("accountkey"), get("sharedaccesssignature")) {
            (Some(key), _) => {
                let account = account.ok_or_else(|| bad("AccountKey needs AccountName"))?;
                (
                    StorageCredential::SharedKey(SharedKeyCredential::new(account, key)?),
                    None,
                )
            }
            (None, Some(sas)) => (
                StorageCredential::Sas,
                Some(sas.trim_start_matches('?').to_string()),
            ),
            (None, None) => return Err(bad("AccountKey or SharedAccessSignature is required")),
        };
        Ok(Self {
            queue_endpoint,
            blob_endpoint,
            sas,
            credential,
        })
    }

    /// The Queue service endpoint, e.g. `https://ACCOUNT.queue.core.windows.net`.
    #[must_use]
    pub fn queue_endpoint(&self) -> &str {
        &self.queue_endpoint
    }

    /// The Blob service endpoint, e.g. `https://ACCOUNT.blob.core.windows.net`.
    #[must_use]
    pub fn blob_endpoint(&self) -> &str {
        &self.blob_endpoint
    }

    /// The SAS query string (`SharedAccessSignature`), if that is the credential.
    #[must_use]
    pub fn sas(&self) -> Option<&str> {
        self.sas.as_deref()
    }

    /// The credential: Shared Key, or [`StorageCredential::Sas`].
    #[must_use]
    pub fn credential(&self) -> &StorageCredential {
        &self.credential
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azurite_readme_connection_string() {
        let s = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;\
             QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;\
             TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
        );
        let c = ConnectionString::parse(&s).unwrap();
        assert_eq!(
            c.queue_endpoint(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(c.blob_endpoint(), "http://127.0.0.1:10000/devstoreaccount1");
        match c.credential() {
            StorageCredential::SharedKey(k) => assert_eq!(k.account(), "devstoreaccount1"),
            other => panic!("expected SharedKey, got {other:?}"),
        }
        assert!(!format!("{c:?}").contains("Eby8"));
    }

    #[test]
    fn azure_connection_string_derives_endpoints() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(c.queue_endpoint(), "https://myacct.queue.core.windows.net");
        assert_eq!(c.blob_endpoint(), "https://myacct.blob.core.windows.net");
        // Defaults: https and core.windows.net.
        let d = ConnectionString::parse("AccountName=x;AccountKey=a2V5").unwrap();
        assert_eq!(d.blob_endpoint(), "https://x.blob.core.windows.net");
    }

    #[test]
    fn development_storage_shortcut() {
        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            c.queue_endpoint(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert!(matches!(c.credential(), StorageCredential::SharedKey(_)));
    }

    #[test]
    fn sas_connection_string() {
        let c = ConnectionString::parse(
            "QueueEndpoint=https://a.queue.core.windows.net/;BlobEndpoint=https://a.blob.core.windows.net;\
             SharedAccessSignature=sv=2025-11-05&sig=secret",
        )
        .unwrap();
        assert_eq!(c.queue_endpoint(), "https://a.queue.core.windows.net");
        assert_eq!(c.sas(), Some("sv=2025-11-05&sig=secret"));
        assert!(matches!(c.credential(), StorageCredential::Sas));
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn broken_connection_strings_are_rejected_without_echoing_the_key() {
        assert!(ConnectionString::parse("AccountName=x").is_err());
        assert!(ConnectionString::parse("garbage").is_err());
        let err = ConnectionString::parse("AccountName=x;AccountKey=!!notbase64secret!!")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("notbase64secret"), "{err}");
    }
}
