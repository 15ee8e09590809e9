//! backend-file: secrets from mounted files and from documents.
//!
//! Docker and Kubernetes hand secrets to a container as files (one file per
//! secret under `/run/secrets`, a secret volume with one file per key);
//! others keep a JSON, YAML or `.env` document readable only by the agent.
//! This provider serves both, in one of two modes:
//!
//! - **Directory mode** (the default, root `/run/secrets`): a handle is a
//!   path under the root, `prod/api_key`, optionally with `;key` to read
//!   the file as a document and pick one value (`db.json;/nested/pw`).
//! - **Document mode** (`document:`): one document; the handle is the key.
//!
//! Safety against hostile handles does not rest on string checks: every
//! file is opened through cap-std beneath the root directory, which
//! resolves `..` and symlinks itself and refuses whatever leads outside (a
//! Kubernetes volume's `key -> ..data/key -> ..2024_.../key` chain stays
//! inside and works). [`handle`] only turns the obvious mistakes into
//! clearer messages. Files are read whole or refused: over the size limit,
//! not UTF-8, not a regular file, or empty.
//!
//! Each distinct file is read once per call, however many keys of it the
//! call asks for, and the document of document mode is read and parsed
//! once. The reads block, so they run on detached threads: a few
//! workers for the whole batch (not a thread per file: a call may name
//! thousands), each taking the next file and sending its result as soon as
//! it has it. The call waits for them only until the deadline, so a hung
//! filesystem costs the files not read by then, not the whole reply.

pub mod document;
pub mod dotenv;
pub mod handle;
pub mod read;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backend_core::key::extract;
use backend_core::protocol::Request;
use backend_core::runner::shorten;
use backend_core::{
    Aliases, ConfigError, Context, HandleError, Outcome, Provider, Secret, fan_out,
};
use cap_std::fs::Dir;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::document::{Doc, Format};
use crate::handle::Target;
use crate::read::Shape;

/// The root of directory mode when neither `dir` nor `document` is set:
/// where Docker mounts secrets.
pub const DEFAULT_DIR: &str = "/run/secrets";
/// Default `max_file_bytes`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024;
/// Largest `max_file_bytes` accepted: a file is held in memory whole, and
/// the agent takes at most 1 MiB of reply anyway.
pub const MAX_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Blocking workers reading the files of one call.
const WORKERS: usize = 4;

/// The YAML config (`--config FILE`); every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Directory mode: the root handles are relative to. When neither this
    /// nor `document` is set, [`DEFAULT_DIR`].
    pub dir: Option<PathBuf>,
    /// Document mode: the JSON, YAML or `.env` file whose keys are the
    /// handles. Exclusive with `dir`.
    pub document: Option<PathBuf>,
    /// Remove one trailing `\n` or `\r\n` from whole-file values.
    pub trim_trailing_newline: bool,
    /// Largest file read, in bytes; larger files are refused, not truncated.
    pub max_file_bytes: u64,
    /// Names that stand for handles ([`backend_core::alias`]).
    pub aliases: Aliases,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            dir: None,
            document: None,
            trim_trailing_newline: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            aliases: Aliases::default(),
        }
    }
}

/// Flags of `secret-backend-file`; each overrides its config key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FileArgs {
    /// Directory mode: serve files under DIR [default: /run/secrets].
    /// Replaces a `document` from the config file.
    #[arg(long, value_name = "DIR", conflicts_with = "document")]
    pub dir: Option<PathBuf>,
    /// Document mode: serve the keys of this JSON, YAML or .env file.
    /// Replaces a `dir` from the config file.
    #[arg(long, value_name = "FILE")]
    pub document: Option<PathBuf>,
    /// Remove one trailing newline (\n or \r\n) from whole-file values.
    #[arg(long)]
    pub trim_trailing_newline: bool,
    /// Largest file read, in bytes; larger files are refused [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
}

