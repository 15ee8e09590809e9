//! The signed client of one call, built once per call.
//!
//! Loading happens in `resolve`, under the call's deadline, never in
//! `new`: building a provider must not touch the network. The region and
//! credentials are found first, once, by [`crate::credentials`] (the SDK's
//! chains, our own code, reading no file itself, every identity held, bounded and fast
//! when there are none: the same code `secret-backend-vault`'s `aws` login
//! uses); the credentials found are then handed to the client ([`Api`]) as
//! static ones, so the chain (and any instance-metadata probing) runs once per
//! call.

use backend_core::{Context, HandleError};

use crate::api::{Api, Endpoints};
use crate::config::AwsConfig;
use crate::credentials::{self, no_region};

/// The signed client of one call ([`Api`]) and its region: the configured
/// one, which ARNs naming another region (a secret replicated elsewhere, a
/// parameter shared from another region) override per request.
#[derive(Debug)]
pub struct Clients {
    /// Signs and sends every request of the call.
    pub api: Api,
    region: String,
}

impl Clients {
    /// The region a request for `id` goes to: the one its ARN names, else
    /// the configured one.
    pub fn region_of<'a>(&'a self, id: &'a str) -> &'a str {
        arn_region(id).unwrap_or(&self.region)
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

/// Loads region and credentials ([`credentials`]) and builds the clients,
/// within the deadline. The error is the same for every handle; the caller
/// prefixes the location.
pub async fn load(config: &AwsConfig, ctx: &Context) -> Result<Clients, HandleError> {
    let loaded = credentials::load_bounded(config, true, ctx).await?;
    let region = loaded.region.ok_or_else(no_region)?;
    let settings = loaded.profile_settings;
    let env = &loaded.env;
    let endpoints = Endpoints::from_env(config.endpoint_url.clone(), loaded.endpoint_url, &|k| {
        crate::api::or_profile(env.get(k).map(str::to_owned), &settings, k)
    });
    let api = Api::new(loaded.credentials, endpoints).map_err(HandleError::other)?;
    Ok(Clients { api, region })
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
