//! The shared config and credentials files as the SDK reads them: parsed,
//! merged, and the selected profile's credentials resolved into a chain.
//!
//! A port of the SDK's own rules (`aws-runtime`'s `env_config` parser and
//! `aws-config`'s `profile::credentials::repr`), so that a profile means
//! here what it means to the AWS CLI and to every SDK:
//!
//! - **Parsing** ([`parse`]): `[section]` lines (a comment after them cut),
//!   `key = value` properties (keys lowercased, both sides trimmed of spaces
//!   and tabs, a `#` or `;` comment cut when whitespace comes before it),
//!   indented continuation lines appended to the last property, blank and
//!   comment lines skipped. A property before any section, a line without
//!   `=`, or a section line without its `]`, is an error naming the file
//!   and the line (never the line's text, which may hold a key).
//! - **Merging** ([`Profiles::merge`]): the config file names profiles
//!   `[profile name]` (and `[default]`, unless `[profile default]` is there
//!   too), the credentials file names them bare (`[name]`); the config file
//!   is read first and the credentials file's properties win. Sections of
//!   other kinds (`[sso-session x]`, `[services x]`) and names or keys that
//!   are not identifiers are ignored, as the SDK ignores them.
//! - **Resolving** ([`resolve`]): from the selected profile, a base
//!   provider (static keys, a web identity token with `role_arn`, a named
//!   `credential_source`) and the roles to assume on top of it, one per
//!   profile with `role_arn` followed through `source_profile`. A loop of
//!   `source_profile`s is refused by name; a source profile with static
//!   keys stops the walk there.
//!
//! Not supported, each refused by name as invalid configuration rather
//! than skipped: `credential_process` (this build runs no program),
//! AWS IAM Identity Center (`sso_*`, `sso_session`) and console sessions
//! (`login_session`). The per-service `[services ...]` sections are read
//! by nobody here (the endpoint of a service comes from the config, the
//! environment or the profile's `endpoint_url`).

use std::collections::{BTreeMap, HashMap};

/// Spaces and tabs: what the SDK's parser trims.
const BLANK: &[char] = &[' ', '\t'];

/// Which of the two files a text comes from: they name profiles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The shared config file (`[profile name]`, `[default]`).
    Config,
    /// The shared credentials file (`[name]`).
    Credentials,
}

impl FileKind {
    fn what(self) -> &'static str {
        match self {
            Self::Config => "AWS config file",
            Self::Credentials => "AWS shared credentials file",
        }
    }
}

/// A file the SDK's parser refuses: which file, which line, and why (our
/// words; never the line itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: FileKind,
    pub line: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} cannot be parsed: line {}: {}",
            self.kind.what(),
            self.line,
            self.reason
        )
    }
}

/// The sections of one file as written: header text, then its properties.
type Raw<'a> = Vec<(&'a str, BTreeMap<String, String>)>;

/// Parses one profile file as the SDK's parser does (see the module docs).
pub fn parse(text: &str, kind: FileKind) -> Result<Raw<'_>, ParseError> {
    let mut sections: Raw<'_> = Vec::new();
    // Each header's index in `sections`: a file of many sections (256 KiB
    // holds 40,000) is not searched through once per header.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    // The section being read (an index into `sections`), the last property
    // of it, and whether that property started empty (a sub-property list).
    let mut current: Option<usize> = None;
    let mut property: Option<(String, bool)> = None;
    for (n, line) in text.lines().enumerate() {
        let error = |reason| ParseError {
            kind,
            line: n + 1,
            reason,
        };
        if line.trim_matches(BLANK).is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            let header = prepare(line, false)
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .ok_or_else(|| error("a section line must end with ']'"))?;
            let index = *index_of.entry(header).or_insert_with(|| {
                sections.push((header, BTreeMap::new()));
                sections.len() - 1
            });
            current = Some(index);
            property = None;
        } else if line.starts_with(BLANK) {
            let Some(index) = current else {
                return Err(error("a property comes before any [section]"));
            };
            let Some((key, sub)) = &property else {
                return Err(error("a continuation line follows no property"));
            };
            let line = line.trim_matches(BLANK);
            if *sub && !line.is_empty() {
                property_line(line).map_err(error)?;
            }
            if let Some(value) = sections
                .get_mut(index)
                .and_then(|(_, props)| props.get_mut(key))
            {
                value.push('\n');
                value.push_str(line);
            }
        } else {
            let Some(index) = current else {
                return Err(error("a property comes before any [section]"));
            };
            let (key, value) = property_line(line).map_err(error)?;
            property = Some((key.clone(), value.is_empty()));
            if let Some((_, props)) = sections.get_mut(index) {
                props.insert(key, value.to_owned());
            }
        }
    }
    Ok(sections)
}