impl FileConfig {
    /// The config with `args` applied over it: a mode flag replaces the
    /// config's mode, the other flags their key.
    #[must_use]
    pub fn merge(mut self, args: FileArgs) -> Self {
        if let Some(dir) = args.dir {
            self.dir = Some(dir);
            self.document = None;
        }
        if let Some(document) = args.document {
            self.document = Some(document);
            self.dir = None;
        }
        self.trim_trailing_newline |= args.trim_trailing_newline;
        if let Some(max) = args.max_file_bytes {
            self.max_file_bytes = max;
        }
        self
    }
}

/// Where the values come from.
#[derive(Debug, Clone)]
enum Source {
    Dir(PathBuf),
    Document(PathBuf),
}

/// The file provider.
#[derive(Debug, Clone)]
pub struct FileProvider {
    source: Source,
    trim: bool,
    limit: u64,
}

impl FileProvider {
    /// Validates `config` into a provider. The directory or document need
    /// not exist yet: a missing one is a per-handle error at each call.
    pub fn new(config: FileConfig) -> Result<Self, ConfigError> {
        let non_empty = |p: PathBuf, key: &str| {
            if p.as_os_str().is_empty() {
                Err(ConfigError::new(format!("{key}: empty path")))
            } else {
                Ok(p)
            }
        };
        let source = match (config.dir, config.document) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "dir and document are exclusive: set dir to serve the files under a directory, \
                     or document to serve the keys of one file",
                ));
            }
            (Some(dir), None) => Source::Dir(non_empty(dir, "dir")?),
            (None, Some(doc)) => Source::Document(non_empty(doc, "document")?),
            (None, None) => Source::Dir(PathBuf::from(DEFAULT_DIR)),
        };
        if !(1..=MAX_MAX_FILE_BYTES).contains(&config.max_file_bytes) {
            return Err(ConfigError::new(format!(
                "max_file_bytes: {} is out of range (1 to {MAX_MAX_FILE_BYTES})",
                config.max_file_bytes
            )));
        }
        Ok(Self {
            source,
            trim: config.trim_trailing_newline,
            limit: config.max_file_bytes,
        })
    }

    async fn resolve_dir(&self, root: &Path, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        let targets: Vec<Result<Target<'_>, HandleError>> =
            handles.iter().map(|h| handle::parse(h)).collect();
        let keyed = keyed_paths(&targets);
        fan_out(
            &targets,
            |t| t.path,
            |paths| {
                load_files(
                    root.to_owned(),
                    jobs(paths, &keyed),
                    self.limit,
                    ctx,
                    load_in,
                )
            },
            |target, file| self.value_of(*target, &*file.map_err(Clone::clone)?),
        )
        .await
    }

    /// The value a handle asks for, from its loaded file.
    fn value_of(&self, target: Target<'_>, file: &Loaded) -> Outcome {
        let location = shorten(target.path);
        match (target.key, &file.doc) {
            (None, _) => whole_file(&file.text, self.trim, &location),
            (Some(key), Some(Ok(doc))) => keyed(doc, key, &location),
            (Some(_), Some(Err(e))) => Err(e.clone()),
            (Some(_), None) => Err(HandleError::other(format!(
                "{location}: internal error: the document was not parsed"
            ))),
        }
    }

    async fn resolve_document(
        &self,
        path: &Path,
        handles: &[String],
        ctx: &Context,
    ) -> Vec<Outcome> {
        let location = path.display().to_string();
        let (owned_path, limit) = (path.to_owned(), self.limit);
        let (tx, rx) = oneshot::channel();
        let started = detached(move || {
            let name = owned_path.to_string_lossy().into_owned();
            let doc = load_ambient(&owned_path, limit, &location)
                .and_then(|text| parse_doc(&name, &text, &location));
            // An error means the call is over.
            let _ = tx.send(doc);
        });
        let location = path.display().to_string();
        let doc = match started {
            Err(e) => Err(HandleError::other(format!("{location}: {e}"))),
            Ok(()) => match ctx.within(rx).await {
                Ok(Ok(doc)) => doc,
                Ok(Err(_)) => Err(HandleError::other(format!(
                    "{location}: internal error: the reading thread stopped"
                ))),
                Err(timed_out) => Err(timed_out.context(&location)),
            },
        };
        handles
            .iter()
            .map(|key| match &doc {
                Ok(doc) => document_key(key, &location).and_then(|()| keyed(doc, key, &location)),
                Err(e) => Err(e.clone()),
            })
            .collect()
    }
}

