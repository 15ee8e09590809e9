//! The handle grammar: which store, which secret, which key, which version.
//!
//! ```text
//! <secret-id>[;<key>[;<version>]]     Secrets Manager (name or ARN)
//! ssm:<name>[;<key>]                  SSM Parameter Store
//! arn:<partition>:ssm:...:parameter/<name>[;<key>]
//! ```
//!
//! `;` separates the parts because no secret name, parameter name or ARN
//! can contain it, while ARNs contain `:` and names contain `/`. An empty
//! key (`prod/db;;AWSPREVIOUS`) means the whole value, like no key at all.
//!
//! A version is a version id when it looks like one (a UUID:
//! `8-4-4-4-12` hex digits, which is what Secrets Manager generates), and a
//! staging label otherwise (`AWSCURRENT`, `AWSPREVIOUS`, custom labels).
//! `AWSCURRENT` is the same as no version: one fetch serves both.
//! A custom label shaped like a UUID would be read as a version id; name
//! such labels differently.
//!
//! Parsing is pure and total: every string gives a [`Handle`] or an
//! `invalid handle` error, and it is where requests are planned (handles
//! naming the same secret and version share one fetch).

use backend_core::HandleError;

/// Longest handle accepted: a secret ARN is at most 2048 characters, a key
/// or JSON pointer rarely more than a few hundred.
pub const MAX_HANDLE_LEN: usize = 4096;
/// The staging label of the current version.
pub const CURRENT_STAGE: &str = "AWSCURRENT";
/// The prefix of Parameter Store handles.
pub const SSM_PREFIX: &str = "ssm:";

/// A parsed handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// What to fetch (grouping key: one fetch per distinct target).
    pub target: Target,
    /// The key or JSON pointer into a JSON value; `None` for the whole value.
    pub key: Option<String>,
}

/// One fetchable thing: a secret at a version, or a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Secrets Manager secret (name or ARN), at a version (`None`: the
    /// current one, `AWSCURRENT`).
    Secret {
        /// The secret's name or ARN, as given.
        id: String,
        /// The version asked for.
        version: Option<Version>,
    },
    /// An SSM parameter (name or ARN, as given).
    Parameter(String),
}

/// A secret version: a staging label or a version id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A staging label such as `AWSPREVIOUS`.
    Stage(String),
    /// A version id (a UUID).
    Id(String),
}

impl Target {
    /// How messages name this target: `prod/db`, `prod/db (AWSPREVIOUS)`,
    /// `ssm:/prod/db`.
    pub fn location(&self) -> String {
        match self {
            Self::Secret { id, version: None } => id.clone(),
            Self::Secret {
                id,
                version: Some(Version::Stage(s) | Version::Id(s)),
            } => format!("{id} ({s})"),
            Self::Parameter(name) if name.starts_with("arn:") => name.clone(),
            Self::Parameter(name) => format!("{SSM_PREFIX}{name}"),
        }
    }
}

/// Parses one handle.
pub fn parse(handle: &str) -> Result<Handle, HandleError> {
    if handle.len() > MAX_HANDLE_LEN {
        return Err(HandleError::invalid_handle(format!(
            "handle of {} bytes is longer than {MAX_HANDLE_LEN}",
            handle.len()
        )));
    }
    if handle.chars().any(char::is_control) {
        return Err(invalid(handle, "contains a control character"));
    }
    if let Some(rest) = handle.strip_prefix(SSM_PREFIX) {
        return parameter(handle, rest);
    }
    if is_ssm_arn(handle) {
        return parameter(handle, handle);
    }
    secret(handle)
}

