//! Region, credentials and the two service clients, loaded once per call.
//!
//! Loading happens in `resolve`, under the call's deadline, never in
//! `new`: building a provider must not touch the network. The credentials
//! are resolved here, once, before any request, so that a host without
//! credentials gets one clear error per handle (`no AWS credentials found`,
//! with what was tried) instead of each request failing on its own; the
//! resolved credentials are then handed to both clients as static ones, so
//! the chain (and any instance-metadata probing) runs once per call.
//!
//! The SDK's own loader builds the region and credentials chains, with two
//! changes: it reads no file (every file it could read is read first by
//! [`crate::files`], regular files only and bounded, and handed over as
//! contents), and every identity the chain hands out is held
//! ([`Holding`]), so no reply can carry the backend's own keys.
//!
//! The instance metadata service (IMDS) is asked only by the links of the
//! chains that come after the configured ones: with a region and
//! credentials set (config, environment or profile), it is never reached.
//! When it is reached, it gets the SDK's 1 s connect and read timeouts (a
//! timeout is not retried), and the whole load is bounded by the deadline.
//!
//! One HTTP client ([`crate::http::client`]: reqwest on rustls with ring,
//! proxies from the environment, the CA store read only for TLS, the HTTP
//! stack backend-vault uses too) serves every request of
//! the call: it is given to the loader, hence to the IMDS client and the
//! credentials chain (STS for web identity, container credentials) and to the `SdkConfig` the
//! service clients and the assumed role are built from. The SDK has no
//! default client in this build (no `default-https-client`), so a place
//! that missed it would fail loudly, never fall back to another stack.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
#[allow(deprecated)] // aws-config's aliases of aws-runtime's types
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_ssm::Client as SsmClient;
use backend_core::{Context, ErrorKind, HandleError, Secret};

use crate::config::AwsConfig;
use crate::files::SdkFiles;

/// The session name of an assumed role when the config names none.
pub const DEFAULT_SESSION_NAME: &str = "secret-backend-aws";
/// The service clients of one call: those of the configured region, and
/// more made on demand for ARNs that name another region (a secret
/// replicated elsewhere, a parameter shared from another region).
#[derive(Debug)]
pub struct Clients {
    sdk: SdkConfig,
    region: String,
    /// Per region: Secrets Manager and SSM clients, sharing the credentials.
    by_region: Mutex<HashMap<String, (SecretsClient, SsmClient)>>,
}

impl Clients {
    fn new(sdk: SdkConfig, region: String) -> Self {
        let clients = (SecretsClient::new(&sdk), SsmClient::new(&sdk));
        Self {
            by_region: Mutex::new(HashMap::from([(region.clone(), clients)])),
            sdk,
            region,
        }
    }

    /// The Secrets Manager client for the region `id` names (when it is an
    /// ARN), else for the configured region.
    pub fn secrets_for(&self, id: &str) -> SecretsClient {
        self.for_region(arn_region(id)).0
    }

    /// The SSM client for the region `name` names (when it is an ARN).
    pub fn ssm_for(&self, name: &str) -> SsmClient {
        self.for_region(arn_region(name)).1
    }

    /// The region a request for `id` goes to: the one its ARN names, else
    /// the configured one.
    pub fn region_of<'a>(&'a self, id: &'a str) -> &'a str {
        arn_region(id).unwrap_or(&self.region)
    }

    fn for_region(&self, region: Option<&str>) -> (SecretsClient, SsmClient) {
        let region = region.unwrap_or(&self.region);
        // A poisoned lock only means another fetch panicked; the map is fine.
        let mut map = self
            .by_region
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(region.to_owned())
            .or_insert_with(|| {
                let sdk = self
                    .sdk
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                (SecretsClient::new(&sdk), SsmClient::new(&sdk))
            })
            .clone()
    }
}

