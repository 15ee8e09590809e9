//! The clients of one call, on the shared network layer ([`backend_net`]):
//! its retries under the deadline (429 and 5xx, `Retry-After` honoured),
//! bounded zeroizing bodies, no redirects, proxies from the environment,
//! and failures named by their cause, never by a body.
//!
//! - Key Vault and Entra ID: TLS on the system's roots (`SSL_CERT_FILE`
//!   and `SSL_CERT_DIR` honoured), or only the PEM certificates of
//!   `ca_file`; verification off only on `insecure_skip_tls_verify`.
//! - Managed identity endpoints (App Service, Arc, Azure ML, Cloud Shell,
//!   IMDS): local plain HTTP, never proxied (a proxy would see the
//!   identity header and the token in clear); IMDS with a short connect
//!   timeout so a host outside Azure fails fast.

use std::time::Duration;

use backend_core::config::read_guarded;
use backend_net::Http;

use crate::config::Settings;

/// Largest CA file read.
const MAX_CA: u64 = 1024 * 1024;
/// IMDS's connect timeout: on a host outside Azure nothing answers at
/// 169.254.169.254, and the agent should hear so at once.
pub const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const USER_AGENT: &str = concat!("secret-backend-azure/", env!("CARGO_PKG_VERSION"));

/// The client for Key Vault and Entra ID; reads `ca_file` when set.
pub fn client(settings: &Settings) -> Result<Http, String> {
    let roots = match &settings.ca_file {
        Some(path) if !settings.insecure => {
            let pem = read_guarded(path, "ca_file", MAX_CA).map_err(|e| e.to_string())?;
            backend_net::tls::pem_certs(pem.as_bytes(), &format!("ca_file {}", path.display()))?
        }
        _ => {
            backend_net::check_root_paths(&|k| std::env::var_os(k))?;
            Vec::new()
        }
    };
    let tls = backend_net::tls::client_config(backend_net::tls::Options {
        roots,
        skip_verify: settings.insecure,
        ..backend_net::tls::Options::default()
    })?;
    Http::builder(USER_AGENT, tls).build()
}

/// The client for a managed identity endpoint: no proxy, and for IMDS
/// (`imds`) a short connect timeout.
pub fn local_client(imds: bool) -> Result<Http, String> {
    let tls = backend_net::system_roots_config().map_err(|e| format!("TLS setup: {e}"))?;
    let builder = Http::builder(USER_AGENT, tls).no_proxy();
    if imds {
        builder.connect_timeout(IMDS_CONNECT_TIMEOUT).build()
    } else {
        builder.build()
    }
}

/// A form body (`application/x-www-form-urlencoded`), zeroized when
/// dropped: token requests carry secrets and assertions.
pub fn form(pairs: &[(&str, &str)]) -> zeroize::Zeroizing<String> {
    let mut out = zeroize::Zeroizing::new(String::new());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        let f = form(&[
            ("a b", "x/y=z&"),
            ("scope", "https://vault.azure.net/.default"),
        ]);
        assert_eq!(
            f.as_str(),
            "a%20b=x%2Fy%3Dz%26&scope=https%3A%2F%2Fvault.azure.net%2F.default"
        );
    }
}
