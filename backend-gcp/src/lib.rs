//! backend-gcp: secrets from GCP Secret Manager.
//!
//! A handle is the Datadog connector's `<secret>[;<key>[;<version>]]` or a
//! full resource name `projects/<p>/secrets/<s>[/versions/<v>]`
//! ([`handle`]). One call goes:
//!
//! 1. parse every handle; invalid names are answered before anything is
//!    sent;
//! 2. get an access token from Google's application-default chain
//!    ([`credentials`], AWS federation in [`aws`]): fresh at every call
//!    unless the opt-in [`cache`] holds one; a failure there is every
//!    handle's error, naming the source tried;
//! 3. group the handles by secret version and access each distinct one
//!    once ([`api`]), at most `concurrency` at once, each bounded by the
//!    call's deadline; a payload's CRC32C is checked;
//! 4. give each handle the payload as text (non-UTF-8 payloads are an
//!    error: the agent takes text), or the field its key names in the
//!    payload's JSON.

pub mod api;
pub mod aws;
pub mod cache;
pub mod config;
pub mod credentials;
pub mod handle;
pub mod http;
pub mod jwt;

use backend_core::protocol::Request;
use backend_core::{
    ConfigError, Context, HandleError, NoArgs, Outcome, Provider, Secret, bounded, fan_out,
};

pub use config::{GcpConfig, Settings};

use crate::api::{Payload, VersionName};
use crate::credentials::Source;
use crate::handle::Handle;

/// The GCP Secret Manager provider.
#[derive(Debug)]
pub struct GcpProvider {
    settings: Settings,
}

fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

impl GcpProvider {
    /// Builds the provider from `config` and `$GOOGLE_CLOUD_PROJECT`.
    /// Reads no file.
    pub fn new(config: GcpConfig) -> Result<Self, ConfigError> {
        let settings = config.validate(&process_env)?;
        Ok(Self { settings })
    }

