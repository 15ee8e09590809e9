//! The handle grammar.
//!
//! | handle | reads |
//! |---|---|
//! | `<secret>` | the latest version of `<secret>` in the configured project |
//! | `<secret>;<key>` | field `<key>` of the latest version's JSON payload |
//! | `<secret>;<key>;<version>` | field `<key>` of that version |
//! | `<secret>;;<version>` | that version, whole |
//! | `projects/<p>/secrets/<s>[/versions/<v>][;<key>[;<version>]]` | the same, in project `<p>` |
//! | `projects/<p>/locations/<l>/secrets/<s>...` | a regional secret (needs `location: <l>`) |
//!
//! The first four are the Datadog connector's (`gcp.secretmanager`): the
//! handle is split on `;` into name, key and version, the version
//! defaulting to `latest`. A key starting with `/` is a JSON Pointer (RFC
//! 6901) into the payload, as in every store of this project
//! ([`backend_core::key`]).
//!
//! Everything that goes into the URL is checked here, before anything is
//! sent: a secret name is `[A-Za-z0-9_-]{1,255}` (Secret Manager's own
//! rule), a version is a number, `latest`, or an alias
//! (`[A-Za-z0-9_-]{1,63}`), a project is an id, a number or a
//! domain-scoped id (`example.com:proj`), a location a region name. None
//! needs escaping in a URL path.

use backend_core::HandleError;

/// Longest secret name (Secret Manager's limit).
pub const MAX_SECRET: usize = 255;
/// Longest version alias.
pub const MAX_VERSION: usize = 63;
/// Longest project id we accept (domain-scoped ids included).
pub const MAX_PROJECT: usize = 128;
/// Longest location name.
pub const MAX_LOCATION: usize = 63;
/// Longest key (field name or JSON Pointer).
pub const MAX_KEY: usize = 1024;

/// The version read when a handle names none.
pub const LATEST: &str = "latest";

/// A parsed handle, borrowing the handle text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle<'a> {
    /// The project, when the handle is a full resource name.
    pub project: Option<&'a str>,
    /// The location of a regional secret named in full.
    pub location: Option<&'a str>,
    /// The secret's id.
    pub secret: &'a str,
    /// The version: a number, `latest` or an alias.
    pub version: &'a str,
    /// A field name or JSON Pointer into the payload.
    pub key: Option<&'a str>,
}

const EXPECTED: &str = "expected <secret>, <secret>;<key>, <secret>;<key>;<version>, <secret>;;<version>, or projects/<project>/secrets/<secret>[/versions/<version>]";

fn invalid(why: &str) -> HandleError {
    HandleError::invalid_handle(format!("invalid handle: {why} ({EXPECTED})"))
}

/// Parses a handle; the error says which rule it breaks without repeating
/// the handle (the reply is keyed by it already).
pub fn parse(handle: &str) -> Result<Handle<'_>, HandleError> {
    let mut parts = handle.split(';');
    let name = parts.next().unwrap_or_default();
    let key = parts.next().filter(|k| !k.is_empty());
    let version = parts.next().filter(|v| !v.is_empty());
    if parts.next().is_some() {
        return Err(invalid("more than three ';'-separated parts"));
    }
    let (project, location, secret, path_version) = if name.starts_with("projects/") {
        resource_name(name)?
    } else {
        (None, None, name, None)
    };
    if !is_secret_id(secret) {
        return Err(invalid(
            "the secret name is not a Secret Manager id (letters, digits, '_' and '-', 1 to 255)",
        ));
    }
    let version = match (path_version, version) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "the version is given twice (in the resource name and after ';')",
            ));
        }
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => LATEST,
    };
    if !is_version(version) {
        return Err(invalid(
            "the version is not a number, 'latest' or an alias (letters, digits, '_' and '-', at most 63)",
        ));
    }
    if let Some(k) = key
        && (k.len() > MAX_KEY || k.chars().any(char::is_control))
    {
        return Err(invalid("the key is too long or holds control characters"));
    }
    Ok(Handle {
        project,
        location,
        secret,
        version,
        key,
    })
}

type Parts<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

