//! How requests are authorized: a SAS in the URL, Shared Key signing, or a bearer token.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::ConfigError;

/// The credential a storage client authorizes its requests with.
///
/// `Debug` never shows keys or tokens.
#[derive(Clone)]
pub enum StorageCredential {
    /// The SAS query string in the URL authorizes every request; nothing else is sent.
    Sas,
    /// Shared Key: each request is signed with HMAC-SHA256 of the account key.
    SharedKey(SharedKeyCredential),
    /// An Entra ID bearer token (for example the VM's managed identity, [`super::ImdsManagedIdentity`]).
    /// On 401/403 the token is invalidated and the request retried once with a fresh one.
    Bearer(Arc<dyn TokenSource>),
}

impl fmt::Debug for StorageCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sas => f.write_str("Sas"),
            Self::SharedKey(k) => write!(f, "SharedKey({k:?})"),
            Self::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}

/// An account name and its (decoded) account key.
#[derive(Clone)]
pub struct SharedKeyCredential {
    account: String,
    key: Vec<u8>,
}

impl fmt::Debug for SharedKeyCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SharedKeyCredential {{ account: {:?}, key: REDACTED }}",
            self.account
        )
    }
}

impl SharedKeyCredential {
    /// A credential from the account name and the base64 account key as the portal shows it.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when `key_base64` is not base64 (the error never echoes it).
    pub fn new(account: impl Into<String>, key_base64: &str) -> Result<Self, ConfigError> {
        let key = BASE64
            .decode(key_base64.trim())
            .map_err(|_| ConfigError::InvalidKey)?;
        if key.is_empty() {
            return Err(ConfigError::InvalidKey);
        }
        Ok(Self {
            account: account.into(),
            key,
        })
    }

    /// The account name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `base64(HMAC-SHA256(key, string_to_sign))`.
    pub(crate) fn sign(&self, string_to_sign: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// The `Authorization` header value for a request (Shared Key scheme for the Blob and Queue
    /// services, version 2009-09-19 and later).
    ///
    /// `headers` are the request headers with lowercase names (the `x-ms-*` ones, `content-type`,
    /// conditional headers...); `url` is exactly the URL sent.
    pub(crate) fn authorization(
        &self,
        method: &str,
        url: &reqwest::Url,
        headers: &[(&str, String)],
        content_length: usize,
    ) -> String {
        let sts = string_to_sign(&self.account, method, url, headers, content_length);
        format!("SharedKey {}:{}", self.account, self.sign(&sts))
    }
}

/// The Shared Key string-to-sign:
/// `VERB\nContent-Encoding\nContent-Language\nContent-Length\nContent-MD5\nContent-Type\nDate\n`
/// `If-Modified-Since\nIf-Match\nIf-None-Match\nIf-Unmodified-Since\nRange\n`
/// `CanonicalizedHeaders` `CanonicalizedResource`.
///
/// Content-Length is empty when zero (versions 2015-02-21+); Date is empty because `x-ms-date` is
/// sent. The canonicalized resource is `/ACCOUNT` + the encoded URL path (so path-style URLs name
/// the account twice) + one `\nname:value` line per query parameter, names lowercased and sorted,
/// values decoded and comma-joined.
pub(crate) fn string_to_sign(
    account: &str,
    method: &str,
    url: &reqwest::Url,
    headers: &[(&str, String)],
    content_length: usize,
) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ms.sort();
    let mut sts = format!(
        "{}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
        method.to_ascii_uppercase(),
        header("content-encoding"),
        header("content-language"),
        header("content-md5"),
        header("content-type"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    for (n, v) in ms {
        sts.push_str(&n);
        sts.push(':');
        sts.push_str(&v);
        sts.push('\n');
    }
    sts.push('/');
    sts.push_str(account);
    sts.push_str(url.path());
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        query
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.into_owned());
    }
    for (k, mut values) in query {
        values.sort();
        sts.push('\n');
        sts.push_str(&k);
        sts.push(':');
        sts.push_str(&values.join(","));
    }
    sts
}

/// A future returned by [`TokenSource::token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>>;