fn parameter(handle: &str, rest: &str) -> Result<Handle, HandleError> {
    let mut parts = rest.splitn(2, ';');
    let name = parts.next().unwrap_or_default();
    let key = parts.next();
    if name.is_empty() {
        return Err(invalid(handle, "no parameter name after 'ssm:'"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c))
    {
        return Err(invalid(
            handle,
            "a parameter name has only letters, digits and _.-/",
        ));
    }
    if key.is_some_and(|k| k.contains(';')) {
        return Err(invalid(
            handle,
            "parameters take '<name>[;<key>]': they have no versions here",
        ));
    }
    Ok(Handle {
        target: Target::Parameter(name.to_owned()),
        key: non_empty(key),
    })
}

fn secret(handle: &str) -> Result<Handle, HandleError> {
    let parts: Vec<&str> = handle.split(';').collect();
    let (id, key, version) = match parts.as_slice() {
        [id] => (*id, None, None),
        [id, key] => (*id, Some(*key), None),
        [id, key, version] => (*id, Some(*key), Some(*version)),
        _ => {
            return Err(invalid(
                handle,
                "expected '<secret-id>[;<key>[;<version>]]' (at most two ';')",
            ));
        }
    };
    if id.is_empty() {
        return Err(invalid(handle, "no secret name or ARN"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c))
    {
        return Err(invalid(
            handle,
            "a secret name or ARN has only letters, digits and /_+=.@-:",
        ));
    }
    let version = match version {
        // The current version is what a handle without a version gets: the
        // same fetch (and a batched one).
        None | Some("" | CURRENT_STAGE) => None,
        Some(v) if v.chars().any(char::is_whitespace) => {
            return Err(invalid(handle, "a version has no spaces"));
        }
        Some(v) if is_version_id(v) => Some(Version::Id(v.to_owned())),
        Some(v) => Some(Version::Stage(v.to_owned())),
    };
    Ok(Handle {
        target: Target::Secret {
            id: id.to_owned(),
            version,
        },
        key: non_empty(key),
    })
}

fn non_empty(key: Option<&str>) -> Option<String> {
    key.filter(|k| !k.is_empty()).map(str::to_owned)
}

fn invalid(handle: &str, why: &str) -> HandleError {
    HandleError::invalid_handle(format!("{}: {why}", backend_core::runner::shorten(handle)))
}

/// `arn:<partition>:ssm:<region>:<account>:parameter/...`
fn is_ssm_arn(s: &str) -> bool {
    let mut fields = s.splitn(6, ':');
    fields.next() == Some("arn")
        && fields.next().is_some_and(|p| p.starts_with("aws"))
        && fields.next() == Some("ssm")
        && fields.next().is_some()
        && fields.next().is_some()
        && fields.next().is_some_and(|r| r.starts_with("parameter/"))
}

/// A UUID in its usual text form, `8-4-4-4-12` hex digits.
pub fn is_version_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, key: Option<&str>, version: Option<Version>) -> Handle {
        Handle {
            target: Target::Secret {
                id: id.into(),
                version,
            },
            key: key.map(Into::into),
        }
    }

    fn param(name: &str, key: Option<&str>) -> Handle {
        Handle {
            target: Target::Parameter(name.into()),
            key: key.map(Into::into),
        }
    }

    const UUID: &str = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE";
    const REAL_UUID: &str = "a1b2c3d4-90ab-cdef-fedc-ba9870123456";

    #[test]
    fn secrets_manager_handles() {
        assert_eq!(parse("prod/db").unwrap(), secret("prod/db", None, None));
        assert_eq!(
            parse("prod/db;password").unwrap(),
            secret("prod/db", Some("password"), None)
        );
        assert_eq!(
            parse("prod/db;/nested/k").unwrap(),
            secret("prod/db", Some("/nested/k"), None)
        );
        assert_eq!(parse("prod/db;").unwrap(), secret("prod/db", None, None));
        assert_eq!(
            parse("prod/db;;AWSPREVIOUS").unwrap(),
            secret("prod/db", None, Some(Version::Stage("AWSPREVIOUS".into())))
        );
        assert_eq!(
            parse(&format!("prod/db;user;{REAL_UUID}")).unwrap(),
            secret("prod/db", Some("user"), Some(Version::Id(REAL_UUID.into())))
        );
        assert_eq!(parse("prod/db;;").unwrap(), secret("prod/db", None, None));
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
        assert_eq!(
            parse(&format!("{arn};password;AWSCURRENT")).unwrap(),
            secret(arn, Some("password"), None)
        );
    }

    #[test]
    fn parameter_handles() {
        assert_eq!(parse("ssm:/prod/db").unwrap(), param("/prod/db", None));
        assert_eq!(parse("ssm:plain").unwrap(), param("plain", None));
        assert_eq!(
            parse("ssm:/prod/db;password").unwrap(),
            param("/prod/db", Some("password"))
        );
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db";
        assert_eq!(parse(arn).unwrap(), param(arn, None));
        assert_eq!(
            parse(&format!("{arn};/a/b")).unwrap(),
            param(arn, Some("/a/b"))
        );
        let cn = "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x";
        assert_eq!(parse(cn).unwrap(), param(cn, None));
        // An SSM ARN for something else than a parameter is just an id.
        let doc = "arn:aws:ssm:eu-west-1:123456789012:document/x";
        assert_eq!(parse(doc).unwrap(), secret(doc, None, None));
    }

    #[test]
    fn invalid_handles() {
        for h in [
            "",
            ";",
            ";;;",
            ";key",
            "a;b;c;d",
            "ssm:",
            "ssm:;k",
            "ssm:/x;k;v",
            "with space",
            "]]]",
            "?version=x",
            "ssm:a b",
            "ünïcødé",
            "line\nbreak",
            "nul\0byte",
            "id;key;with space",
        ] {
            let e = parse(h).unwrap_err();
            assert_eq!(e.kind(), backend_core::ErrorKind::InvalidHandle, "{h:?}");
        }
        let long = "x".repeat(MAX_HANDLE_LEN + 1);
        assert!(parse(&long).unwrap_err().message().len() < 200);
    }

    /// Every sequence of up to four tokens: parsing never panics, a parsed
    /// handle is well formed, an error is an invalid handle with a short
    /// message.
    #[test]
    fn any_combination_parses_or_is_refused_cleanly() {
        const TOKENS: &[&str] = &[
            "",
            ";",
            ":",
            "ssm:",
            "arn:",
            "arn:aws:ssm:r:1:parameter/",
            "arn:aws:secretsmanager:r:1:secret:",
            "/",
            "a",
            "AWSPREVIOUS",
            "ü",
            "\n",
            " ",
            REAL_UUID,
        ];
        let n = TOKENS.len();
        for code in 0..n.pow(4) {
            let mut h = String::new();
            let mut c = code;
            for _ in 0..4 {
                h.push_str(TOKENS[c % n]);
                c /= n;
            }
            match parse(&h) {
                Ok(p) => {
                    let (name, version) = match &p.target {
                        Target::Secret { id, version } => (id, version.as_ref()),
                        Target::Parameter(name) => (name, None),
                    };
                    assert!(!name.is_empty() && !name.contains(';'), "{h:?}");
                    assert!(!name.chars().any(char::is_whitespace), "{h:?}");
                    assert!(p.key.as_ref().is_none_or(|k| !k.is_empty()), "{h:?}");
                    if let Some(Version::Stage(v) | Version::Id(v)) = version {
                        assert!(!v.is_empty() && !v.contains(';'), "{h:?}");
                    }
                }
                Err(e) => {
                    assert_eq!(e.kind(), backend_core::ErrorKind::InvalidHandle, "{h:?}");
                    assert!(!e.message().is_empty() && e.message().len() < 400, "{h:?}");
                }
            }
        }
    }

    #[test]
    fn version_ids_are_uuids() {
        assert!(is_version_id(REAL_UUID));
        assert!(is_version_id(&REAL_UUID.to_uppercase()));
        assert!(!is_version_id(UUID)); // not hex
        assert!(!is_version_id("AWSCURRENT"));
        assert!(!is_version_id("a1b2c3d4-90ab-cdef-fedc"));
        assert!(!is_version_id("a1b2c3d490abcdeffedcba9870123456"));
    }

    #[test]
    fn locations() {
        assert_eq!(parse("a;k;v1").unwrap().target.location(), "a (v1)");
        assert_eq!(parse("ssm:/p").unwrap().target.location(), "ssm:/p");
        let arn = "arn:aws:ssm:eu-west-1:1:parameter/p";
        assert_eq!(parse(arn).unwrap().target.location(), arn);
    }
}
