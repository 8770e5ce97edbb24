//! Bearer tokens for a scope: the Entra ID credentials of the official `azure_identity` crate
//! behind one small trait, plus a static token for tests and the simulator.
//!
//! [`TokenProvider`] generalises storage's [`TokenSource`] (one fixed audience) to any scope, with
//! the same future and error types, so one credential can authorize ARM *and* storage:
//! [`ScopedTokenSource`] turns a provider into a storage [`TokenSource`], and the storage module's
//! [`ImdsManagedIdentity`] is also a provider for the audience it was built for.
//!
//! `azure_identity` 1.0 has no `DefaultAzureCredential`, so [`CredentialChoice`] selects one
//! explicitly; [`CredentialChoice::Auto`] resolves from the environment in a fixed, documented
//! order (see [`CredentialChoice::resolve`]). Tokens never appear in `Debug` output, logs or
//! error messages.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
};

use crate::storage::{ImdsManagedIdentity, TokenError, TokenFuture, TokenSource};

/// The scope of Azure Resource Manager tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Where bearer tokens come from, for any Entra ID scope (`https://management.azure.com/.default`,
/// `https://storage.azure.com/.default`...). Implementations cache tokens; clients ask before
/// every request.
pub trait TokenProvider: Send + Sync + 'static {
    /// A valid access token for `scope` (the bare token, without `Bearer `).
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a>;

    /// Forgets any cached token for `scope` because the service refused it. Credentials whose
    /// cache cannot be cleared (the `azure_identity` ones) ignore this; their tokens expire on
    /// their own.
    fn invalidate(&self, scope: &str) {
        let _ = scope;
    }

    /// A short name of the credential for logs and errors (never a secret).
    fn kind(&self) -> &'static str;
}

/// A fixed token, for tests and the local simulator (which accepts any token). `Debug` redacts it.
#[derive(Clone)]
pub struct StaticToken(Arc<str>);

impl StaticToken {
    /// A provider that always answers `token`.
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(REDACTED)")
    }
}

impl TokenProvider for StaticToken {
    fn token<'a>(&'a self, _scope: &'a str) -> TokenFuture<'a> {
        let token = self.0.to_string();
        Box::pin(async move { Ok(token) })
    }

    fn kind(&self) -> &'static str {
        "static token"
    }
}

/// The resource (IMDS `resource=` audience) of a `.default` scope: `https://x/.default` is
/// `https://x/`.
fn resource_of_scope(scope: &str) -> String {
    let base = scope.strip_suffix(".default").unwrap_or(scope);
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

/// The storage module's own IMDS token source is a provider for the one audience it was built
/// for (no proxy, loopback-testable); other scopes are refused with a hint.
impl TokenProvider for ImdsManagedIdentity {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let wanted = resource_of_scope(scope);
            let have = resource_of_scope(self.resource());
            if !wanted.eq_ignore_ascii_case(&have) {
                return Err(TokenError::Refused {
                    detail: format!(
                        "this IMDS token source is for {have}, not {wanted}; build one with \
                         ImdsTokenOptions {{ resource: {wanted:?}, .. }}"
                    ),
                });
            }
            TokenSource::token(self).await
        })
    }

    fn invalidate(&self, _scope: &str) {
        TokenSource::invalidate(self);
    }

    fn kind(&self) -> &'static str {
        "IMDS managed identity"
    }
}

/// A [`TokenProvider`] bound to one scope, usable wherever storage wants a [`TokenSource`]
/// (`StorageCredential::Bearer`), e.g. with scope `https://storage.azure.com/.default`.
pub struct ScopedTokenSource {
    provider: Arc<dyn TokenProvider>,
    scope: String,
}

impl ScopedTokenSource {
    /// `provider`'s tokens for `scope`.
    #[must_use]
    pub fn new(provider: Arc<dyn TokenProvider>, scope: impl Into<String>) -> Self {
        Self {
            provider,
            scope: scope.into(),
        }
    }
}

impl fmt::Debug for ScopedTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedTokenSource")
            .field("kind", &self.provider.kind())
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenSource for ScopedTokenSource {
    fn token(&self) -> TokenFuture<'_> {
        self.provider.token(&self.scope)
    }

    fn invalidate(&self) {
        self.provider.invalidate(&self.scope);
    }
}