/// Where bearer tokens for `https://storage.azure.com/` come from. Implementations cache tokens;
/// the client calls [`TokenSource::token`] before every request.
pub trait TokenSource: Send + Sync + 'static {
    /// A valid access token (the bare token, without `Bearer `).
    fn token(&self) -> TokenFuture<'_>;

    /// Forgets any cached token: the service refused it, so the next [`TokenSource::token`] call
    /// must fetch a fresh one.
    fn invalidate(&self);
}

/// Why no token could be had. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint is unreachable, slow, throttling or failing (IMDS 404/410/429/5xx):
    /// retry later.
    #[error("token endpoint unavailable: {detail}")]
    Unavailable {
        /// What happened.
        detail: String,
    },
    /// The token endpoint refused (for example no identity assigned, or a wrong `client_id`).
    #[error("token request refused: {detail}")]
    Refused {
        /// What the endpoint said.
        detail: String,
    },
    /// The token endpoint answered with something that is not a token response.
    #[error("malformed token response: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's well-known development key (public, from the Azurite README).
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    #[test]
    fn string_to_sign_for_a_path_style_update_message() {
        let url = reqwest::Url::parse(
            "http://127.0.0.1:10001/devstoreaccount1/jobs/messages/abc?popreceipt=AgAAAA%2B%2F%3D&visibilitytimeout=30",
        )
        .unwrap();
        let headers = [
            ("x-ms-version", "2025-11-05".to_string()),
            ("x-ms-date", "Thu, 26 Nov 2026 10:00:00 GMT".to_string()),
            ("content-type", "application/xml".to_string()),
        ];
        let sts = string_to_sign("devstoreaccount1", "PUT", &url, &headers, 0);
        assert_eq!(
            sts,
            "PUT\n\n\n\n\napplication/xml\n\n\n\n\n\n\n\
             x-ms-date:Thu, 26 Nov 2026 10:00:00 GMT\nx-ms-version:2025-11-05\n\
             /devstoreaccount1/devstoreaccount1/jobs/messages/abc\n\
             popreceipt:AgAAAA+/=\nvisibilitytimeout:30"
        );
    }

    #[test]
    fn shared_key_signature_matches_an_independent_computation() {
        // Expected value computed independently with Python:
        //   import base64, hmac, hashlib
        //   key = base64.b64decode(DEV_KEY)
        //   sts = ("PUT\n\n\n11\n\napplication/octet-stream\n\n\n\n*\n\n\n"
        //          "x-ms-blob-type:BlockBlob\nx-ms-date:Thu, 26 Nov 2026 10:00:00 GMT\n"
        //          "x-ms-version:2025-11-05\n/devstoreaccount1/devstoreaccount1/ckpt/a%20b")
        //   base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest())
        //   -> +tBN5TKPul9AbzEVhMKj3aIk4IPdzs1vLt+MmyqNsLs=
        let cred = SharedKeyCredential::new("devstoreaccount1", DEV_KEY).unwrap();
        let url =
            reqwest::Url::parse("http://127.0.0.1:10000/devstoreaccount1/ckpt/a%20b").unwrap();
        let headers = [
            ("x-ms-version", "2025-11-05".to_string()),
            ("x-ms-date", "Thu, 26 Nov 2026 10:00:00 GMT".to_string()),
            ("x-ms-blob-type", "BlockBlob".to_string()),
            ("content-type", "application/octet-stream".to_string()),
            ("if-none-match", "*".to_string()),
        ];
        assert_eq!(
            cred.authorization("PUT", &url, &headers, 11),
            "SharedKey devstoreaccount1:+tBN5TKPul9AbzEVhMKj3aIk4IPdzs1vLt+MmyqNsLs="
        );
    }

    #[test]
    fn keys_never_show_in_debug() {
        let cred = SharedKeyCredential::new("devstoreaccount1", DEV_KEY).unwrap();
        let shown = format!("{:?}", StorageCredential::SharedKey(cred));
        assert!(!shown.contains("Eby8"), "{shown}");
        assert!(matches!(
            SharedKeyCredential::new("a", "not base64!"),
            Err(ConfigError::InvalidKey)
        ));
    }
}