impl Provider for FileProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-file",
        "Secret backend serving mounted secret files (Docker, Kubernetes) \
         and the keys of JSON, YAML or .env documents."
    );
    const NETWORK: bool = false;
    type Config = FileConfig;
    type Args = FileArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        match &self.source {
            Source::Dir(root) => self.resolve_dir(root, handles, ctx).await,
            Source::Document(path) => self.resolve_document(path, handles, ctx).await,
        }
    }

    /// The event reader, as for YAML documents (serde-saphyr would add
    /// about 0.5 MB to this binary).
    fn load_config(path: &Path) -> Result<FileConfig, ConfigError> {
        backend_core::config::load_flat(path)
    }

    fn aliases(config: &FileConfig) -> Option<&Aliases> {
        Some(&config.aliases)
    }

    /// By the config's mode: a document's key, or a path under the
    /// directory.
    fn check_handle(config: &FileConfig, handle: &str) -> Result<(), HandleError> {
        match &config.document {
            Some(path) => document_key(handle, &path.display().to_string()),
            None => handle::parse(handle).map(drop),
        }
    }

    /// By the mode the flags leave (`--document` over a config without
    /// one makes targets document keys).
    fn check_aliases(
        config: &FileConfig,
        args: &FileArgs,
        aliases: &Aliases,
    ) -> Result<(), ConfigError> {
        let mode = config.clone().merge(args.clone());
        aliases.check_targets(|target| Self::check_handle(&mode, target))
    }

    fn build(config: FileConfig, args: FileArgs, _: &Request) -> Result<Self, ConfigError> {
        Self::new(config.merge(args))
    }
}

/// Whether `key` can name a key of the document at `location`.
fn document_key(key: &str, location: &str) -> Result<(), HandleError> {
    if key.is_empty() {
        return Err(HandleError::invalid_handle(format!(
            "{location}: empty handle: name a key of the document"
        )));
    }
    handle::check_key(key, location)
}

/// A whole file as a value: the newline trimmed if asked, never empty.
fn whole_file(text: &str, trim: bool, location: &str) -> Outcome {
    let value = if trim { read::trim_newline(text) } else { text };
    if value.is_empty() {
        let after = if trim && !text.is_empty() {
            " (after removing the trailing newline)"
        } else {
            ""
        };
        return Err(HandleError::not_found(format!(
            "{location}: the file is empty{after}"
        )));
    }
    Ok(Secret::from(value))
}

/// `key` of a document, never empty.
fn keyed(doc: &Doc, key: &str, location: &str) -> Outcome {
    let value = extract(doc.value(), key, location)?;
    if value.is_empty() {
        return Err(HandleError::not_found(format!(
            "{location}: key '{}' is empty",
            shorten(key)
        )));
    }
    Ok(value)
}

/// The files some handle asks a key of (their documents get parsed).
fn keyed_paths<'h>(targets: &[Result<Target<'h>, HandleError>]) -> HashSet<&'h str> {
    targets
        .iter()
        .flatten()
        .filter(|t| t.key.is_some())
        .map(|t| t.path)
        .collect()
}

/// The distinct files of a call, each to be parsed as a document when
/// some handle asks for one of its keys.
fn jobs(paths: Vec<&str>, keyed: &HashSet<&str>) -> Vec<Job> {
    paths
        .into_iter()
        .map(|path| Job {
            path: path.to_owned(),
            parse: keyed.contains(path),
        })
        .collect()
}

/// One distinct file of a call, and whether some handle wants its keys.
#[derive(Debug)]
struct Job {
    path: String,
    parse: bool,
}