/// `key = value`, the key lowercased.
fn property_line(line: &str) -> Result<(String, &str), &'static str> {
    let line = prepare(line, true);
    let (k, v) = line
        .split_once('=')
        .ok_or("a property line has no '=' sign")?;
    let k = k.trim_matches(BLANK);
    if k.is_empty() {
        return Err("a property has no name");
    }
    Ok((k.to_ascii_lowercase(), v.trim_matches(BLANK)))
}

/// The line trimmed, a comment cut (after whitespace only, for properties).
fn prepare(line: &str, comment_needs_blank: bool) -> &str {
    let line = line.trim_matches(BLANK);
    let mut after_blank = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if (c == '#' || c == ';') && (after_blank || !comment_needs_blank) {
            end = i;
            break;
        }
        after_blank = c.is_whitespace();
    }
    line.get(..end).unwrap_or(line).trim_matches(BLANK)
}

/// The SDK's identifiers: section names and property keys.
fn identifier(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
}

/// One profile: its properties, keys lowercased.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    props: BTreeMap<String, String>,
}

/// The name and the keys, never the values (keys and tokens among them).
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("keys", &self.props.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Profile {
    /// A property's value (keys are case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The property's value, not empty.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

/// The profiles of both files, merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Parses and merges the config file's text and the credentials file's
    /// (either may be empty), as the SDK does.
    pub fn read(config: &str, credentials: &str) -> Result<Self, ParseError> {
        let mut profiles = Self::default();
        profiles.merge(parse(config, FileKind::Config)?, FileKind::Config);
        profiles.merge(
            parse(credentials, FileKind::Credentials)?,
            FileKind::Credentials,
        );
        Ok(profiles)
    }

    /// Merges one file's sections in: later properties win.
    pub fn merge(&mut self, raw: Raw<'_>, kind: FileKind) {
        let named: Vec<(Option<&str>, &str, BTreeMap<String, String>)> = raw
            .into_iter()
            .filter_map(|(header, props)| {
                let header = header.trim_matches(BLANK);
                let (prefix, name) = match header.split_once(BLANK) {
                    Some((p, n)) => (Some(p.trim()), n.trim()),
                    None => (None, header.trim()),
                };
                let valid = match (kind, prefix) {
                    (FileKind::Config, Some(_)) => identifier(name),
                    (FileKind::Config, None) => name == "default",
                    (FileKind::Credentials, Some(_)) => false,
                    (FileKind::Credentials, None) => identifier(name),
                };
                valid.then_some((prefix, name, props))
            })
            .collect();
        let prefixed_default = named
            .iter()
            .any(|(p, n, _)| *p == Some("profile") && *n == "default");
        for (prefix, name, props) in named {
            match prefix {
                None if prefixed_default && name == "default" => continue,
                None | Some("profile") => {}
                // sso-session, services, ...: not read here.
                Some(_) => continue,
            }
            let profile = self
                .profiles
                .entry(name.to_owned())
                .or_insert_with(|| Profile {
                    name: name.to_owned(),
                    props: BTreeMap::new(),
                });
            for (k, v) in props {
                if identifier(&k) {
                    profile.props.insert(k, v);
                }
            }
        }
    }

    /// The profile named `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Whether no profile is defined at all.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The region of profile `name`, as the SDK's region provider finds
    /// it: its own `region`, else that of its `source_profile`, and so on
    /// (a loop ends the search, with none).
    pub fn region(&self, name: &str) -> Option<String> {
        let mut name = name;
        let mut seen: Vec<&str> = Vec::new();
        loop {
            let profile = self.get(name)?;
            if seen.contains(&name) {
                return None;
            }
            seen.push(name);
            if let Some(region) = profile.get("region") {
                return Some(region.to_owned());
            }
            match profile.get("source_profile") {
                Some(next) if next != name => name = next,
                _ => return None,
            }
        }
    }
}

/// Where the first credentials of a profile chain come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Base {
    /// Static keys from the profile.
    Keys {
        id: String,
        secret: String,
        token: Option<String>,
    },
    /// `AssumeRoleWithWebIdentity` with the token in `token_file`.
    WebIdentity {
        role_arn: String,
        token_file: String,
        session_name: Option<String>,
    },
    /// A `credential_source`: one of the chain's own links.
    Source(NamedSource),
}

