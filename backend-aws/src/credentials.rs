//! The AWS region and credentials of one call, found the way the AWS SDK's
//! loader (`aws-config`) finds them, by our own chain: for this backend's
//! clients ([`crate::client::load`]) and for other crates that sign with
//! AWS credentials (the `aws` auth method of `secret-backend-vault`),
//! through [`load`].
//!
//! # Why not `aws-config`
//!
//! Size. `aws-config` brings the SDK's STS client, its IMDS client, the
//! SSO and credential-process providers' scaffolding and the runtime they
//! share: about 1.4 MB of every stripped binary that links it, and
//! `secret-backend-vault` links it only to find credentials to sign one
//! request with (3.07 MB without it, 4.48 MB with it, over its 3.5 MB
//! target). What it does for us is small and well specified, so it is
//! written here, in the SDK's order and with its rules, over the HTTP
//! client every networked backend already links ([`backend_net::Http`])
//! and the SDK's own signer crate (`aws-sigv4`, already linked for the
//! vault login).
//!
//! # What is found, in order
//!
//! Static keys in the config (`access_key_id`, `secret_access_key`,
//! `session_token`) replace the whole chain. Else the default chain
//! ([`crate::chain`]), the first link that is configured deciding:
//!
//! 1. **environment**: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN`;
//! 2. **profile** (`profile` of the config, else `AWS_PROFILE`, else
//!    `default`) of the shared config and credentials files, merged as the
//!    SDK merges them ([`crate::profile`]): static keys, `role_arn` with
//!    `source_profile` (followed profile to profile, a loop refused by
//!    name) or with `credential_source` (`Environment`,
//!    `Ec2InstanceMetadata`, `EcsContainer`), or `role_arn` with
//!    `web_identity_token_file`;
//! 3. **web identity** (EKS IRSA): `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` (`AWS_ROLE_SESSION_NAME`), exchanged with
//!    `AssumeRoleWithWebIdentity` ([`crate::sts`]);
//! 4. **ECS container credentials**: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//!    (at `169.254.170.2`) or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https,
//!    or http to the hosts the SDK allows), with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (else `_TOKEN`);
//! 5. **instance metadata** (IMDSv2: a session token, the role, its
//!    credentials; `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `_MODE=IPv6`, off
//!    with `AWS_EC2_METADATA_DISABLED=true`).
//!
//! A `role_arn` in the config is then assumed with STS `AssumeRole`
//! (`external_id`, `session_name`, default [`DEFAULT_SESSION_NAME`]),
//! signed with what the chain found. The region: the config's `region`,
//! `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` (through its
//! `source_profile`s), and only then the instance metadata service
//! (`placement/region`).
//!
//! Not supported, and said so by name when a profile asks for them
//! (`invalid AWS credentials configuration: ...`): AWS IAM Identity Center
//! (SSO) profiles, `credential_process` (no program is ever run), console
//! `login_session`s. Profile `[services ...]` sections are not read; FIPS
//! and dual-stack endpoints are the SDK clients' own business (they get
//! `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`), never STS's
//! here. No credentials are cached or refreshed across calls: each call
//! finds them anew, once, before any request.
//!
//! # Bounded, fast, quiet
//!
//! The credentials are resolved here, once, before any request, so that a
//! host without credentials gets one clear error (`no AWS credentials
//! found`, with what was tried) instead of each request failing on its
//! own. The instance metadata service is asked only when the chains reach
//! it: with a region and credentials set (config, environment or
//! profile), it is never asked. It gets 1 s to connect and 2 s per
//! request, is never proxied and is retried only on 5xx and 401 (a
//! timeout is not retried: no instance here, the next link); the
//! container endpoint gets 2 s to connect and 7 s per request, STS three
//! attempts; the whole load is bounded by the call's deadline.
//!
//! Every file is read first, bounded and refusing special files, by
//! [`crate::files`]; every credential met (keys, session tokens, the web
//! identity and container tokens, the IMDS session token) is
//! [held](backend_core::secret::hold), so no reply can carry it. Answers
//! are never quoted: messages carry HTTP statuses, known AWS error codes
//! and our own words.

use aws_credential_types::Credentials;
use backend_core::{Context, ErrorKind, HandleError, Secret};

use crate::chain::{Env, Imds, Miss, Sources};
use crate::config::AwsConfig;
use crate::files::SdkFiles;
use crate::profile::Profiles;

/// The session name of an assumed role when the config names none.
pub const DEFAULT_SESSION_NAME: &str = "secret-backend-aws";

