//! [`AzureBlobStore`]: an Azure Blob Storage container as a [`spotkit_cloud::ObjectStore`].

use reqwest::Method;
use spotkit_cloud::{ETag, ObjectStore, StoreError, StoredObject, WriteCondition};

use super::auth::StorageCredential;
use super::connection_string::ConnectionString;
use super::transport::{Call, Class, Failure, Transport};
use super::url::{ResourceUrl, Service, encode};
use super::{ConfigError, StorageOptions, xml};

/// An Azure Blob Storage container holding block blobs. Keys are blob names (`/`-separated); they
/// are percent-encoded on the wire, so any UTF-8 name works. ETags are the service's `ETag`
/// header, quotes included, and are sent back verbatim in `If-Match`.
#[derive(Debug)]
pub struct AzureBlobStore {
    transport: Transport,
    page_size: Option<u32>,
}

impl AzureBlobStore {
    /// The container at `url` (`https://ACCOUNT.blob.core.windows.net/CONTAINER`, or path style
    /// `http://127.0.0.1:PORT/ACCOUNT/CONTAINER`; see [`ResourceUrl`]). A SAS query string in the
    /// URL is kept on every request.
    ///
    /// # Errors
    /// A malformed URL, a credential that does not fit it, or an HTTP client that cannot be built.
    pub fn from_url(
        url: &str,
        credential: StorageCredential,
        options: StorageOptions,
    ) -> Result<Self, ConfigError> {
        Self::new(
            ResourceUrl::parse(url, Service::Blob)?,
            credential,
            &options,
        )
    }

    /// The container `name` of the account a connection string describes.
    ///
    /// # Errors
    /// As [`ConnectionString::parse`] and [`AzureBlobStore::from_url`].
    pub fn from_connection_string(
        connection_string: &str,
        name: &str,
        options: StorageOptions,
    ) -> Result<Self, ConfigError> {
        let c = ConnectionString::parse(connection_string)?;
        let url = ResourceUrl::under_endpoint(c.blob_endpoint(), name, c.sas(), Service::Blob)?;
        Self::new(url, c.credential().clone(), &options)
    }

    fn new(
        url: ResourceUrl,
        credential: StorageCredential,
        options: &StorageOptions,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(url, credential, options)?,
            page_size: options.list_page_size,
        })
    }

    /// The container's URL (SAS signature redacted when displayed).
    #[must_use]
    pub fn url(&self) -> &ResourceUrl {
        self.transport.url()
    }

    fn error(&self, key: &str, f: &Failure) -> StoreError {
        if let Failure::Service(e) = f {
            if e.is(404, "ContainerNotFound") {
                return StoreError::StoreNotFound {
                    store: self.url().to_string(),
                };
            }
            // 412 ConditionNotMet for a stale If-Match; 409 BlobAlreadyExists for If-None-Match: *
            // on an existing blob (FACTS 6: both happen, so both mean "someone wrote first").
            if e.status == 412 || e.is(409, "BlobAlreadyExists") {
                return StoreError::ConditionFailed {
                    key: key.to_string(),
                };
            }
        }
        match f.class() {
            Class::Unauthorized(detail) => StoreError::Unauthorized { detail },
            Class::Throttled(retry_after) => StoreError::Throttled { retry_after },
            Class::Transient(detail) => StoreError::Transient { detail },
            Class::Rejected(detail) => StoreError::Rejected { detail },
        }
    }

    fn malformed(&self, what: &str) -> StoreError {
        StoreError::Transient {
            detail: format!("{}: malformed response: {what}", self.url()),
        }
    }

    fn blob_path(key: &str) -> Result<String, StoreError> {
        if key.is_empty() {
            return Err(StoreError::Rejected {
                detail: "an object key must not be empty".to_string(),
            });
        }
        Ok(format!("/{}", encode(key, true)))
    }
}

impl ObjectStore for AzureBlobStore {
    async fn create_if_missing(&self) -> Result<(), StoreError> {
        let call = Call::new(Method::PUT, "").query("restype", "container");
        match self.transport.send(&call).await {
            Ok(_) => Ok(()),
            Err(Failure::Service(e)) if e.is(409, "ContainerAlreadyExists") => Ok(()),
            Err(f) => Err(self.error("", &f)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let call = Call::new(Method::GET, Self::blob_path(key)?);
        match self.transport.send(&call).await {
            Ok(reply) => {
                let etag = reply
                    .header("etag")
                    .ok_or_else(|| self.malformed("Get Blob returned no ETag"))?
                    .to_string();
                Ok(Some(StoredObject {
                    body: reply.body,
                    etag: ETag(etag),
                }))
            }
            Err(Failure::Service(e)) if e.is(404, "BlobNotFound") => Ok(None),
            Err(f) => Err(self.error(key, &f)),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition,
    ) -> Result<ETag, StoreError> {
        let mut call = Call::new(Method::PUT, Self::blob_path(key)?)
            .header("x-ms-blob-type", "BlockBlob")
            .body("application/octet-stream", body.to_vec());
        call = match condition {
            WriteCondition::IfAbsent => call.header("if-none-match", "*"),
            WriteCondition::IfMatch(etag) => call.header("if-match", etag.0),
            WriteCondition::Always => call,
        };
        let reply = self
            .transport
            .send(&call)
            .await
            .map_err(|f| self.error(key, &f))?;
        let etag = reply
            .header("etag")
            .ok_or_else(|| self.malformed("Put Blob returned no ETag"))?;
        Ok(ETag(etag.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let call = Call::new(Method::DELETE, Self::blob_path(key)?);
        match self.transport.send(&call).await {
            Ok(_) => Ok(()),
            Err(Failure::Service(e)) if e.is(404, "BlobNotFound") => Ok(()),
            Err(f) => Err(self.error(key, &f)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut call = Call::new(Method::GET, "")
                .query("restype", "container")
                .query("comp", "list")
                .query("prefix", prefix);
            if let Some(size) = self.page_size {
                call = call.query("maxresults", size.to_string());
            }
            if let Some(m) = marker.take() {
                call = call.query("marker", m);
            }
            let reply = self
                .transport
                .send(&call)
                .await
                .map_err(|f| self.error(prefix, &f))?;
            let (page, next) = xml::parse_blob_list(&reply.body).map_err(|e| self.malformed(&e))?;
            names.extend(page);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        // The service lists in lexical order already; sorting makes the contract hold regardless.
        names.sort();
        Ok(names)
    }
}