/// `projects/<p>[/locations/<l>]/secrets/<s>[/versions/<v>]`.
fn resource_name(name: &str) -> Result<Parts<'_>, HandleError> {
    let segments: Vec<&str> = name.split('/').collect();
    let (project, location, rest) = match segments.as_slice() {
        ["projects", p, "locations", l, rest @ ..] => (*p, Some(*l), rest),
        ["projects", p, rest @ ..] => (*p, None, rest),
        _ => return Err(invalid("not a resource name")),
    };
    let (secret, version) = match rest {
        ["secrets", s] => (*s, None),
        ["secrets", s, "versions", v] => (*s, Some(*v)),
        _ => {
            return Err(invalid(
                "a resource name is projects/<project>/secrets/<secret>[/versions/<version>]",
            ));
        }
    };
    if !is_project(project) {
        return Err(invalid(
            "the project is not a project id or number (lowercase letters, digits, '-', '.' and ':')",
        ));
    }
    if location.is_some_and(|l| !is_location(l)) {
        return Err(invalid(
            "the location is not a region name (lowercase letters, digits and '-')",
        ));
    }
    Ok((Some(project), location, secret, version))
}

fn id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// A secret id: `[A-Za-z0-9_-]{1,255}`.
pub fn is_secret_id(s: &str) -> bool {
    (1..=MAX_SECRET).contains(&s.len()) && s.bytes().all(id_char)
}

/// A version: a number, `latest`, or an alias `[A-Za-z0-9_-]{1,63}`.
pub fn is_version(s: &str) -> bool {
    (1..=MAX_VERSION).contains(&s.len()) && s.bytes().all(id_char)
}

/// A project id (`my-project-123`), number (`123456789012`) or
/// domain-scoped id (`example.com:my-project`).
pub fn is_project(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=MAX_PROJECT).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b':')
        })
}

/// A location (`us-central1`, `europe-west4`).
pub fn is_location(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=MAX_LOCATION).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(h: &str) -> (Option<&str>, &str, &str, Option<&str>) {
        let p = parse(h).unwrap_or_else(|e| panic!("{h}: {e}"));
        (p.project, p.secret, p.version, p.key)
    }

    #[test]
    fn the_connector_forms() {
        assert_eq!(ok("db"), (None, "db", "latest", None));
        assert_eq!(ok("db;password"), (None, "db", "latest", Some("password")));
        assert_eq!(ok("db;password;3"), (None, "db", "3", Some("password")));
        assert_eq!(ok("db;;3"), (None, "db", "3", None));
        assert_eq!(ok("db;;"), (None, "db", "latest", None));
        assert_eq!(ok("db;;prod-alias"), (None, "db", "prod-alias", None));
        assert_eq!(
            ok("DB_2-x;/nested/pw;latest"),
            (None, "DB_2-x", "latest", Some("/nested/pw"))
        );
    }

    #[test]
    fn resource_names() {
        assert_eq!(
            ok("projects/other-proj/secrets/db"),
            (Some("other-proj"), "db", "latest", None)
        );
        assert_eq!(
            ok("projects/123456789012/secrets/db/versions/4;user"),
            (Some("123456789012"), "db", "4", Some("user"))
        );
        assert_eq!(
            ok("projects/example.com:proj/secrets/db;;2"),
            (Some("example.com:proj"), "db", "2", None)
        );
        let p = parse("projects/p/locations/europe-west4/secrets/db").unwrap();
        assert_eq!(p.location, Some("europe-west4"));
        assert!(parse("projects/p/secrets/db/versions/4;;5").is_err());
    }

    #[test]
    fn invalid_handles_are_refused() {
        let long = "a".repeat(256);
        let long_version = format!("db;;{}", "v".repeat(64));
        for h in [
            "",
            ";key",
            "db;k;v;x",
            "db/x",
            "../etc",
            "db?x=1",
            "db#x",
            "db%2f",
            "db x",
            "dé",
            long.as_str(),
            "db;;1.5",
            "db;;../x",
            long_version.as_str(),
            "db;k\n",
            "projects/p/secrets",
            "projects/p/secrets/",
            "projects//secrets/db",
            "projects/P/secrets/db",
            "projects/p/secrets/db/versions",
            "projects/p/secrets/db/versions/1/x",
            "projects/p/topics/db",
            "projects/p/locations/EU/secrets/db",
            "projects/-p/secrets/db",
            "projects/p%2f/secrets/db",
        ] {
            let e = parse(h).expect_err(h);
            assert_eq!(e.kind(), backend_core::ErrorKind::InvalidHandle, "{h}");
        }
        assert!(parse(&"a".repeat(255)).is_ok());
    }

    proptest::proptest! {
        /// Whatever passes is made of characters a URL path carries as they
        /// are: a request can name nothing but a secret version.
        #[test]
        fn what_passes_needs_no_escaping(h in "[a-zA-Z0-9./;%?#:@ _-]{0,60}") {
            if let Ok(p) = parse(&h) {
                for part in [p.secret, p.version].into_iter().chain(p.project).chain(p.location) {
                    proptest::prop_assert!(part.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':')));
                    proptest::prop_assert!(!part.is_empty() && part != "." && part != "..");
                }
            }
        }
    }
}
