//! The AWS region and credentials of one call: the SDK's chains, loaded
//! the way `secret-backend-aws` loads them, for this backend's clients
//! ([`crate::client::load`]) and for other crates that sign with AWS
//! credentials (the `aws` auth method of `secret-backend-vault`), through
//! [`load`].
//!
//! The SDK's own loader (`aws-config`) builds the region and credentials
//! chains: environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), the profile (`AWS_PROFILE`, else `default`) of the
//! shared config and credentials files, web identity (EKS IRSA:
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`), ECS container
//! credentials, and the instance metadata service (IMDSv2); static keys or
//! an assumed role when the config names them. Two changes to it: it
//! reads no file (every file it could read is read first by
//! [`crate::files`], regular files only and bounded, and handed over as
//! contents), and every identity the chain hands out is held
//! (`Holding`), so no reply can carry the keys a backend runs with.
//!
//! The credentials are resolved here, once, before any request, so that a
//! host without credentials gets one clear error (`no AWS credentials
//! found`, with what was tried) instead of each request failing on its
//! own. The instance metadata service (IMDS) is asked only by the links of
//! the chains that come after the configured ones: with a region and
//! credentials set (config, environment or profile), it is never
//! reached. When it is reached, it gets the SDK's 1 s connect and read
//! timeouts (a timeout is not retried), and the whole load is bounded by
//! the call's deadline. Errors are described by [`crate::errors::chain`]:
//! never a response body, a token or a key.
//!
//! One HTTP client ([`crate::http::client`]: reqwest on rustls with ring,
//! proxies from the environment, the CA store read only for TLS) serves
//! every request the chains make (the IMDS client, STS for web identity and
//! assumed roles, container credentials) and the service clients built
//! from the returned `SdkConfig`. The SDK has no default client in this
//! build (no `default-https-client`), so a place that missed it would fail
//! loudly, never fall back to another stack.

use std::error::Error;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
#[allow(deprecated)] // aws-config's aliases of aws-runtime's types
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_types::region::Region;
use backend_core::{Context, ErrorKind, HandleError, Secret};

use crate::config::AwsConfig;
use crate::files::SdkFiles;

/// The session name of an assumed role when the config names none.
pub const DEFAULT_SESSION_NAME: &str = "secret-backend-aws";

/// The environment variables the SDK's region and credentials chains read
/// (for tests that must run without the caller's AWS settings).
pub const VARS: [&str; 29] = [
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_SDK_UA_APP_ID",
    "AWS_ACCOUNT_ID",
];

/// The region (when one was found) and the credentials of one call, with
/// the `SdkConfig` they were found with (its credentials those found).
#[derive(Debug)]
pub(crate) struct Loaded {
    #[allow(dead_code)] // until the chain is ours (no SdkConfig)
    pub sdk: SdkConfig,
    pub credentials: Credentials,
    pub region: Option<String>,
}

/// Finds the AWS credentials, and the region when there is one, within the
/// call's deadline, as `secret-backend-aws` does: the same chain, the same
/// bounded, fast failure and the same messages. `config` is that backend's
/// own; only its `region`, `profile`, `role_arn`, `external_id`,
/// `session_name`, `endpoint_url` and static keys count (all optional:
/// `AwsConfig::default()` is the SDK's default chain). The secret key and
/// the session token are [held](backend_core::secret::hold).
pub async fn load(
    config: &AwsConfig,
    ctx: &Context,
) -> Result<(Credentials, Option<String>), HandleError> {
    let loaded = load_bounded(config, false, ctx).await?;
    Ok((loaded.credentials, loaded.region))
}

/// [`load`] with the `SdkConfig`; with `region_required`, a missing region
/// is an error before any credentials are looked for.
pub(crate) async fn load_bounded(
    config: &AwsConfig,
    region_required: bool,
    ctx: &Context,
) -> Result<Loaded, HandleError> {
    match ctx.within(load_unbounded(config, region_required)).await {
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

/// The error of a call that needs a region and found none.
pub(crate) fn no_region() -> HandleError {
    HandleError::other(
        "no AWS region configured (set 'region' in the config, --region, AWS_REGION, \
         or a region in the profile)",
    )
}

async fn load_unbounded(config: &AwsConfig, region_required: bool) -> Result<Loaded, HandleError> {
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
    let region = base.region().map(ToString::to_string);
    if region_required && region.is_none() {
        return Err(no_region());
    }
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
        .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
        .build();
    Ok(Loaded {
        sdk,
        credentials,
        region,
    })
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
            profile_cause(e).unwrap_or_else(cause)
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

/// How the SDK's profile provider words a profile it cannot use (a
/// `credential_process` or SSO profile, which are not compiled in, a loop
/// of `source_profile`s, ...): its `ProfileFileError` made text.
const PROFILE_NOT_BUILT: &str = "ProfileFile provider could not be built: ";

/// The SDK's reason for refusing the profile, when that is the error:
/// `ProfileFileError`'s text, which [`crate::errors::chain`] vouches for
/// (names from the operator's own profile files, and reasons), but which
/// the SDK hands over as a string, not as the error.
fn profile_cause(e: &CredentialsError) -> Option<String> {
    let text = e.source()?.to_string();
    let reason = text.strip_prefix(PROFILE_NOT_BUILT)?;
    Some(crate::errors::bounded_message(reason))
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
    fn a_profile_the_sdk_cannot_use_is_named_with_its_reason() {
        let config = AwsConfig::default();
        let e = CredentialsError::invalid_configuration(format!(
            "{PROFILE_NOT_BUILT}This behavior requires following cargo feature(s) enabled: \
             credentials-process. "
        ));
        let shown = credentials_error(&e, &config);
        assert_eq!(
            shown.message(),
            "invalid AWS credentials configuration: This behavior requires following cargo \
             feature(s) enabled: credentials-process."
        );
        // Any other text is not the SDK's profile error: not shown.
        let e = CredentialsError::invalid_configuration("REMOTE-TEXT-MARKER");
        let shown = credentials_error(&e, &config);
        assert_eq!(
            shown.message(),
            "invalid AWS credentials configuration: no details"
        );
    }
}
