//! Storage resource URLs: which account, which endpoint, which queue or container, which SAS.

use std::fmt;

use super::ConfigError;

/// The storage service a URL belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Queue Storage (`ACCOUNT.queue.core.windows.net`).
    Queue,
    /// Blob Storage (`ACCOUNT.blob.core.windows.net`).
    Blob,
}

impl Service {
    fn noun(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Blob => "container",
        }
    }
}

/// One queue or container: the account, the service endpoint, the resource name and an optional
/// SAS query string (kept and appended to every request).
///
/// Two addressing styles are understood:
/// - host style, as on Azure: `https://ACCOUNT.queue.core.windows.net/QUEUE` (the account is the
///   host's first label);
/// - path style, as on Azurite: `http://127.0.0.1:10001/devstoreaccount1/QUEUE` (the account is the
///   first path segment). Path style is used when the host is an IP address, `localhost`, or a
///   single-label name such as a compose service (`azurite`).
///
/// `Display` and `Debug` show the URL with any `sig=` value replaced by `REDACTED`.
#[derive(Clone, PartialEq, Eq)]
pub struct ResourceUrl {
    account: String,
    /// `scheme://host[:port]`, no trailing slash.
    origin: String,
    /// `/ACCOUNT` for path style, empty for host style.
    path_prefix: String,
    resource: String,
    /// The raw query string (without `?`) carrying a SAS, if any.
    sas: Option<String>,
}

impl ResourceUrl {
    /// Parses a queue (`service = Queue`) or container (`Blob`) URL.
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`] when the URL is not `http(s)`, has no account or resource, has
    /// extra path segments, or the resource name breaks the naming rules (3-63 characters,
    /// lowercase letters, digits and single hyphens, starting and ending with a letter or digit).
    pub fn parse(url: &str, service: Service) -> Result<Self, ConfigError> {
        let invalid = |detail: String| ConfigError::InvalidUrl {
            url: redact_sas(url),
            detail,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".to_string()));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host".to_string()))?;
        let is_ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        let path_style = is_ip || host.eq_ignore_ascii_case("localhost") || !host.contains('.');
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let noun = service.noun();
        let (account, resource) = if path_style {
            match segments.as_slice() {
                [account, resource] => ((*account).to_string(), (*resource).to_string()),
                _ => {
                    return Err(invalid(format!(
                        "expected http://HOST:PORT/ACCOUNT/{} (path style, as Azurite uses)",
                        noun.to_uppercase()
                    )));
                }
            }
        } else {
            let account = host.split('.').next().unwrap_or_default().to_string();
            match segments.as_slice() {
                [resource] => (account, (*resource).to_string()),
                _ => {
                    return Err(invalid(format!(
                        "expected https://ACCOUNT.{}.core.windows.net/{}",
                        match service {
                            Service::Queue => "queue",
                            Service::Blob => "blob",
                        },
                        noun.to_uppercase()
                    )));
                }
            }
        };
        if account.is_empty() {
            return Err(invalid("no account name".to_string()));
        }
        check_name(&resource)
            .map_err(|why| invalid(format!("bad {noun} name {resource:?}: {why}")))?;
        Ok(Self {
            path_prefix: if path_style {
                format!("/{account}")
            } else {
                String::new()
            },
            account,
            origin: parsed.origin().ascii_serialization(),
            resource,
            sas: parsed.query().filter(|q| !q.is_empty()).map(str::to_string),
        })
    }

    /// The URL of `name` under a service endpoint such as `https://ACCOUNT.queue.core.windows.net`
    /// or `http://127.0.0.1:10001/devstoreaccount1` (a connection string's `QueueEndpoint`), with
    /// `sas` (a query string, with or without a leading `?`) appended if given.
    ///
    /// # Errors
    /// As [`ResourceUrl::parse`].
    pub fn under_endpoint(
        endpoint: &str,
        name: &str,
        sas: Option<&str>,
        service: Service,
    ) -> Result<Self, ConfigError> {
        let mut url = format!("{}/{name}", endpoint.trim_end_matches('/'));
        if let Some(sas) = sas
            .map(|s| s.trim_start_matches('?'))
            .filter(|s| !s.is_empty())
        {
            url.push('?');
            url.push_str(sas);
        }
        Self::parse(&url, service)
    }

    /// The storage account name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The queue or container name.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Whether requests go over https.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.origin.starts_with("https://")
    }

    /// Whether the host is a loopback address or `localhost` (a local emulator or test server).
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        let host = self.origin.split_once("://").map_or("", |(_, rest)| rest);
        // Strip the port: after the IPv6 bracket if any, else after the last colon.
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the URL carries a SAS (a `sig` query parameter).
    #[must_use]
    pub fn has_sas(&self) -> bool {
        self.sas.as_deref().is_some_and(|q| {
            q.split('&').any(|p| {
                p.split('=')
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case("sig"))
            })
        })
    }

    /// The request URL for `tail` (an already percent-encoded path below the resource, starting
    /// with `/`, or empty) and `query` (decoded pairs, encoded here), with the SAS appended.
    pub(crate) fn request_url(&self, tail: &str, query: &[(&str, String)]) -> String {
        let mut url = format!(
            "{}{}/{}{tail}",
            self.origin,
            self.path_prefix,
            encode(&self.resource, false)
        );
        let mut sep = '?';
        for (k, v) in query {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v, false));
            sep = '&';
        }
        if let Some(sas) = &self.sas {
            url.push(sep);
            url.push_str(sas);
        }
        url
    }
}

