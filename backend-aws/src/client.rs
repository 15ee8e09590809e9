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
//! The instance metadata service (IMDS) is asked only by the links of the
//! chains that come after the configured ones: with a region and
//! credentials set (config, environment or profile), it is never reached.
//! When it is reached, it is asked with short timeouts and few attempts, and
//! the whole load is bounded by the deadline anyway.
//!
//! One HTTP client ([`crate::http::client`]: reqwest on rustls with ring,
//! proxies from the environment, the CA store read only for TLS, the HTTP
//! stack backend-vault uses too) serves every request of
//! the call: it is given to the IMDS client, to the credentials chain (STS
//! for web identity, SSO, container credentials) and to the `SdkConfig` the
//! service clients and the assumed role are built from. The SDK has no
//! default client in this build (no `default-https-client`), so a place
//! that missed it would fail loudly, never fall back to another stack.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_ssm::Client as SsmClient;
use backend_core::{Context, ErrorKind, HandleError};

use crate::config::AwsConfig;

/// The session name of an assumed role when the config names none.
pub const DEFAULT_SESSION_NAME: &str = "secret-backend-aws";
/// IMDS connect timeout: the service answers in milliseconds on an instance,
/// and off an instance the address usually blackholes.
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const IMDS_READ_TIMEOUT: Duration = Duration::from_millis(1000);
const IMDS_ATTEMPTS: u32 = 1;

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
    let http = crate::http::client();
    let providers = ProviderConfig::without_region().with_http_client(http.clone());
    let imds = imds::Client::builder()
        .configure(&providers)
        .connect_timeout(IMDS_CONNECT_TIMEOUT)
        .read_timeout(IMDS_READ_TIMEOUT)
        .max_attempts(IMDS_ATTEMPTS)
        .build();
    let region = region_chain(config, imds.clone())
        .region()
        .await
        .ok_or_else(|| {
            HandleError::other(
                "no AWS region configured (set 'region' in the config, --region, AWS_REGION, \
                 or a region in the profile)",
            )
        })?;
    let source = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
            id,
            secret,
            config.session_token.clone(),
            None,
            "config",
        )),
        _ => {
            let mut chain = DefaultCredentialsChain::builder()
                .configure(providers)
                .region(region.clone())
                .imds_client(imds);
            if let Some(profile) = &config.profile {
                chain = chain.profile_name(profile);
            }
            SharedCredentialsProvider::new(chain.build().await)
        }
    };
    let region_name = region.to_string();
    // The SDK's standard retry (3 attempts) with short backoffs: its default
    // jitter (up to 1 s, then 2 s) can outlast a 3-5 s call deadline before
    // the last attempt says why it failed.
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(100))
        .with_max_backoff(std::time::Duration::from_millis(500));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region)
        .credentials_provider(source)
        .retry_config(retry);
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let provider = match &config.role_arn {
        Some(arn) => {
            let mut role = AssumeRoleProvider::builder(arn).session_name(
                config
                    .session_name
                    .as_deref()
                    .unwrap_or(DEFAULT_SESSION_NAME),
            );
            if let Some(id) = &config.external_id {
                role = role.external_id(id);
            }
            SharedCredentialsProvider::new(role.configure(&base).build().await)
        }
        None => base
            .credentials_provider()
            .ok_or_else(|| HandleError::other("internal error: no credentials provider"))?,
    };
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| credentials_error(&e, config))?;
    let sdk = base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Ok(Clients::new(sdk, region_name))
}

/// Config, then environment, then profile, then IMDS (with our client).
fn region_chain(config: &AwsConfig, imds: imds::Client) -> RegionProviderChain {
    let mut profile = ProfileFileRegionProvider::builder();
    if let Some(name) = &config.profile {
        profile = profile.profile_name(name);
    }
    let chain = match &config.region {
        Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
        None => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new()),
    };
    chain.or_else(profile.build()).or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .imds_client(imds)
            .build(),
    )
}

fn credentials_error(e: &CredentialsError, config: &AwsConfig) -> HandleError {
    let role = config
        .role_arn
        .as_deref()
        .map(|arn| format!(" to assume {arn}"))
        .unwrap_or_default();
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
            crate::errors::chain(e)
        )),
        // A source that was tried and failed (an instance metadata service
        // refusing, an STS error): still no credentials, and why.
        _ => HandleError::permission_denied(format!(
            "no AWS credentials found{role} (tried: {}); the last source failed: {}",
            tried(config),
            crate::errors::chain(e)
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
