//! backend-k8s: secrets from Kubernetes Secrets.
//!
//! A handle is `<namespace>/<name>;<key>` ([`handle`]). One call goes:
//!
//! 1. parse every handle; invalid names and keys are answered before
//!    anything is sent;
//! 2. read what this call needs ([`connect`]): the service account token
//!    and CA (in a pod) or the kubeconfig (outside one), fresh at every
//!    call, so a rotated token is used; a failure there is every handle's
//!    error;
//! 3. group the handles by secret and `GET` each distinct secret once
//!    ([`api`]), however many of its keys are asked, at most `concurrency`
//!    at once, each bounded by the call's deadline;
//! 4. pick each handle's key from the secret's `data`, base64-decoded;
//!    binary values that are not UTF-8 are an error, as the agent takes
//!    text. `stringData` is write-only in Kubernetes and never read.

pub mod api;
pub mod config;
pub mod connect;
pub mod handle;
pub mod kubeconfig;

use std::borrow::Cow;

use backend_core::protocol::Request;
use backend_core::{
    ConfigError, Context, HandleError, NoArgs, Outcome, Provider, Secret, bounded, fan_out,
};
use base64::Engine as _;

pub use config::{K8sConfig, Settings};

use crate::api::{Api, Data, key_names};
use crate::handle::Handle;

/// The Kubernetes Secrets provider.
#[derive(Debug)]
pub struct K8sProvider {
    settings: Settings,
}

impl K8sProvider {
    /// Builds the provider from `config` and the process environment
    /// (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`,
    /// `KUBECONFIG`). Reads no file.
    pub fn new(config: K8sConfig) -> Result<Self, ConfigError> {
        let settings = config.validate(&|k| std::env::var(k).ok())?;
        Ok(Self { settings })
    }
}

/// `ns/name`, or `name` when the namespace is not known.
fn location(h: &Handle<'_>, ns: Option<&str>) -> String {
    match h.namespace.or(ns) {
        Some(ns) => format!("{ns}/{}", h.name),
        None => h.name.to_owned(),
    }
}

/// The handle's value out of the secret's `data`.
fn value(data: &Data, h: &Handle<'_>, ns: &str) -> Outcome {
    let loc = location(h, Some(ns));
    let map = match &data.0 {
        Some(map) if !map.is_empty() => map,
        _ => {
            return Err(HandleError::not_found(format!(
                "{loc}: the secret has no data"
            )));
        }
    };
    let key = match (h.key, map.len()) {
        (Some(k), _) => k,
        (None, 1) => map.keys().next().map_or("", String::as_str),
        (None, n) => {
            return Err(HandleError::invalid_handle(format!(
                "{loc}: the secret has {n} keys; name one with ';<key>' ({})",
                key_names(map)
            )));
        }
    };
    let Some(encoded) = map.get(key) else {
        return Err(HandleError::not_found(format!(
            "{loc}: no key '{key}' ({})",
            key_names(map)
        )));
    };
    let key = key.escape_debug();
    let bytes = encoded
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| HandleError::other(format!("{loc}: key '{key}' is not valid base64")))?;
    let mut text = backend_core::fs::utf8(bytes).map_err(|_| {
        HandleError::other(format!(
            "{loc}: key '{key}' holds binary data, not UTF-8 text; the agent takes text values only"
        ))
    })?;
    let Some(pointer) = h.pointer else {
        return Ok(Secret::new(std::mem::take(&mut *text)));
    };
    backend_core::key::extract_json(&text, pointer, &format!("{loc};{key}"), || {
        HandleError::other(format!(
            "{loc}: key '{key}' is not a JSON document, so '{}' cannot point into it",
            pointer.escape_debug()
        ))
    })
}

impl Provider for K8sProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-k8s",
        "Secret backend for Kubernetes Secrets: handles are <namespace>/<name>;<key>."
    );
    type Config = K8sConfig;
    type Args = NoArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        let parsed: Vec<Result<Handle<'_>, HandleError>> =
            handles.iter().map(|h| handle::parse(h)).collect();
        if let Some(errors) = backend_core::none_parsed(&parsed) {
            return errors;
        }
        let api = match connect::endpoint(&self.settings).and_then(Api::new) {
            Ok(api) => api,
            Err(why) => {
                return parsed
                    .into_iter()
                    .map(|p| {
                        Err(p.map_or_else(
                            |e| e,
                            |h| {
                                let ns = self.settings.namespace.as_deref();
                                HandleError::other(format!("{}: {why}", location(&h, ns)))
                            },
                        ))
                    })
                    .collect();
            }
        };
        // Each handle with its namespace, the default one filled in.
        let targets: Vec<Result<(Handle<'_>, Cow<'_, str>), HandleError>> = parsed
            .into_iter()
            .map(|p| {
                let h = p?;
                let ns = match (h.namespace, &api.namespace) {
                    (Some(ns), _) => Cow::Borrowed(ns),
                    (None, Ok(ns)) => Cow::Borrowed(ns.as_str()),
                    (None, Err(why)) => {
                        return Err(HandleError::other(format!("{}: {why}", h.name)));
                    }
                };
                Ok((h, ns))
            })
            .collect();
        let api = &api;
        fan_out(
            &targets,
            |(h, ns)| (ns.clone(), h.name),
            |secrets| async move {
                tracing::debug!("reading {} secret(s)", secrets.len());
                bounded(&secrets, self.settings.concurrency, ctx, |(ns, name)| {
                    api.secret(ns, name, ctx)
                })
                .await
            },
            |(h, ns), data| match data {
                Ok(data) => value(&data, h, ns),
                Err(e) if e.kind() == backend_core::ErrorKind::TimedOut => {
                    Err(e.clone().context(location(h, Some(ns))))
                }
                Err(e) => Err(e.clone()),
            },
        )
        .await
    }

    /// The token file, or the kubeconfig's token or client key
    /// ([`connect::endpoint`] reads and holds them), sending nothing.
    fn hold_credentials(&self) {
        if let Err(why) = connect::endpoint(&self.settings) {
            tracing::trace!("credentials not held: {why}");
        }
    }

    fn aliases(config: &K8sConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    fn check_handle(_: &K8sConfig, handle: &str) -> Result<(), HandleError> {
        handle::parse(handle).map(drop)
    }

    fn build(config: K8sConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
        Self::new(config)
    }
}