/// The region field of an ARN (`arn:<partition>:<service>:<region>:...`).
pub fn arn_region(id: &str) -> Option<&str> {
    let mut fields = id.split(':');
    (fields.next() == Some("arn"))
        .then(|| fields.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
}

/// Loads region and credentials and builds the clients, within the deadline.
/// The error is the same for every handle; the caller prefixes the location.
pub async fn load(config: &AwsConfig, ctx: &Context) -> Result<Clients, HandleError> {
    match ctx.within(load_unbounded(config)).await {
        Ok(result) => result,
        Err(_) => Err(HandleError::new(
            ErrorKind::TimedOut,
            format!(
                "timed out after {} looking for AWS region and credentials (tried: {})",
                backend_core::error::human_duration(ctx.budget()),
                tried(config)
            ),
        )),
    }
}

async fn load_unbounded(config: &AwsConfig) -> Result<Clients, HandleError> {
    // Every file the SDK could read, read by us first (see `files`): a
    // FIFO, a device or a group-writable file fails here, by name.
    let files = SdkFiles::read()?;
    #[allow(deprecated)] // aws-config's alias of aws-runtime's EnvConfigFiles
    let profile_files = ProfileFiles::builder()
        .with_contents(ProfileFileKind::Config, files.config.clone())
        .with_contents(ProfileFileKind::Credentials, files.credentials.clone())
        .build();
    // The SDK's standard retry (3 attempts) with short backoffs: its default
    // jitter (up to 1 s, then 2 s) can outlast a 3-5 s call deadline before
    // the last attempt says why it failed.
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(500));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::http::client())
        .fs(files.fs())
        .profile_files(profile_files)
        .retry_config(retry);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret.expose(),
            config.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "config",
        ));
    }
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let region = base.region().map(ToString::to_string).ok_or_else(|| {
        HandleError::other(
            "no AWS region configured (set 'region' in the config, --region, AWS_REGION, \
             or a region in the profile)",
        )
    })?;
    let source = Holding::shared(
        base.credentials_provider()
            .ok_or_else(|| HandleError::other("internal error: no credentials provider"))?,
    );
    let base = base
        .into_builder()
        .credentials_provider(source.clone())
        .build();
    let provider = match &config.role_arn {
        Some(arn) => {
            let mut role = AssumeRoleProvider::builder(arn).session_name(
                config
                    .session_name
                    .as_deref()
                    .unwrap_or(DEFAULT_SESSION_NAME),
            );
            if let Some(id) = &config.external_id {
                role = role.external_id(id.expose());
            }
            Holding::shared(SharedCredentialsProvider::new(
                role.configure(&base).build().await,
            ))
        }
        None => source,
    };
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| credentials_error(&e, config))?;
    let sdk = base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Ok(Clients::new(sdk, region))
}

/// A credentials provider that [holds](backend_core::secret::hold) every
/// identity it hands out (the secret key and the session token), so that
/// no reply can carry the credentials the backend runs with, wherever the
/// chain found them (environment, profile, web identity, container,
/// instance metadata, an assumed role).
#[derive(Debug)]
struct Holding(SharedCredentialsProvider);

impl Holding {
    fn shared(inner: SharedCredentialsProvider) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Self(inner))
    }
}

impl ProvideCredentials for Holding {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let credentials = self.0.provide_credentials().await?;
            hold(&credentials);
            Ok(credentials)
        })
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        let credentials = self.0.fallback_on_interrupt()?;
        hold(&credentials);
        Some(credentials)
    }
}

/// Holds the secret parts of `credentials` (the key id is not secret).
pub fn hold(credentials: &Credentials) {
    backend_core::secret::hold(&Secret::from(credentials.secret_access_key()));
    if let Some(token) = credentials.session_token() {
        backend_core::secret::hold(&Secret::from(token));
    }
}

fn credentials_error(e: &CredentialsError, config: &AwsConfig) -> HandleError {
    let role = config
        .role_arn
        .as_deref()
        .map(|arn| format!(" to assume {arn}"))
        .unwrap_or_default();
    let cause = || {
        e.source()
            .map_or_else(|| "no details".into(), crate::errors::chain)
    };
    match e {
        CredentialsError::CredentialsNotLoaded(_) => HandleError::permission_denied(format!(
            "no AWS credentials found{role} (tried: {})",
            tried(config)
        )),
        CredentialsError::ProviderTimedOut(_) => HandleError::unavailable(format!(
            "timed out loading AWS credentials{role} (tried: {})",
            tried(config)
        )),
        CredentialsError::InvalidConfiguration(_) => HandleError::other(format!(
            "invalid AWS credentials configuration{role}: {}",
            cause()
        )),
        // A source that was tried and failed (an instance metadata service
        // refusing, an STS error): still no credentials, and why.
        _ => HandleError::permission_denied(format!(
            "no AWS credentials found{role} (tried: {}); the last source failed: {}",
            tried(config),
            cause()
        )),
    }
}

/// What the default chain tries, for messages.
pub fn tried(config: &AwsConfig) -> String {
    let profile = config
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".into());
    let imds = if imds_disabled() {
        "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"
    } else {
        "instance metadata"
    };
    format!(
        "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile '{profile}' in the shared \
         config and credentials files, web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), \
         ECS container credentials, {imds}"
    )
}

fn imds_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_arns() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws:ssm:us-west-2:1:parameter/a/b"),
            Some("us-west-2")
        );
        assert_eq!(arn_region("prod/db"), None);
        assert_eq!(arn_region("arn:aws:iam::1:role/r"), None);
        assert_eq!(arn_region("arn:"), None);
    }
}
