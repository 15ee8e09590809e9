//! SigV4 for the stores that prove an AWS identity to another service:
//! vault's `aws` login and gcp's AWS workload identity federation both sign
//! an STS `GetCallerIdentity` POST that the other service replays to STS.
//! The signing itself is the SDK's signer crate (`aws-sigv4`); this is the
//! one place that sets it up. Behind the `sigv4` feature: only those two
//! stores link it.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use backend_core::Secret;

/// What the signer added to a request.
#[derive(Debug)]
pub struct Signed {
    /// The headers to send besides the caller's, as the signer names them
    /// (`x-amz-date`, `x-amz-security-token` with a session token,
    /// `authorization`): they hold the signature and the session token,
    /// so they are credentials.
    pub headers: Vec<(String, Secret)>,
    /// The signature alone.
    pub signature: Secret,
}

/// Signs `POST url` with `headers` (every one of them signed) and `body`
/// for `service` in `region` at `now`. The error is a reason naming no
/// credential.
pub fn sign_post(
    credentials: Credentials,
    service: &str,
    region: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Signed, &'static str> {
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| "incomplete signing parameters")?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| "a header cannot be signed")?;
    let (instructions, signature) = sign(request, &params)
        .map_err(|_| "the signer refused the request")?
        .into_parts();
    let (added, _) = instructions.into_parts();
    Ok(Signed {
        headers: added
            .iter()
            .map(|h| (h.name().to_owned(), Secret::new(h.value().to_owned())))
            .collect(),
        signature: Secret::new(signature),
    })
}