/// Which Entra ID credential to use. Parse from config with [`CredentialChoice::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialChoice {
    /// Pick from the environment, in the order documented on [`CredentialChoice::resolve`].
    Auto,
    /// The managed identity of the VM (IMDS) or App Service (`IDENTITY_ENDPOINT`).
    ManagedIdentity,
    /// Workload identity federation (AKS): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// A service principal secret: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// The signed-in Azure CLI (`az account get-access-token`), for developer machines.
    AzureCli,
}

/// A user-assigned managed identity's client id is read from this variable (as the other Azure
/// SDKs' default chains do); unset means the system-assigned identity.
const MANAGED_IDENTITY_CLIENT_ID_VARS: [&str; 2] =
    ["SPOTKIT_MANAGED_IDENTITY_CLIENT_ID", "AZURE_CLIENT_ID"];

impl CredentialChoice {
    /// `auto`, `managed-identity`, `workload-identity`, `client-secret`, `azure-cli` (also with
    /// underscores, any case).
    ///
    /// # Errors
    /// [`CredentialError::UnknownChoice`] naming the accepted values.
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Self::Auto),
            "managed-identity" | "msi" => Ok(Self::ManagedIdentity),
            "workload-identity" => Ok(Self::WorkloadIdentity),
            "client-secret" => Ok(Self::ClientSecret),
            "azure-cli" | "cli" => Ok(Self::AzureCli),
            _ => Err(CredentialError::UnknownChoice {
                given: s.to_string(),
            }),
        }
    }

    /// The concrete credential this choice means, given the environment (`env` looks a variable
    /// up; `on_azure_vm` says whether this machine is an Azure VM, see [`running_on_azure_vm`]).
    /// Pure, so the order is tested. `Auto` picks the first that applies:
    ///
    /// 1. `AZURE_FEDERATED_TOKEN_FILE` set: **workload identity** (a federated token was mounted
    ///    for us on purpose, the most specific signal);
    /// 2. `AZURE_CLIENT_SECRET` set: **client secret** (someone configured a service principal);
    /// 3. `IDENTITY_ENDPOINT` set (App Service, Container Apps) or an Azure VM: **managed
    ///    identity**;
    /// 4. otherwise: **Azure CLI** (a developer machine).
    ///
    /// This is the order of the other Azure SDKs' default chains, minus their trial-and-error:
    /// probing IMDS off Azure can hang for seconds, so the VM is detected instead.
    #[must_use]
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>, on_azure_vm: bool) -> Self {
        let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        match self {
            Self::Auto if set("AZURE_FEDERATED_TOKEN_FILE") => Self::WorkloadIdentity,
            Self::Auto if set("AZURE_CLIENT_SECRET") => Self::ClientSecret,
            Self::Auto if set("IDENTITY_ENDPOINT") || on_azure_vm => Self::ManagedIdentity,
            Self::Auto => Self::AzureCli,
            other => other,
        }
    }
}

/// Whether this machine is an Azure VM: Linux exposes the SMBIOS chassis asset tag that Azure
/// sets on every VM (`7783-7084-3265-9085`). No network probe, so it is instant off Azure.
#[must_use]
pub fn running_on_azure_vm() -> bool {
    std::fs::read_to_string("/sys/class/dmi/id/chassis_asset_tag")
        .is_ok_and(|tag| tag.trim() == "7783-7084-3265-9085")
}

/// Why a credential could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The configured choice is not one we know.
    #[error(
        "unknown credential {given:?}: use auto, managed-identity, workload-identity, client-secret or azure-cli"
    )]
    UnknownChoice {
        /// What was given.
        given: String,
    },
    /// A variable the chosen credential needs is missing.
    #[error(
        "the {choice:?} credential needs the environment variable {variable}; set it or choose another credential"
    )]
    MissingVariable {
        /// The resolved choice.
        choice: CredentialChoice,
        /// The variable.
        variable: &'static str,
    },
    /// `azure_identity` refused to build the credential.
    #[error("cannot build the {choice:?} credential: {detail}")]
    Build {
        /// The resolved choice.
        choice: CredentialChoice,
        /// What azure_identity said.
        detail: String,
    },
}