/// The kind and the names, never the keys.
impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keys { id, .. } => f
                .debug_struct("Keys")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => f
                .debug_struct("WebIdentity")
                .field("role_arn", role_arn)
                .field("token_file", token_file)
                .field("session_name", session_name)
                .finish(),
            Self::Source(s) => f.debug_tuple("Source").field(s).finish(),
        }
    }
}

/// The `credential_source` values the SDK knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedSource {
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

/// A role to assume with the credentials before it.
#[derive(Clone, PartialEq, Eq)]
pub struct Role {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

/// Whether an external ID is set, never its value: the config's
/// `external_id` is a credential (redacted and held), the profile's the
/// same shared secret.
impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role")
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "<set>"))
            .field("session_name", &self.session_name)
            .finish()
    }
}

/// A profile's credentials: the base, then each role in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub base: Base,
    pub roles: Vec<Role>,
}

/// Why a profile gives no chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No profile to read (none defined, or `default` wanted and absent),
    /// or the one named holds no credentials: the next link of the default
    /// chain is tried, as with the SDK. (A profile named, by the selection
    /// or by a `source_profile`, that is not there is invalid, as with the
    /// SDK.)
    Absent,
    /// A profile this chain cannot use, and why (names from the
    /// operator's own files and our words, never a value).
    Invalid(String),
}