/// The environment variables the region and credentials chains read (for
/// tests that must run without the caller's AWS settings); some only for
/// the SDK clients built from what is found.
pub const VARS: [&str; 32] = [
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "SECRET_ACCESS_KEY",
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
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_SSM",
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

/// The region (when one was found) and the credentials of one call.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub credentials: Credentials,
    pub region: Option<String>,
    /// The selected profile's `endpoint_url` (none when
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`).
    pub endpoint_url: Option<String>,
    /// The selected profile's FIPS and dual-stack settings, by the variable
    /// they stand for ([`crate::api::PROFILE_KEYS`]).
    pub profile_settings: Vec<(&'static str, String)>,
    /// The variables of [`VARS`], as read once for this load: the service
    /// endpoints are picked from the same reading as the chain's.
    pub env: Env,
}

/// Finds the AWS credentials, and the region when there is one, within the
/// call's deadline, as `secret-backend-aws` does: the same chain, the same
/// bounded, fast failure and the same messages. `config` is that backend's
/// own; only its `region`, `profile`, `role_arn`, `external_id`,
/// `session_name`, `endpoint_url` and static keys count (all optional:
/// `AwsConfig::default()` is the default chain). The secret key and the
/// session token are [held](backend_core::secret::hold).
pub async fn load(
    config: &AwsConfig,
    ctx: &Context,
) -> Result<(Credentials, Option<String>), HandleError> {
    let loaded = load_bounded(config, false, ctx).await?;
    Ok((loaded.credentials, loaded.region))
}

/// [`load`] with the profile's endpoint; with `region_required`, a missing region
/// is an error before any credentials are looked for.
pub(crate) async fn load_bounded(
    config: &AwsConfig,
    region_required: bool,
    ctx: &Context,
) -> Result<Loaded, HandleError> {
    match ctx
        .within(load_unbounded(config, region_required, ctx))
        .await
    {
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

/// The profile the chain reads: the config's, else `AWS_PROFILE`, else
/// `default`.
fn selected_profile(config: &AwsConfig, env: &Env) -> String {
    config
        .profile
        .clone()
        // A blank one (`AWS_PROFILE=` in an environment file) is unset: a
        // profile named and not there ends the chain.
        .or_else(|| env.value("AWS_PROFILE").map(str::to_owned))
        .unwrap_or_else(|| "default".into())
}

async fn load_unbounded(
    config: &AwsConfig,
    region_required: bool,
    ctx: &Context,
) -> Result<Loaded, HandleError> {
    // Every file the chain could read, read first (see `files`): a FIFO, a
    // device or a group-writable file fails here, by name.
    let files = SdkFiles::read()?;
    let env = Env::read(&VARS);
    let profiles = Profiles::read(&files.config, &files.credentials);
    let profile = selected_profile(config, &env);
    let imds = Imds::new(&env, profiles.as_ref().ok().and_then(|p| p.get(&profile)));
    let region = match configured_region(config, &env, &profiles, &profile) {
        Some(region) => Some(region),
        None => imds.region(ctx).await,
    };
    if let Some(r) = &region
        && !crate::chain::valid_region(r)
    {
        // Not quoted: no config error repeats a value (a key pasted into
        // the wrong field would be shown).
        return Err(HandleError::other(
            "invalid AWS region (from the config, AWS_REGION, AWS_DEFAULT_REGION or the \
             profile): a region is one DNS label, like eu-west-1",
        ));
    }
    if region_required && region.is_none() {
        return Err(no_region());
    }
    let sources = Sources {
        env: &env,
        files: &files,
        profiles: &profiles,
        profile: &profile,
        endpoint_url: config.endpoint_url.as_deref(),
        region: region.as_deref(),
        imds: &imds,
    };
    let base = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => Credentials::new(
            id,
            secret.expose(),
            config.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "config",
        ),
        _ => sources
            .default_chain(ctx)
            .await
            .map_err(|m| credentials_error(&m, config))?,
    };
    hold(&base);
    let credentials = match &config.role_arn {
        Some(arn) => {
            let sts = sources.sts().map_err(|m| credentials_error(&m, config))?;
            let session = config
                .session_name
                .as_deref()
                .unwrap_or(DEFAULT_SESSION_NAME);
            let external_id = config.external_id.as_ref().map(|e| e.expose());
            sts.assume_role(&base, arn, session, external_id, ctx)
                .await
                .map_err(|why| credentials_error(&Miss::Failed(why), config))?
        }
        None => base,
    };
    hold(&credentials);
    let endpoint_url = sources.profile_endpoint().map(str::to_owned);
    let profile_settings = sources.profile_settings();
    Ok(Loaded {
        credentials,
        region,
        endpoint_url,
        profile_settings,
        env,
    })
}

/// The region chain up to the instance metadata service: the config's,
/// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's.
fn configured_region(
    config: &AwsConfig,
    env: &Env,
    profiles: &Result<Profiles, crate::profile::ParseError>,
    profile: &str,
) -> Option<String> {
    config
        .region
        .clone()
        .or_else(|| env.value("AWS_REGION").map(str::to_owned))
        .or_else(|| env.value("AWS_DEFAULT_REGION").map(str::to_owned))
        .or_else(|| profiles.as_ref().ok()?.region(profile))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

/// Holds the secret parts of `credentials` (the key id is not secret).
pub fn hold(credentials: &Credentials) {
    backend_core::secret::hold(&Secret::from(credentials.secret_access_key()));
    if let Some(token) = credentials.session_token() {
        backend_core::secret::hold(&Secret::from(token));
    }
}

/// The error of a chain that found nothing, failed, or was configured
/// wrongly.
fn credentials_error(miss: &Miss, config: &AwsConfig) -> HandleError {
    let role = config
        .role_arn
        .as_deref()
        .map(|arn| format!(" to assume {arn}"))
        .unwrap_or_default();
    match miss {
        Miss::NotLoaded => HandleError::permission_denied(format!(
            "no AWS credentials found{role} (tried: {})",
            tried(config)
        )),
        Miss::Invalid(reason) => HandleError::other(format!(
            "invalid AWS credentials configuration{role}: {}",
            crate::errors::bounded_message(reason)
        )),
        // A source that was tried and failed (an instance metadata service
        // refusing, an STS error): still no credentials, and why.
        Miss::Failed(cause) => HandleError::permission_denied(format!(
            "no AWS credentials found{role} (tried: {}); the last source failed: {}",
            tried(config),
            crate::errors::bounded_message(cause)
        )),
    }
}

/// What the default chain tries, for messages.
pub fn tried(config: &AwsConfig) -> String {
    let profile = config
        .profile
        .clone()
        .or_else(|| {
            std::env::var("AWS_PROFILE")
                .ok()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
        })
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
    fn messages_say_what_was_tried_and_why_it_ended() {
        let config = AwsConfig {
            profile: Some("ops".into()),
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            ..AwsConfig::default()
        };
        let e = credentials_error(&Miss::NotLoaded, &config);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(
            e.message()
                .starts_with("no AWS credentials found to assume arn:aws:iam::1:role/r (tried: "),
            "{e}"
        );
        assert!(e.message().contains("profile 'ops'"), "{e}");
        let e = credentials_error(
            &Miss::Failed("STS AssumeRole: access denied".into()),
            &config,
        );
        assert!(
            e.message()
                .ends_with("; the last source failed: STS AssumeRole: access denied"),
            "{e}"
        );
        let e = credentials_error(
            &Miss::Invalid("profile 'sso': it uses AWS IAM Identity Center (SSO)".into()),
            &AwsConfig::default(),
        );
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(
            e.message(),
            "invalid AWS credentials configuration: profile 'sso': it uses AWS IAM Identity \
             Center (SSO)"
        );
    }

    #[test]
    fn regions_in_the_sdks_order() {
        let profiles = Profiles::read(
            "[profile p]\nregion = from-profile\n[profile q]\nsource_profile = p\n",
            "",
        );
        let env = Env::from_pairs(&[("AWS_DEFAULT_REGION", "from-default")]);
        let config = AwsConfig::default();
        assert_eq!(
            configured_region(&config, &env, &profiles, "q").as_deref(),
            Some("from-default")
        );
        let env = Env::from_pairs(&[
            ("AWS_REGION", " from-region "),
            ("AWS_DEFAULT_REGION", "from-default"),
        ]);
        assert_eq!(
            configured_region(&config, &env, &profiles, "q").as_deref(),
            Some("from-region")
        );
        let config = AwsConfig {
            region: Some("from-config".into()),
            ..AwsConfig::default()
        };
        assert_eq!(
            configured_region(&config, &env, &profiles, "q").as_deref(),
            Some("from-config")
        );
        let empty = Env::from_pairs(&[("AWS_REGION", "")]);
        assert_eq!(
            configured_region(&AwsConfig::default(), &empty, &profiles, "q").as_deref(),
            Some("from-profile")
        );
        assert_eq!(
            configured_region(&AwsConfig::default(), &empty, &profiles, "none"),
            None
        );
    }
}