/// An `azure_identity` credential as a [`TokenProvider`]. The credentials cache tokens
/// internally (and refresh them before expiry).
pub struct EntraCredential {
    inner: Arc<dyn TokenCredential>,
    choice: CredentialChoice,
}

impl fmt::Debug for EntraCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraCredential")
            .field("choice", &self.choice)
            .finish_non_exhaustive()
    }
}

impl EntraCredential {
    /// Builds the credential `choice` resolves to in this process's environment.
    ///
    /// # Errors
    /// [`CredentialError`] when a needed variable is missing or azure_identity refuses.
    pub fn from_environment(choice: CredentialChoice) -> Result<Self, CredentialError> {
        let env = |name: &str| std::env::var(name).ok();
        Self::build(choice.resolve(&env, running_on_azure_vm()), &env)
    }

    /// Wraps any `azure_identity` / `azure_core` credential (`choice` is only shown in logs).
    #[must_use]
    pub fn from_credential(inner: Arc<dyn TokenCredential>, choice: CredentialChoice) -> Self {
        Self { inner, choice }
    }

    /// The concrete credential in use.
    #[must_use]
    pub fn choice(&self) -> CredentialChoice {
        self.choice
    }

    fn build(
        choice: CredentialChoice,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialError> {
        let need = |variable: &'static str| {
            env(variable)
                .filter(|v| !v.trim().is_empty())
                .ok_or(CredentialError::MissingVariable { choice, variable })
        };
        let built = |e: azure_core::Error| CredentialError::Build {
            choice,
            detail: e.to_string(),
        };
        let inner: Arc<dyn TokenCredential> = match choice {
            CredentialChoice::ManagedIdentity => {
                let user_assigned_id = MANAGED_IDENTITY_CLIENT_ID_VARS
                    .iter()
                    .find_map(|v| env(v).filter(|v| !v.trim().is_empty()))
                    .map(UserAssignedId::ClientId);
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id,
                    ..ManagedIdentityCredentialOptions::default()
                }))
                .map_err(built)?
            }
            CredentialChoice::WorkloadIdentity => {
                // azure_identity reads these itself; checking first gives a clearer error.
                need("AZURE_TENANT_ID")?;
                need("AZURE_CLIENT_ID")?;
                need("AZURE_FEDERATED_TOKEN_FILE")?;
                WorkloadIdentityCredential::new(None).map_err(built)?
            }
            CredentialChoice::ClientSecret => ClientSecretCredential::new(
                &need("AZURE_TENANT_ID")?,
                need("AZURE_CLIENT_ID")?,
                Secret::new(need("AZURE_CLIENT_SECRET")?),
                None,
            )
            .map_err(built)?,
            CredentialChoice::AzureCli | CredentialChoice::Auto => {
                AzureCliCredential::new(None).map_err(built)?
            }
        };
        let choice = match choice {
            CredentialChoice::Auto => CredentialChoice::AzureCli,
            other => other,
        };
        Ok(Self { inner, choice })
    }
}

impl TokenProvider for EntraCredential {
    fn token<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let token = self
                .inner
                .get_token(&[scope], None)
                .await
                .map_err(|e| classify_identity_error(&e, self.choice))?;
            Ok(token.token.secret().to_string())
        })
    }

    fn kind(&self) -> &'static str {
        match self.choice {
            CredentialChoice::Auto | CredentialChoice::AzureCli => "Azure CLI",
            CredentialChoice::ManagedIdentity => "managed identity",
            CredentialChoice::WorkloadIdentity => "workload identity",
            CredentialChoice::ClientSecret => "client secret",
        }
    }
}

