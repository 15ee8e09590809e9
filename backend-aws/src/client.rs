//! The two service clients, built once per call.
//!
//! Loading happens in `resolve`, under the call's deadline, never in
//! `new`: building a provider must not touch the network. The region and
//! credentials are found first, once, by [`crate::credentials`] (the SDK's
//! chains, reading no file itself, every identity held, bounded and fast
//! when there are none: the same code `secret-backend-vault`'s `aws` login
//! uses); the credentials found are then handed to both clients as static
//! ones, so the chain (and any instance-metadata probing) runs once per
//! call. The clients share the loader's HTTP client
//! ([`crate::http::client`]).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_secretsmanager::config::Region;
use aws_sdk_ssm::Client as SsmClient;
use aws_types::SdkConfig;
use backend_core::{Context, HandleError};

use crate::config::AwsConfig;
use crate::credentials::{self, no_region};

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

/// Loads region and credentials ([`credentials`]) and builds the clients,
/// within the deadline. The error is the same for every handle; the caller
/// prefixes the location.
pub async fn load(config: &AwsConfig, ctx: &Context) -> Result<Clients, HandleError> {
    let loaded = credentials::load_bounded(config, true, ctx).await?;
    let region = loaded.region.ok_or_else(no_region)?;
    Ok(Clients::new(loaded.sdk, region))
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