    /// The project of handles that name none: configured (or
    /// `$GOOGLE_CLOUD_PROJECT`), else the service account's, else the
    /// metadata server's (asked only when such a handle is there and the
    /// token came from it).
    async fn default_project(
        &self,
        parsed: &[Result<Handle<'_>, HandleError>],
        from_credentials: Option<&str>,
        ctx: &Context,
    ) -> Result<String, String> {
        if let Some(p) = self.settings.project.as_deref().or(from_credentials) {
            return Ok(p.to_owned());
        }
        let needed = parsed.iter().flatten().any(|h| h.project.is_none());
        let missing = "no project: set project_id (or gcp_session.project_id), or name the secret as projects/<project>/secrets/<secret>";
        if !needed {
            return Err(missing.into());
        }
        match credentials::source(self.settings.credentials_file.as_deref(), &process_env) {
            Source::Metadata { host, .. } => credentials::metadata_project(&host, ctx)
                .await
                .map_err(|e| format!("{missing} ({e})")),
            Source::File { .. } => Err(missing.into()),
        }
    }
}

/// The handle's resource name as far as it is known, for messages.
fn shown(h: &Handle<'_>, project: Option<&str>) -> String {
    match h.project.or(project) {
        Some(p) => VersionName {
            project: p,
            location: h.location,
            secret: h.secret,
            version: h.version,
        }
        .to_string(),
        None => format!("{} (version {})", h.secret, h.version),
    }
}

/// The handle's value: the payload as text, or its `key` in the payload's
/// JSON.
fn value(payload: &Payload, key: Option<&str>, name: &VersionName<'_>) -> Outcome {
    let bytes = zeroize::Zeroizing::new(payload.0.to_vec());
    let mut text = backend_core::fs::utf8(bytes).map_err(|_| {
        HandleError::other(format!(
            "{name}: the payload is binary data, not UTF-8 text; the agent takes text values only"
        ))
    })?;
    let Some(key) = key else {
        return Ok(Secret::new(std::mem::take(&mut *text)));
    };
    backend_core::key::extract_json(&text, key, &name.to_string(), || {
        HandleError::other(format!(
            "{name}: the payload is not a JSON document, so key '{}' cannot be read from it",
            key.escape_debug()
        ))
    })
}

impl Provider for GcpProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-gcp",
        "Secret backend for GCP Secret Manager: handles are <secret>[;<key>[;<version>]] or projects/<project>/secrets/<secret>[/versions/<version>]."
    );
    type Config = GcpConfig;
    type Args = NoArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        let parsed: Vec<Result<Handle<'_>, HandleError>> =
            handles.iter().map(|h| handle::parse(h)).collect();
        if let Some(errors) = backend_core::none_parsed(&parsed) {
            return errors;
        }
        let token = match credentials::token(
            self.settings.credentials_file.as_deref(),
            self.settings.token_cache_file.as_deref(),
            &process_env,
            ctx,
        )
        .await
        {
            Ok(t) => t,
            Err(why) => {
                tracing::debug!("no access token: {why}");
                return parsed
                    .iter()
                    .map(|p| {
                        let h = p.as_ref().map_err(Clone::clone)?;
                        Err(why
                            .clone()
                            .context(shown(h, self.settings.project.as_deref())))
                    })
                    .collect();
            }
        };
        let project = self
            .default_project(&parsed, token.project.as_deref(), ctx)
            .await;
        let targets: Vec<Result<(VersionName<'_>, Option<&str>), HandleError>> = parsed
            .iter()
            .map(|p| {
                let h = p.as_ref().map_err(Clone::clone)?;
                let project: &str = match (h.project, &project) {
                    (Some(p), _) => p,
                    (None, Ok(p)) => p,
                    (None, Err(why)) => {
                        return Err(HandleError::invalid_handle(format!("{}: {why}", h.secret)));
                    }
                };
                let location = h.location.or(self.settings.location.as_deref());
                if h.location.is_some() && h.location != self.settings.location.as_deref() {
                    return Err(HandleError::invalid_handle(format!(
                        "{}: a secret of location {loc} is read through its regional endpoint: set location: {loc} in the config",
                        shown(h, Some(project)),
                        loc = h.location.unwrap_or_default()
                    )));
                }
                let name = VersionName {
                    project,
                    location,
                    secret: h.secret,
                    version: h.version,
                };
                Ok((name, h.key))
            })
            .collect();
        let http = match http::Http::new() {
            Ok(h) => h,
            Err(why) => {
                return targets
                    .into_iter()
                    .map(|t| Err(HandleError::other(format!("{}: {why}", t?.0))))
                    .collect();
            }
        };
        let (http, token, endpoint) = (&http, &token, self.settings.endpoint.as_str());
        let outcomes = fan_out(
            &targets,
            |(name, _)| *name,
            |versions| async move {
                tracing::debug!(
                    "accessing {} secret version(s) with credentials from {}",
                    versions.len(),
                    token.source
                );
                bounded(&versions, self.settings.concurrency, ctx, |name| {
                    api::access(http, endpoint, token, name, ctx)
                })
                .await
            },
            |(name, key), payload| match payload {
                Ok(payload) => value(&payload, *key, name),
                Err(e) if e.kind() == backend_core::ErrorKind::TimedOut => {
                    Err(e.clone().context(*name))
                }
                Err(e) => Err(e.clone()),
            },
        )
        .await;
        if token.cached
            && token.rejected.load(std::sync::atomic::Ordering::Relaxed)
            && let Some(file) = &self.settings.token_cache_file
        {
            tracing::warn!(
                "Secret Manager refused the cached access token; forgetting it ({})",
                file.display()
            );
            cache::forget(file);
        }
        outcomes
    }

    /// The credentials file the chain would use ([`credentials::hold`]).
    fn hold_credentials(&self) {
        credentials::hold(self.settings.credentials_file.as_deref(), &process_env);
    }

    fn aliases(config: &GcpConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    fn check_handle(_: &GcpConfig, handle: &str) -> Result<(), HandleError> {
        handle::parse(handle).map(drop)
    }

    fn build(config: GcpConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
        Self::new(config)
    }
}
