//! Every file the credentials chain reads, read here, once, first.
//!
//! A plain blocking `std::fs::read` (what the SDK's loader used) would
//! block on a FIFO planted at `~/.aws/credentials` or at the web identity
//! token's path until the deadline, and read a device such as `/dev/zero`
//! without end. So the chain ([`crate::chain`]) opens no file at all:
//!
//! - the shared config and credentials files (`AWS_CONFIG_FILE`,
//!   `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and
//!   `~/.aws/credentials`) are read by [`SdkFiles::read`] and handed to the
//!   chain as text ([`crate::profile`] parses them);
//! - every token file the chain may need (the web identity token named by
//!   `AWS_WEB_IDENTITY_TOKEN_FILE` or by any profile's
//!   `web_identity_token_file`, the container authorization token named by
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`) is read here too, whether or
//!   not the chain gets that far, and looked up by the exact path named
//!   ([`SdkFiles::token`]); a path not read is "does not exist".
//!
//! Each file is read through [`backend_core::fs`]: opened without blocking,
//! refused unless it is a regular file, refused when group or others can
//! write it (whoever can write `~/.aws/config` can point us at their own
//! endpoint or role), read whole up to a bound or not at all. A missing
//! file is what it is to the SDK's chain (no profile, no token); any other failure
//! fails every handle with an error naming the file and the cause, before
//! any request is made.
//!
//! Every credential found in them (secret access keys, session tokens, the
//! tokens themselves) is [held](backend_core::secret::hold), so no reply
//! can carry it.

use std::collections::HashMap;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use backend_core::fs::{ReadError, Rules};
use backend_core::{HandleError, Secret};

/// Largest shared config or credentials file read.
pub const MAX_PROFILE_BYTES: u64 = 256 * 1024;
/// Largest token file read (a Kubernetes service account JWT is about 1 KB).
pub const MAX_TOKEN_BYTES: u64 = backend_core::config::MAX_CREDENTIAL_BYTES;

/// The variables naming token files the chain reads.
const TOKEN_FILE_VARS: [(&str, &str); 2] = [
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "web identity token file"),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "container authorization token file",
    ),
];

/// Profile keys whose values are credentials.
const CREDENTIAL_KEYS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];
/// Environment variables whose values are credentials.
const CREDENTIAL_VARS: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// What the chain gets instead of the disk.
#[derive(Default)]
pub struct SdkFiles {
    /// The shared config file's text (empty when there is none).
    pub config: String,
    /// The shared credentials file's text (empty when there is none).
    pub credentials: String,
    /// Token files by the exact path that names them.
    tokens: HashMap<String, Vec<u8>>,
}

/// Lengths only: the texts and tokens hold credentials.
impl std::fmt::Debug for SdkFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkFiles")
            .field("config_len", &self.config.len())
            .field("credentials_len", &self.credentials.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl SdkFiles {
    /// Reads every file the chain could read, from the process environment.
    pub fn read() -> Result<Self, HandleError> {
        Self::read_with(|k| std::env::var(k).ok())
    }

    /// [`SdkFiles::read`] with `env` for the environment.
    pub fn read_with(env: impl Fn(&str) -> Option<String>) -> Result<Self, HandleError> {
        let home = env("HOME").filter(|h| !h.is_empty());
        let profile = |var: &str, default: &str, what: &str| -> Result<String, HandleError> {
            let path = match env(var) {
                Some(p) => Some(expand_home(&p, home.as_deref())),
                None => home.as_deref().map(|h| expand_home(default, Some(h))),
            };
            match path {
                Some(path) => read_profile(&path, what),
                None => Ok(String::new()),
            }
        };
        let config = profile("AWS_CONFIG_FILE", "~/.aws/config", "AWS config file")?;
        let credentials = profile(
            "AWS_SHARED_CREDENTIALS_FILE",
            "~/.aws/credentials",
            "AWS shared credentials file",
        )?;
        for var in CREDENTIAL_VARS {
            if let Some(v) = env(var) {
                backend_core::secret::hold(&Secret::from(v));
            }
        }
        let mut tokens = HashMap::new();
        let named = TOKEN_FILE_VARS
            .iter()
            .filter_map(|(var, what)| Some((env(var)?, *what)));
        let in_profiles = [&config, &credentials]
            .into_iter()
            .flat_map(|text| properties(text))
            .filter(|(k, _)| k.eq_ignore_ascii_case("web_identity_token_file"))
            .map(|(_, path)| (path.to_owned(), "web identity token file"));
        for (path, what) in named.chain(in_profiles).collect::<Vec<_>>() {
            if path.is_empty() || tokens.contains_key(&path) {
                continue;
            }
            if let Some(token) = read_token(Path::new(&path), what)? {
                tokens.insert(path, token);
            }
        }
        Ok(Self {
            config,
            credentials,
            tokens,
        })
    }

    /// The bytes of the token file named `path` (exactly as it was named),
    /// when it exists.
    pub fn token(&self, path: &str) -> Option<&[u8]> {
        self.tokens.get(path).map(Vec::as_slice)
    }
}

/// `~` as the first component becomes the home directory, as the SDK
/// expands it; any other path is taken as it is.
fn expand_home(path: &str, home: Option<&str>) -> String {
    let rest = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return path.to_owned(),
    };
    match home {
        Some(home) => {
            let mut p = PathBuf::from(home);
            for part in rest.split('/').filter(|s| !s.is_empty()) {
                p.push(part);
            }
            p.to_string_lossy().into_owned()
        }
        None => path.to_owned(),
    }
}

/// The rules every file of the chain is read under.
fn rules(max: u64) -> Rules {
    Rules {
        max,
        refuse_writable: true,
    }
}

/// A shared config or credentials file's text; empty when it does not
/// exist. Credentials in it are held; others being able to read a file
/// holding them is warned about.
fn read_profile(path: &str, what: &str) -> Result<String, HandleError> {
    let path = Path::new(path);
    let text = match backend_core::fs::read_regular_text(path, rules(MAX_PROFILE_BYTES)) {
        Ok(mut text) => std::mem::take(&mut *text),
        Err(ReadError::Io(e)) if e.kind() == IoKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(refused(what, path, e)),
    };
    let mut holds = false;
    for (key, value) in properties(&text) {
        if CREDENTIAL_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) {
            backend_core::secret::hold(&Secret::from(value));
            holds = true;
        }
    }
    if holds {
        backend_core::config::warn_if_readable_by_others(path, &format!("{what} holding keys"));
    }
    Ok(text)
}

/// A token file's bytes as they are (the chain trims them), held;
/// `None` when it does not exist.
fn read_token(path: &Path, what: &str) -> Result<Option<Vec<u8>>, HandleError> {
    match backend_core::fs::read_regular(path, rules(MAX_TOKEN_BYTES)) {
        Ok(mut bytes) => {
            let bytes = std::mem::take(&mut *bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                backend_core::secret::hold(&Secret::from(text.trim()));
            }
            Ok(Some(bytes))
        }
        Err(ReadError::Io(e)) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(refused(what, path, e)),
    }
}

fn refused(what: &str, path: &Path, e: ReadError) -> HandleError {
    HandleError::permission_denied(e.config(what, path).to_string())
}

/// The `key = value` properties of a profile file, as the SDK's parser
/// reads them: lines that start a property (not a section, comment or
/// continuation), a comment after whitespace removed, both sides trimmed of
/// spaces and tabs.
fn properties(text: &str) -> impl Iterator<Item = (&str, &str)> {
    const BLANK: &[char] = &[' ', '\t'];
    text.lines()
        .filter(|l| !l.starts_with(['[', '#', ';', ' ', '\t']))
        .filter_map(|line| {
            let mut end = line.len();
            let mut after_blank = false;
            for (i, c) in line.char_indices() {
                if (c == '#' || c == ';') && after_blank {
                    end = i;
                    break;
                }
                after_blank = c.is_whitespace();
            }
            let (k, v) = line.get(..end)?.split_once('=')?;
            Some((k.trim_matches(BLANK), v.trim_matches(BLANK)))
        })
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn env<'a>(vars: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn homes_expand_as_the_sdk_does() {
        assert_eq!(expand_home("~/.aws/config", Some("/h/")), "/h/.aws/config");
        assert_eq!(expand_home("~", Some("/h")), "/h");
        assert_eq!(expand_home("~x/y", Some("/h")), "~x/y");
        assert_eq!(expand_home("/etc/aws", Some("/h")), "/etc/aws");
        assert_eq!(expand_home("~/c", None), "~/c");
    }

    #[test]
    fn properties_follow_the_sdk_parser() {
        let text = "[default]\nregion = eu-west-1 # comment\n\
                    web_identity_token_file=/t/token\n  continued = no\n\
                    # aws_secret_access_key = commented\nAWS_Session_Token = tok;en\nbad line\n";
        let props: Vec<_> = properties(text).collect();
        assert_eq!(
            props,
            [
                ("region", "eu-west-1"),
                ("web_identity_token_file", "/t/token"),
                ("AWS_Session_Token", "tok;en"),
            ]
        );
    }

    #[test]
    fn missing_files_are_empty_and_tokens_are_mapped() {
        let d = tempfile::tempdir().unwrap();
        let token = d.path().join("token");
        write(&token, "jwt-files-test-0123456789\n");
        let config = d.path().join("config");
        write(
            &config,
            &format!(
                "[profile x]\nweb_identity_token_file = {}\n",
                token.display()
            ),
        );
        let vars = [
            ("HOME", d.path().join("nohome").display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ];
        let files = SdkFiles::read_with(env(&vars)).unwrap();
        assert!(files.config.contains("[profile x]"));
        assert!(files.credentials.is_empty());
        assert_eq!(
            files.tokens[&token.display().to_string()],
            b"jwt-files-test-0123456789\n"
        );
        assert!(backend_core::secret::reveals_credential(
            "jwt-files-test-0123456789"
        ));
    }

    #[test]
    fn special_and_writable_files_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let loose = d.path().join("loose");
        std::fs::write(&loose, "[default]\n").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
        for (var, path, want) in [
            ("AWS_SHARED_CREDENTIALS_FILE", &fifo, "not a regular file"),
            ("AWS_CONFIG_FILE", &loose, "writable by group or others"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &fifo, "not a regular file"),
        ] {
            let vars = [(var, path.display().to_string())];
            let e = SdkFiles::read_with(env(&vars)).unwrap_err();
            let shown = path.display().to_string();
            assert!(
                e.message().contains(&shown) && e.message().contains(want),
                "{var}: {e}"
            );
        }
        let vars = [("AWS_CONFIG_FILE", "/dev/zero".to_owned())];
        let e = SdkFiles::read_with(env(&vars)).unwrap_err();
        assert!(e.message().contains("/dev/zero"), "{e}");
    }
}