/// Connection trouble and 5xx/429 from the token endpoint are worth retrying; a refused
/// credential is not.
fn classify_identity_error(e: &azure_core::Error, choice: CredentialChoice) -> TokenError {
    use azure_core::error::ErrorKind;
    let detail = format!("{choice:?} credential: {e}");
    match e.kind() {
        ErrorKind::Connection | ErrorKind::Io => TokenError::Unavailable { detail },
        ErrorKind::HttpResponse { status, .. }
            if u16::from(*status) == 429 || u16::from(*status) >= 500 =>
        {
            TokenError::Unavailable { detail }
        }
        _ => TokenError::Refused { detail },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn auto_resolves_in_the_documented_order() {
        let all = env_of(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("IDENTITY_ENDPOINT", "http://x"),
        ]);
        let auto = CredentialChoice::Auto;
        assert_eq!(auto.resolve(&all, true), CredentialChoice::WorkloadIdentity);
        let secret = env_of(&[("AZURE_CLIENT_SECRET", "s"), ("IDENTITY_ENDPOINT", "x")]);
        assert_eq!(auto.resolve(&secret, true), CredentialChoice::ClientSecret);
        let app_service = env_of(&[("IDENTITY_ENDPOINT", "http://x")]);
        assert_eq!(
            auto.resolve(&app_service, false),
            CredentialChoice::ManagedIdentity
        );
        let none = env_of(&[("AZURE_CLIENT_SECRET", "  ")]);
        assert_eq!(auto.resolve(&none, true), CredentialChoice::ManagedIdentity);
        assert_eq!(auto.resolve(&none, false), CredentialChoice::AzureCli);
        // An explicit choice is never overridden by the environment.
        assert_eq!(
            CredentialChoice::AzureCli.resolve(&all, true),
            CredentialChoice::AzureCli
        );
    }

    #[test]
    fn choices_parse_and_unknown_names_list_the_valid_ones() {
        assert_eq!(
            CredentialChoice::parse("Managed_Identity").unwrap(),
            CredentialChoice::ManagedIdentity
        );
        assert_eq!(
            CredentialChoice::parse("client-secret").unwrap(),
            CredentialChoice::ClientSecret
        );
        let err = CredentialChoice::parse("default").unwrap_err().to_string();
        assert!(err.contains("azure-cli"), "{err}");
    }

    #[test]
    fn missing_variables_are_named_and_secrets_are_not_shown() {
        let env = env_of(&[("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000")]);
        let err = EntraCredential::build(CredentialChoice::ClientSecret, &env).unwrap_err();
        assert!(err.to_string().contains("AZURE_CLIENT_ID"), "{err}");
        let env = env_of(&[
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000"),
            ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
            ("AZURE_CLIENT_SECRET", "very-secret-value"),
        ]);
        let cred = EntraCredential::build(CredentialChoice::ClientSecret, &env).unwrap();
        assert_eq!(cred.kind(), "client secret");
        assert!(!format!("{cred:?}").contains("very-secret-value"));
    }

    #[tokio::test]
    async fn static_token_is_redacted_and_scoped_sources_forward() {
        let provider = Arc::new(StaticToken::new("sekrit-token"));
        assert!(!format!("{provider:?}").contains("sekrit"));
        let source = ScopedTokenSource::new(provider, "https://storage.azure.com/.default");
        assert_eq!(TokenSource::token(&source).await.unwrap(), "sekrit-token");
        assert!(!format!("{source:?}").contains("sekrit"));
    }

    #[tokio::test]
    async fn an_imds_source_refuses_other_scopes_without_asking_imds() {
        use crate::storage::ImdsTokenOptions;
        // Port 9 (discard) on loopback: a request there would fail as Unavailable, not Refused.
        let imds = ImdsManagedIdentity::new(
            &ImdsTokenOptions {
                base_url: "http://127.0.0.1:9".to_string(),
                ..ImdsTokenOptions::default()
            },
            Arc::new(spotkit_cloud::SystemClock),
        )
        .unwrap();
        match TokenProvider::token(&imds, ARM_SCOPE).await {
            Err(TokenError::Refused { detail }) => {
                assert!(detail.contains("https://management.azure.com/"), "{detail}");
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        assert!(matches!(
            TokenProvider::token(&imds, "https://storage.azure.com/.default").await,
            Err(TokenError::Unavailable { .. })
        ));
    }

    #[test]
    fn scopes_map_to_imds_resources() {
        assert_eq!(
            resource_of_scope("https://management.azure.com/.default"),
            "https://management.azure.com/"
        );
        assert_eq!(
            resource_of_scope("https://storage.azure.com/"),
            "https://storage.azure.com/"
        );
        assert_eq!(
            resource_of_scope("https://storage.azure.com"),
            "https://storage.azure.com/"
        );
    }
}