/// The SDK's reading of profile `selected`'s credentials (see the module
/// docs).
pub fn resolve(profiles: &Profiles, selected: &str) -> Result<Chain, Unresolved> {
    if profiles.is_empty() || (selected == "default" && profiles.get("default").is_none()) {
        return Err(Unresolved::Absent);
    }
    let mut name = selected;
    let mut visited: Vec<&str> = Vec::new();
    let mut roles = Vec::new();
    let base = loop {
        let Some(profile) = profiles.get(name) else {
            // The SDK's MissingProfile, an invalid configuration: the chain
            // ends (going on would use whatever identity the environment,
            // the container or the instance has instead of the one named).
            return Err(Unresolved::Invalid(match visited.last() {
                None => {
                    format!("profile '{name}' is in neither the config nor the credentials file")
                }
                Some(from) => format!(
                    "profile '{from}': its source_profile '{name}' is in neither the config nor \
                     the credentials file"
                ),
            }));
        };
        if visited.contains(&name) {
            let mut path: Vec<String> = visited.iter().map(|v| format!("'{v}'")).collect();
            path.push(format!("'{name}'"));
            return Err(Unresolved::Invalid(format!(
                "profile '{selected}': source_profile forms a loop ({})",
                path.join(" -> ")
            )));
        }
        visited.push(name);
        if visited.len() > 1
            && let Ok(Some(keys)) = static_keys(profile)
        {
            break keys;
        }
        if let Some(role) = role_of(profile) {
            let next = match (
                profile.get("source_profile"),
                profile.get("credential_source"),
            ) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        profile,
                        "it has both source_profile and credential_source (one or the other)",
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        profile,
                        "it has role_arn but neither source_profile nor credential_source",
                    ));
                }
                (Some(source), None) if source != name => Some(source),
                _ => None,
            };
            roles.push(role);
            match next {
                Some(source) => name = source,
                None => match base_of(profile)? {
                    Some(base) => break base,
                    // The SDK's "did not contain credentials": not loaded.
                    None if visited.len() == 1 => return Err(Unresolved::Absent),
                    None => return Err(no_keys(profile)),
                },
            }
        } else {
            match base_of(profile) {
                Ok(Some(base)) => break base,
                Ok(None) if visited.len() == 1 => return Err(Unresolved::Absent),
                Ok(None) => return Err(no_keys(profile)),
                Err(Unresolved::Invalid(why)) if visited.len() > 1 => {
                    return Err(Unresolved::Invalid(format!(
                        "cannot use source profile '{}': {why}",
                        profile.name
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    };
    roles.reverse();
    Ok(Chain { base, roles })
}

fn invalid(profile: &Profile, why: &str) -> Unresolved {
    Unresolved::Invalid(format!("profile '{}': {why}", profile.name))
}

fn no_keys(profile: &Profile) -> Unresolved {
    invalid(profile, "it holds no credentials")
}

/// The role a profile assumes, unless it is a web identity profile (whose
/// `role_arn` is its base).
fn role_of(profile: &Profile) -> Option<Role> {
    if profile.get("web_identity_token_file").is_some() {
        return None;
    }
    Some(Role {
        role_arn: profile.get("role_arn")?.to_owned(),
        external_id: profile.get("external_id").map(str::to_owned),
        session_name: profile.get("role_session_name").map(str::to_owned),
    })
}

/// What stands for "not supported here" in messages.
const NOT_IN_THIS_BUILD: &str = "which this build does not support (it takes static keys, \
     role_arn with source_profile or credential_source, web identity, ECS container or \
     instance metadata credentials)";

/// The base provider of a profile: `Ok(None)` when it holds no
/// credentials at all.
fn base_of(profile: &Profile) -> Result<Option<Base>, Unresolved> {
    if let Some(source) = profile.get("credential_source") {
        let named = match source.to_ascii_lowercase().as_str() {
            "environment" => NamedSource::Environment,
            "ec2instancemetadata" => NamedSource::Ec2InstanceMetadata,
            "ecscontainer" => NamedSource::EcsContainer,
            _ => {
                return Err(invalid(
                    profile,
                    "credential_source must be Environment, Ec2InstanceMetadata or EcsContainer",
                ));
            }
        };
        return Ok(Some(Base::Source(named)));
    }
    match (
        profile.get("role_arn"),
        profile.get("web_identity_token_file"),
    ) {
        (Some(role), Some(file)) => {
            return Ok(Some(Base::WebIdentity {
                role_arn: role.to_owned(),
                token_file: file.to_owned(),
                session_name: profile.get("role_session_name").map(str::to_owned),
            }));
        }
        (None, Some(_)) => {
            return Err(invalid(
                profile,
                "web_identity_token_file is set but role_arn is not",
            ));
        }
        _ => {}
    }
    let refused = [
        ("sso_session", "uses AWS IAM Identity Center (SSO)"),
        ("sso_start_url", "uses AWS IAM Identity Center (SSO)"),
        ("sso_account_id", "uses AWS IAM Identity Center (SSO)"),
        ("sso_role_name", "uses AWS IAM Identity Center (SSO)"),
        ("sso_region", "uses AWS IAM Identity Center (SSO)"),
        ("login_session", "uses an AWS console login session"),
        ("credential_process", "runs a credential_process"),
    ];
    if let Some((_, what)) = refused.iter().find(|(k, _)| profile.get(k).is_some()) {
        return Err(invalid(profile, &format!("it {what}, {NOT_IN_THIS_BUILD}")));
    }
    static_keys(profile)
}

/// Static keys: `Ok(None)` when none of the three keys is there.
fn static_keys(profile: &Profile) -> Result<Option<Base>, Unresolved> {
    let (id, secret, token) = (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
        profile.get("aws_session_token"),
    );
    if id.is_none() && secret.is_none() && token.is_none() {
        return Ok(None);
    }
    let id = id.ok_or_else(|| invalid(profile, "aws_access_key_id is missing"))?;
    let secret = secret.ok_or_else(|| invalid(profile, "aws_secret_access_key is missing"))?;
    Ok(Some(Base::Keys {
        id: id.to_owned(),
        secret: secret.to_owned(),
        token: token.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(config: &str, credentials: &str) -> Profiles {
        Profiles::read(config, credentials).unwrap()
    }

    fn keys(id: &str) -> Base {
        Base::Keys {
            id: id.into(),
            secret: format!("{id}-secret"),
            token: None,
        }
    }

    fn role(arn: &str) -> Role {
        Role {
            role_arn: arn.into(),
            external_id: None,
            session_name: None,
        }
    }

    /// A file of the largest size read, all short distinct sections, is
    /// parsed at once: each header was looked for among all the sections
    /// before it (40,000 of them: seconds of CPU, past the agent's
    /// deadline, that no timer can interrupt).
    #[test]
    fn many_sections_are_read_in_linear_time() {
        let mut text = String::new();
        let mut n = 0;
        while text.len() < crate::files::MAX_PROFILE_BYTES as usize - 64 {
            text.push_str(&format!("[profile {n:x}]\n"));
            n += 1;
        }
        text.push_str("[profile last]\nregion = eu-west-1\n");
        let started = std::time::Instant::now();
        let profiles = Profiles::read(&text, &text).unwrap();
        assert_eq!(profiles.region("last").as_deref(), Some("eu-west-1"));
        assert!(
            // A guard against the quadratic reading (seconds here), with a wide
            // margin over the linear one (milliseconds): not a speed figure.
            started.elapsed() < std::time::Duration::from_secs(2),
            "{n} sections: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_chains_debug_shows_no_external_id() {
        let p = profiles(
            "[profile r]\nrole_arn = arn:aws:iam::1:role/r\nexternal_id = ext-id-marker-0001\n\
             source_profile = k\n[profile k]\naws_access_key_id = AKIAK\n\
             aws_secret_access_key = k-secret-marker\n",
            "",
        );
        let chain = resolve(&p, "r").unwrap();
        assert_eq!(
            chain.roles[0].external_id.as_deref(),
            Some("ext-id-marker-0001")
        );
        let shown = format!("{chain:?}");
        assert!(shown.contains("arn:aws:iam::1:role/r"), "{shown}");
        assert!(!shown.contains("marker"), "{shown}");
    }

    #[test]
    fn lines_as_the_sdk_parser_reads_them() {
        let text = "# comment\n; another\n[ profile  a ] # cut\nRegion = eu-west-1 # comment\n\
                    key=v;not-a-comment\n  \nempty =\n  sub = 1\n  other = 2\n[default]\nx = y\n";
        let raw = parse(text, FileKind::Config).unwrap();
        assert_eq!(raw.len(), 2);
        assert_eq!(raw[0].0, " profile  a ");
        let a = &raw[0].1;
        assert_eq!(a["region"], "eu-west-1");
        assert_eq!(a["key"], "v;not-a-comment");
        assert_eq!(a["empty"], "\nsub = 1\nother = 2");
        for (text, line, reason) in [
            ("x = 1\n", 1, "a property comes before any [section]"),
            ("[a]\nno equals\n", 2, "a property line has no '=' sign"),
            ("[a]\n= v\n", 2, "a property has no name"),
            ("[a\n", 1, "a section line must end with ']'"),
            (
                "[a]\n  cont\n",
                2,
                "a continuation line follows no property",
            ),
            (
                "[a]\nk =\n  not a property\n",
                3,
                "a property line has no '=' sign",
            ),
        ] {
            let e = parse(text, FileKind::Credentials).unwrap_err();
            assert_eq!((e.line, e.reason), (line, reason), "{text:?}");
        }
        let e = parse("secret-in-line\n", FileKind::Config).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("AWS config file"), "{e}");
    }

    #[test]
    fn files_merge_as_the_sdk_merges_them() {
        let config = "[default]\nregion = us-east-1\n[profile default]\nregion = eu-west-1\n\
                      [profile a]\nregion = ap-south-1\nkey = config\n[b]\nregion = ignored\n\
                      [sso-session s]\nsso_region = x\n[services s]\nsts =\n  endpoint_url = e\n\
                      [profile bad name]\nx = 1\n[profile c]\nbad*key = 1\nok = 2\n";
        let credentials = "[a]\nkey = credentials\naws_access_key_id = A\n\
                           [profile d]\nx = 1\n[e]\nx = 2\n";
        let p = profiles(config, credentials);
        // `[profile default]` wins over `[default]` in the same file.
        assert_eq!(p.get("default").unwrap().get("region"), Some("eu-west-1"));
        let a = p.get("a").unwrap();
        assert_eq!(a.get("KEY"), Some("credentials"));
        assert_eq!(a.get("region"), Some("ap-south-1"));
        assert_eq!(a.get("aws_access_key_id"), Some("A"));
        // A bare section in the config file, a prefixed one in the
        // credentials file, other kinds of section: ignored.
        assert!(p.get("b").is_none());
        assert!(p.get("d").is_none());
        assert!(p.get("s").is_none());
        assert!(p.get("e").is_some());
        assert!(p.get("bad name").is_none());
        let c = p.get("c").unwrap();
        assert_eq!((c.get("bad*key"), c.get("ok")), (None, Some("2")));
        assert!(Profiles::read("x\n", "").is_err());
    }

    #[test]
    fn regions_follow_source_profiles() {
        let p = profiles(
            "[profile a]\nsource_profile = b\n[profile b]\nregion = eu-west-3\n\
             [profile loop]\nsource_profile = loop2\n[profile loop2]\nsource_profile = loop\n",
            "",
        );
        assert_eq!(p.region("a").as_deref(), Some("eu-west-3"));
        assert_eq!(p.region("loop"), None);
        assert_eq!(p.region("missing"), None);
    }

    #[test]
    fn static_keys_and_absent_profiles() {
        let p = profiles(
            "[profile a]\nregion = x\n",
            "[k]\naws_access_key_id = k\naws_secret_access_key = k-secret\n\
             [half]\naws_access_key_id = h\n",
        );
        assert_eq!(
            resolve(&p, "k"),
            Ok(Chain {
                base: keys("k"),
                roles: vec![]
            })
        );
        // No credentials in it, no default, no profiles: the next link.
        assert_eq!(resolve(&p, "a"), Err(Unresolved::Absent));
        assert_eq!(resolve(&p, "default"), Err(Unresolved::Absent));
        assert_eq!(resolve(&Profiles::default(), "x"), Err(Unresolved::Absent));
        let Err(Unresolved::Invalid(why)) = resolve(&p, "half") else {
            panic!()
        };
        assert_eq!(why, "profile 'half': aws_secret_access_key is missing");
    }

    #[test]
    fn source_profile_chains() {
        let p = profiles(
            "[profile top]\nrole_arn = arn:top\nsource_profile = mid\nexternal_id = ext\n\
             role_session_name = s\n\
             [profile mid]\nrole_arn = arn:mid\nsource_profile = base\n\
             [profile base]\nrole_arn = arn:ignored\nsource_profile = top\n\
             aws_access_key_id = base\naws_secret_access_key = base-secret\n\
             [profile selfie]\nrole_arn = arn:self\nsource_profile = selfie\n\
             aws_access_key_id = selfie\naws_secret_access_key = selfie-secret\n\
             [profile ec2]\nrole_arn = arn:ec2\ncredential_source = ec2InstanceMetadata\n\
             [profile wi]\nrole_arn = arn:wi\nweb_identity_token_file = /t\n\
             [profile on-wi]\nrole_arn = arn:on-wi\nsource_profile = wi\n",
            "",
        );
        // The source profile's static keys stop the walk (its own role_arn
        // would loop back to `top`).
        let chain = resolve(&p, "top").unwrap();
        assert_eq!(chain.base, keys("base"));
        assert_eq!(
            chain.roles,
            vec![
                role("arn:mid"),
                Role {
                    role_arn: "arn:top".into(),
                    external_id: Some("ext".into()),
                    session_name: Some("s".into()),
                },
            ]
        );
        let chain = resolve(&p, "selfie").unwrap();
        assert_eq!(
            (chain.base, chain.roles),
            (keys("selfie"), vec![role("arn:self")])
        );
        let chain = resolve(&p, "ec2").unwrap();
        assert_eq!(chain.base, Base::Source(NamedSource::Ec2InstanceMetadata));
        assert_eq!(chain.roles, vec![role("arn:ec2")]);
        let chain = resolve(&p, "on-wi").unwrap();
        assert_eq!(
            chain.base,
            Base::WebIdentity {
                role_arn: "arn:wi".into(),
                token_file: "/t".into(),
                session_name: None
            }
        );
        assert_eq!(chain.roles, vec![role("arn:on-wi")]);
    }

    #[test]
    fn loops_and_unusable_profiles_are_refused_by_name() {
        let p = profiles(
            "[profile a]\nrole_arn = arn:a\nsource_profile = b\n\
             [profile b]\nrole_arn = arn:b\nsource_profile = a\n\
             [profile both]\nrole_arn = r\nsource_profile = a\ncredential_source = Environment\n\
             [profile neither]\nrole_arn = r\n\
             [profile odd]\nrole_arn = r\ncredential_source = Somewhere\n\
             [profile sso]\nsso_session = corp\n\
             [profile proc]\ncredential_process = /bin/creds --secret x\n\
             [profile on-proc]\nrole_arn = r\nsource_profile = proc\n\
             [profile token-only]\nweb_identity_token_file = /t\n\
             [profile on-empty]\nrole_arn = r\nsource_profile = empty\n[profile empty]\nx = 1\n\
             [profile on-missing]\nrole_arn = r\nsource_profile = missing\n",
            "",
        );
        let why = |name| match resolve(&p, name) {
            Err(Unresolved::Invalid(why)) => why,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            why("a"),
            "profile 'a': source_profile forms a loop ('a' -> 'b' -> 'a')"
        );
        assert!(why("both").contains("both source_profile and credential_source"));
        assert!(why("neither").contains("neither source_profile nor credential_source"));
        assert!(why("odd").contains("credential_source must be"));
        assert!(why("sso").starts_with("profile 'sso': it uses AWS IAM Identity Center (SSO)"));
        assert!(why("sso").contains("this build does not support"));
        assert!(why("proc").contains("runs a credential_process"));
        assert!(!why("proc").contains("/bin/creds"));
        assert!(why("on-proc").starts_with("cannot use source profile 'proc': "));
        assert!(why("token-only").contains("role_arn is not"));
        assert_eq!(why("on-empty"), "profile 'empty': it holds no credentials");
        // A profile named that is not there: the SDK's MissingProfile, an
        // invalid configuration (it was "not loaded": the chain went on to
        // the container or the instance's role).
        assert_eq!(
            why("on-missing"),
            "profile 'on-missing': its source_profile 'missing' is in neither the config nor \
             the credentials file"
        );
        assert_eq!(
            why("nope"),
            "profile 'nope' is in neither the config nor the credentials file"
        );
    }
}