/// A file as read: its text, and its document when a handle has a key.
/// No `Debug`: `Zeroizing`'s would print the text.
struct Loaded {
    text: Zeroizing<String>,
    doc: Option<Result<Doc, HandleError>>,
}

/// The blocking work done for one file (a parameter so that tests can
/// stand in a filesystem that hangs).
type Loader = fn(&Dir, &Job, u64) -> Result<Loaded, HandleError>;

/// Runs `load` for every job on a few detached threads; waits until the
/// deadline.
async fn load_files(
    root: PathBuf,
    jobs: Vec<Job>,
    limit: u64,
    ctx: &Context,
    load: Loader,
) -> Vec<Result<Loaded, HandleError>> {
    let count = jobs.len();
    let workers = count.min(WORKERS);
    let jobs = Arc::new(jobs);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Workers take the next job from a shared counter, so a file that
    // hangs holds up one worker, not the files queued behind it.
    let next = Arc::new(AtomicUsize::new(0));
    let mut not_started = None;
    for _ in 0..workers {
        let (root, jobs, tx, next) = (
            root.clone(),
            Arc::clone(&jobs),
            tx.clone(),
            Arc::clone(&next),
        );
        let started = detached(move || {
            let dir = Dir::open_ambient_dir(&root, cap_std::ambient_authority());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else {
                    return;
                };
                let loaded = match &dir {
                    Ok(dir) => load(dir, job, limit),
                    Err(e) => Err(root_error(&shorten(&job.path), &root, e)),
                };
                if tx.send((i, loaded)).is_err() {
                    return; // the call is over
                }
            }
        });
        if let Err(e) = started {
            // The workers already started take the jobs; with none, every
            // file gets this error.
            not_started = Some(e);
            break;
        }
    }
    drop(tx);
    let mut results: Vec<Option<Result<Loaded, HandleError>>> = (0..count).map(|_| None).collect();
    let mut missing = count;
    let mut timed_out = false;
    while missing > 0 {
        match ctx.within(rx.recv()).await {
            Ok(Some((i, loaded))) => {
                if let Some(slot @ None) = results.get_mut(i) {
                    *slot = Some(loaded);
                    missing -= 1;
                }
            }
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    results
        .into_iter()
        .zip(jobs.iter())
        .map(|(r, job)| {
            r.unwrap_or_else(|| {
                let location = shorten(&job.path);
                Err(match (&not_started, timed_out) {
                    (_, true) => ctx.timed_out().context(location),
                    (Some(e), false) => HandleError::other(format!("{location}: {e}")),
                    (None, false) => HandleError::other(format!(
                        "{location}: internal error: the file was not read"
                    )),
                })
            })
        })
        .collect()
}

/// Runs `f` on a thread of its own, detached: past the deadline the call
/// answers without waiting for it, and the process exits. Plain threads, not
/// tokio's blocking pool: the same few threads for about 10 KB less binary.
fn detached(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name("file-reader".into())
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("cannot start a thread to read it: {e}"))
}