impl fmt::Display for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", self.origin, self.path_prefix, self.resource)?;
        if let Some(sas) = &self.sas {
            write!(f, "?{}", redact_query(sas))?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceUrl({self})")
    }
}

/// `url` with the value of every `sig` query parameter replaced by `REDACTED`, so a SAS can be
/// shown in errors and logs without granting access.
#[must_use]
pub fn redact_sas(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{base}?{}", redact_query(query)),
        None => url.to_string(),
    }
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("sig") => format!("{k}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` if `keep_slash`), the
/// strictest form, so the path the service decodes is exactly the name we meant; `+` and space
/// are never ambiguous this way.
pub(crate) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Azure's queue and container naming rules (containers also allow the special `$root`, `$logs`
/// and `$web`).
fn check_name(name: &str) -> Result<(), &'static str> {
    if matches!(name, "$root" | "$logs" | "$web") {
        return Ok(());
    }
    if !(3..=63).contains(&name.len()) {
        return Err("must be 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("only lowercase letters, digits and hyphens are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err("hyphens must sit between letters or digits, one at a time");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_style_azure_url() {
        let u = ResourceUrl::parse("https://myacct.queue.core.windows.net/jobs", Service::Queue)
            .unwrap();
        assert_eq!(u.account(), "myacct");
        assert_eq!(u.resource(), "jobs");
        assert!(!u.has_sas());
        assert_eq!(
            u.request_url("/messages", &[("numofmessages", "32".into())]),
            "https://myacct.queue.core.windows.net/jobs/messages?numofmessages=32"
        );
        assert_eq!(u.to_string(), "https://myacct.queue.core.windows.net/jobs");
        assert!(u.is_https() && !u.is_loopback());
        // A trailing slash is tolerated.
        let b = ResourceUrl::parse("https://myacct.blob.core.windows.net/ckpt/", Service::Blob)
            .unwrap();
        assert_eq!((b.account(), b.resource()), ("myacct", "ckpt"));
    }

    #[test]
    fn path_style_azurite_url() {
        let u = ResourceUrl::parse(
            "http://127.0.0.1:10001/devstoreaccount1/jobs",
            Service::Queue,
        )
        .unwrap();
        assert_eq!(u.account(), "devstoreaccount1");
        assert_eq!(u.resource(), "jobs");
        assert_eq!(
            u.request_url("/messages/abc", &[]),
            "http://127.0.0.1:10001/devstoreaccount1/jobs/messages/abc"
        );
        assert!(!u.is_https() && u.is_loopback());
        let l = ResourceUrl::parse(
            "http://localhost:10000/devstoreaccount1/ckpt",
            Service::Blob,
        )
        .unwrap();
        assert_eq!(l.account(), "devstoreaccount1");
        assert!(l.is_loopback());
        let v6 =
            ResourceUrl::parse("http://[::1]:10000/devstoreaccount1/ckpt", Service::Blob).unwrap();
        assert!(v6.is_loopback());
        let d = ResourceUrl::parse("http://azurite:10000/devstoreaccount1/ckpt", Service::Blob)
            .unwrap();
        assert_eq!(d.account(), "devstoreaccount1");
        assert!(!d.is_loopback());
    }

    #[test]
    fn sas_is_kept_on_requests_and_redacted_in_display() {
        let url = "https://acct.queue.core.windows.net/jobs?sv=2025-11-05&ss=q&sig=abc%2Bdef%3D";
        let u = ResourceUrl::parse(url, Service::Queue).unwrap();
        assert!(u.has_sas());
        assert_eq!(
            u.request_url("/messages", &[("popreceipt", "a+b/c=".into())]),
            "https://acct.queue.core.windows.net/jobs/messages?popreceipt=a%2Bb%2Fc%3D&sv=2025-11-05&ss=q&sig=abc%2Bdef%3D"
        );
        let shown = u.to_string();
        assert_eq!(
            shown,
            "https://acct.queue.core.windows.net/jobs?sv=2025-11-05&ss=q&sig=REDACTED"
        );
        assert!(!format!("{u:?}").contains("abc"));
        assert_eq!(
            redact_sas("http://h/x?SIG=secret&a=1"),
            "http://h/x?SIG=REDACTED&a=1"
        );
    }

    #[test]
    fn bad_urls_are_rejected_without_leaking_the_sas() {
        for bad in [
            "ftp://acct.queue.core.windows.net/jobs",
            "https://acct.queue.core.windows.net/",
            "https://acct.queue.core.windows.net/jobs/messages",
            "http://127.0.0.1:10001/jobs",
            "https://acct.queue.core.windows.net/Jobs",
            "https://acct.queue.core.windows.net/a--b",
            "https://acct.queue.core.windows.net/ab",
        ] {
            assert!(ResourceUrl::parse(bad, Service::Queue).is_err(), "{bad}");
        }
        let err = ResourceUrl::parse(
            "https://acct.queue.core.windows.net/?sig=topsecret",
            Service::Queue,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn under_endpoint_joins_and_appends_sas() {
        let u = ResourceUrl::under_endpoint(
            "http://127.0.0.1:10000/devstoreaccount1/",
            "ckpt",
            Some("?sv=1&sig=x"),
            Service::Blob,
        )
        .unwrap();
        assert_eq!(
            u.request_url("", &[]),
            "http://127.0.0.1:10000/devstoreaccount1/ckpt?sv=1&sig=x"
        );
    }

    #[test]
    fn encoding_is_strict() {
        assert_eq!(
            encode("checkpoints/msg 1+ä", true),
            "checkpoints/msg%201%2B%C3%A4"
        );
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