/// Reads (and parses, if asked) one job's file beneath `dir`.
fn load_in(dir: &Dir, job: &Job, limit: u64) -> Result<Loaded, HandleError> {
    let location = shorten(&job.path);
    let io = |e: std::io::Error| read::io_error(&location, &e);
    let file = read::open_in(dir, &job.path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let shape = Shape {
        is_dir: meta.is_dir(),
        is_file: meta.is_file(),
        len: meta.len(),
    };
    let text = read::read_text(file, shape, limit, &location)?;
    let doc = job.parse.then(|| parse_doc(&job.path, &text, &location));
    Ok(Loaded { text, doc })
}

/// Reads the operator's document (document mode).
fn load_ambient(path: &Path, limit: u64, location: &str) -> Result<Zeroizing<String>, HandleError> {
    let io = |e: std::io::Error| read::io_error(location, &e);
    let file = read::open_ambient(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let shape = Shape {
        is_dir: meta.is_dir(),
        is_file: meta.is_file(),
        len: meta.len(),
    };
    read::read_text(file, shape, limit, location)
}

/// Parses a file's text as the document its `name` or content says it is.
fn parse_doc(name: &str, text: &str, location: &str) -> Result<Doc, HandleError> {
    document::parse(text, Format::of(name, text))
        .map_err(|cause| HandleError::other(format!("{location}: {cause}")))
}

/// The error every handle gets when the secrets directory cannot be opened.
fn root_error(location: &str, root: &Path, e: &std::io::Error) -> HandleError {
    let root = root.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => HandleError::not_found(format!(
            "{location}: the secrets directory {root} does not exist"
        )),
        std::io::ErrorKind::PermissionDenied => HandleError::permission_denied(format!(
            "{location}: the secrets directory {root}: permission denied"
        )),
        std::io::ErrorKind::NotADirectory => HandleError::unavailable(format!(
            "{location}: the secrets directory {root} is not a directory"
        )),
        _ => HandleError::unavailable(format!("{location}: the secrets directory {root}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;
    use backend_core::testkit::{Cases, check};

    use super::*;

    fn handles(list: &[&str]) -> Vec<String> {
        list.iter().map(|h| (*h).to_owned()).collect()
    }

    #[test]
    fn each_file_is_planned_once() {
        let hs = handles(&[
            "db.json;user",
            "a",
            "db.json;/pw",
            "/abs",
            "a",
            "db.json",
            "b;k",
        ]);
        let targets: Vec<_> = hs.iter().map(|h| handle::parse(h)).collect();
        assert!(targets.get(3).is_some_and(Result::is_err));
        let (paths, file_of) = backend_core::group(targets.iter().flatten().map(|t| t.path));
        let jobs = jobs(paths, &keyed_paths(&targets));
        let jobs: Vec<(&str, bool)> = jobs.iter().map(|j| (j.path.as_str(), j.parse)).collect();
        assert_eq!(jobs, vec![("db.json", true), ("a", false), ("b", true)]);
        assert_eq!(file_of, vec![0, 1, 0, 1, 0, 2]);
    }

    #[test]
    fn config_modes_and_limits() {
        let p = FileProvider::new(FileConfig::default()).unwrap();
        assert!(matches!(&p.source, Source::Dir(d) if d == Path::new(DEFAULT_DIR)));
        assert_eq!(p.limit, DEFAULT_MAX_FILE_BYTES);
        assert!(!p.trim);
        let both = FileConfig {
            dir: Some("/a".into()),
            document: Some("/b.json".into()),
            ..FileConfig::default()
        };
        let e = FileProvider::new(both.clone()).unwrap_err().to_string();
        assert!(e.contains("exclusive"), "{e}");
        for bad in [0, MAX_MAX_FILE_BYTES + 1] {
            let c = FileConfig {
                max_file_bytes: bad,
                ..FileConfig::default()
            };
            assert!(
                FileProvider::new(c)
                    .unwrap_err()
                    .to_string()
                    .contains("max_file_bytes")
            );
        }
        let empty = FileConfig {
            document: Some(PathBuf::new()),
            ..FileConfig::default()
        };
        assert!(FileProvider::new(empty).is_err());
        // A mode flag replaces the config's mode instead of clashing with it.
        let merged = both.clone().merge(FileArgs {
            dir: Some("/c".into()),
            ..FileArgs::default()
        });
        assert_eq!(
            (merged.dir.as_deref(), merged.document.as_deref()),
            (Some(Path::new("/c")), None)
        );
        let merged = both.merge(FileArgs {
            document: Some("/d.yaml".into()),
            trim_trailing_newline: true,
            max_file_bytes: Some(10),
            ..FileArgs::default()
        });
        assert_eq!(merged.dir, None);
        assert!(merged.trim_trailing_newline);
        assert_eq!(merged.max_file_bytes, 10);
    }

    #[test]
    fn config_yaml_refuses_unknown_keys() {
        let c: FileConfig =
            backend_core::config::from_yaml("dir: /s\ntrim_trailing_newline: true\n").unwrap();
        assert_eq!(c.dir.as_deref(), Some(Path::new("/s")));
        assert_eq!(c.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
        let e = backend_core::config::from_yaml::<FileConfig>("directory: /s\n").unwrap_err();
        assert!(e.contains("directory"), "{e}");
    }

    fn write(root: &Path, path: &str, text: &str) {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(full, text).unwrap();
    }

    fn dir_provider(root: &Path) -> FileProvider {
        FileProvider::new(FileConfig {
            dir: Some(root.to_owned()),
            ..FileConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn conformance_directory_mode() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "db_password", "hunter2");
        write(d.path(), "prod/api_key", "k-123");
        write(
            d.path(),
            "db.json",
            r#"{"user":"admin","password":"s3cr3t"}"#,
        );
        write(d.path(), "db.yaml", "nested:\n  pw: deep\n");
        let found = [
            ("db_password", "hunter2"),
            ("prod/api_key", "k-123"),
            ("db.json;user", "admin"),
            ("db.json;password", "s3cr3t"),
            ("db.yaml;/nested/pw", "deep"),
        ]
        .iter()
        .map(|(h, v)| ((*h).to_owned(), (*v).to_owned()))
        .collect();
        let cases = Cases {
            found,
            missing: handles(&["missing", "prod/missing", "db.json;missing"]),
            budget: None,
        };
        check(&dir_provider(d.path()), &cases).await;
    }

    #[tokio::test]
    async fn conformance_document_mode() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "s.json",
            r#"{"password":"s3cr3t","db":{"user":"admin"}}"#,
        );
        let p = FileProvider::new(FileConfig {
            document: Some(d.path().join("s.json")),
            ..FileConfig::default()
        })
        .unwrap();
        let cases = Cases {
            found: vec![
                ("password".into(), "s3cr3t".into()),
                ("/db/user".into(), "admin".into()),
            ],
            missing: handles(&["missing", "/db/missing"]),
            budget: None,
        };
        check(&p, &cases).await;
    }

    #[tokio::test]
    async fn a_missing_root_fails_every_handle() {
        let d = tempfile::tempdir().unwrap();
        let p = dir_provider(&d.path().join("absent"));
        let hs = handles(&["a", "b;k", "../x"]);
        let out = p
            .resolve(
                &hs,
                &Context::with_budget(std::time::Duration::from_secs(5)),
            )
            .await;
        let kinds: Vec<ErrorKind> = out.iter().map(|o| o.as_ref().unwrap_err().kind()).collect();
        assert_eq!(
            kinds,
            vec![
                ErrorKind::NotFound,
                ErrorKind::NotFound,
                ErrorKind::PermissionDenied
            ]
        );
        let msg = out[0].as_ref().unwrap_err().to_string();
        assert!(
            msg.starts_with("a: the secrets directory ") && msg.ends_with("does not exist"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_hung_file_times_out_by_name_and_the_rest_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let mut names = vec!["hangs".to_owned()];
        names.extend((0..19).map(|i| format!("f{i}")));
        for n in &names {
            write(d.path(), n, "v");
        }
        // A filesystem that does not answer for one file, the first one:
        // the other workers read the rest meanwhile.
        fn hanging(dir: &Dir, job: &Job, limit: u64) -> Result<Loaded, HandleError> {
            if job.path == "hangs" {
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
            load_in(dir, job, limit)
        }
        let jobs: Vec<Job> = jobs(names.iter().map(String::as_str).collect(), &HashSet::new());
        let budget = std::time::Duration::from_secs(2);
        let ctx = Context::with_budget(budget);
        let started = std::time::Instant::now();
        let loaded = load_files(d.path().to_owned(), jobs, 100, &ctx, hanging).await;
        assert!(started.elapsed() < std::time::Duration::from_millis(3500));
        let (first, rest) = loaded.split_first().unwrap();
        for file in rest {
            assert_eq!(file.as_ref().map(|f| f.text.as_str()).ok(), Some("v"));
        }
        let e = first.as_ref().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "hangs: timed out after 2s");
    }
}
