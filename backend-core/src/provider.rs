//! The provider contract: what a secret store implements, in one trait.
//!
//! A store is one type implementing [`Provider`]: its names ([`about!`]),
//! its config and flags, how it is built from them, and how it resolves a
//! batch of handles. The runner ([`crate::runner::main`]) does everything
//! else: flags, config file, stdin, the deadline, aliases, the reply, exit
//! codes. A complete store:
//!
//! ```
//! use backend_core::{Context, HandleError, NoArgs, NoConfig, Outcome, Provider, Secret};
//!
//! /// Answers every handle with its text reversed.
//! #[derive(Debug)]
//! pub struct Reverse;
//!
//! impl Provider for Reverse {
//!     const ABOUT: backend_core::About =
//!         backend_core::about!("secret-backend-reverse", "Every handle resolves to itself, reversed.");
//!     const NETWORK: bool = false;
//!     type Config = NoConfig;
//!     type Args = NoArgs;
//!
//!     fn build(_: NoConfig, _: NoArgs, _: &backend_core::protocol::Request) -> Result<Self, backend_core::ConfigError> {
//!         Ok(Reverse)
//!     }
//!
//!     async fn resolve(&self, handles: &[String], _ctx: &Context) -> Vec<Outcome> {
//!         handles
//!             .iter()
//!             .map(|h| match h.is_empty() {
//!                 true => Err(HandleError::invalid_handle("empty handle")),
//!                 false => Ok(Secret::new(h.chars().rev().collect())),
//!             })
//!             .collect()
//!     }
//! }
//!
//! // src/main.rs:
//! // fn main() -> std::process::ExitCode { backend_core::main::<Reverse>() }
//! ```
//!
//! A provider sees a list of distinct handles and a [`Context`] holding the
//! call's deadline, and answers with one [`Outcome`] per handle, in order. It
//! never touches stdin, stdout or exit codes. Taking the whole batch at once
//! lets it group handles by the secret they name, fetch each secret once,
//! batch requests and run them concurrently: [`fan_out`] is that shape.
//!
//! The deadline is the provider's to honour: wrap anything that waits on the
//! network in [`Context::within`] (or use [`bounded`], which does it per item)
//! so that whatever finished in time is kept and only the rest reports
//! `timed out`. The runner stops waiting a little after the deadline anyway,
//! but then every handle of the call is lost.
//!
//! Credentials a config holds inline are [`crate::Credential`]s: the runner
//! then warns about a config file others can read, with no list to keep.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::alias::Aliases;
use crate::error::{ConfigError, HandleError};
use crate::protocol::Request;
use crate::secret::Secret;

/// A boxed future, for [`Resolver`] trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer for one handle.
pub type Outcome = Result<Secret, HandleError>;

/// What a provider knows about the call it serves.
#[derive(Debug, Clone)]
pub struct Context {
    deadline: Instant,
    budget: Duration,
}

impl Context {
    /// A context whose work must be done by `deadline`; `budget` is the
    /// whole call's timeout as the caller set it (used in messages).
    pub fn new(deadline: Instant, budget: Duration) -> Self {
        Self { deadline, budget }
    }

    /// A context with `budget` from now, for tests and tools.
    pub fn with_budget(budget: Duration) -> Self {
        Self::new(Instant::now() + budget, budget)
    }

    /// When the provider's work must be finished.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The caller's timeout for the whole call.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The error a handle gets when the deadline passes before its answer.
    pub fn timed_out(&self) -> HandleError {
        HandleError::timed_out(self.budget)
    }

    /// Runs `fut` until the deadline; past it, the `timed out` error.
    pub async fn within<F: Future>(&self, fut: F) -> Result<F::Output, HandleError> {
        tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| self.timed_out())
    }
}

/// A store's names, for `--help`, `--version` and messages: made with
/// [`about!`], which fills in the calling crate's version.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The executable's name, e.g. `secret-backend-file`.
    pub binary: &'static str,
    /// The crate version.
    pub version: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
}

/// `about!("secret-backend-x", "One line for --help.")`: an [`About`] with
/// the calling crate's version.
#[macro_export]
macro_rules! about {
    ($binary:expr, $about:expr $(,)?) => {
        $crate::About {
            binary: $binary,
            version: env!("CARGO_PKG_VERSION"),
            about: $about,
        }
    };
}

/// The flags of a store that has none of its own.
#[derive(Debug, Default, Clone, Copy, clap::Args)]
pub struct NoArgs {}

/// The config of a store that takes none: an empty file, or none at all.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// A secret store: the one trait a provider crate implements.
///
/// Required: [`Provider::ABOUT`], the config and flag types, [`Provider::build`]
/// and [`Provider::resolve`]. The rest have defaults.
pub trait Provider: Sized + Send + Sync + 'static {
    /// The executable's name, version and `--help` line ([`about!`]).
    const ABOUT: About;
    /// Whether the provider does network I/O. Only then does the runtime
    /// start its I/O driver, and only then is the driver's code linked in:
    /// a store that reads files or answers from memory says `false`.
    const NETWORK: bool = true;
    /// The YAML config (`--config FILE`); use `#[serde(deny_unknown_fields)]`
    /// and [`crate::Credential`] for anything secret. [`NoConfig`] if none.
    type Config: DeserializeOwned + Default + fmt::Debug;
    /// The store's own flags, merged into the shared CLI. [`NoArgs`] if
    /// none. `Default` is the store without flags, as `secret-backend`
    /// builds it.
    type Args: clap::Args + Default + fmt::Debug;

    /// Builds the provider from its config and flags. `request` carries the
    /// caller's `type` and `config` for providers that honour them. No
    /// network here: logins happen in the first [`Provider::resolve`].
    /// Errors exit with code 2.
    fn build(
        config: Self::Config,
        args: Self::Args,
        request: &Request,
    ) -> Result<Self, ConfigError>;

    /// Resolves `handles` (distinct, in the caller's order) and returns one
    /// outcome per handle, in the same order.
    ///
    /// Errors are per handle: [`HandleError::not_found`] when the store has
    /// nothing there, `permission_denied` when it refuses, `invalid_handle`
    /// when the handle does not parse, `unavailable` when the store cannot be
    /// reached, `timed_out` past the deadline. A provider that returns fewer
    /// outcomes than handles is a bug; the runner reports the missing ones.
    fn resolve(
        &self,
        handles: &[String],
        ctx: &Context,
    ) -> impl Future<Output = Vec<Outcome>> + Send;

    /// Releases what the call acquired (a login token, say). The runner calls
    /// it after the reply is written, with what is left of the deadline.
    fn close(&self, _ctx: &Context) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Reads and [holds](crate::secret::hold) every credential the store
    /// would use that it has not read yet (token files, key files, token
    /// caches), sending nothing; a file it cannot read is skipped. Then no
    /// reply carries one of them even when no handle of this store is
    /// asked: `secret-backend` calls it on every configured store before
    /// any answers, since another store's handle (a `file@` path, a file
    /// backend's directory) can name this one's token file. Credentials
    /// read at [`Provider::build`] need nothing here; the default does
    /// nothing.
    fn hold_credentials(&self) {}

    /// Reads the `--config` file. The default parses YAML into
    /// [`Provider::Config`]; a store without configuration may override it
    /// so that its binary carries no YAML parser.
    fn load_config(path: &std::path::Path) -> Result<Self::Config, ConfigError> {
        crate::config::load(path)
    }

    /// The config's `aliases:` ([`crate::alias`]), for a store whose config
    /// has them. The runner resolves a requested alias as its target and
    /// keys the answer by the alias.
    fn aliases(_config: &Self::Config) -> Option<&Aliases> {
        None
    }

    /// Whether `handle` is one this store could resolve, told from its text
    /// and the config alone (no store, no file): the handle parser's
    /// verdict. Alias targets are checked with it when the config is
    /// loaded, so that a bad one is a config error naming the alias.
    fn check_handle(_config: &Self::Config, _handle: &str) -> Result<(), HandleError> {
        Ok(())
    }

    /// Checks every alias target when the config is loaded; by default each
    /// with [`Provider::check_handle`]. A store whose check needs preparing
    /// (`secret-backend` routes targets to its stores) prepares it once
    /// here, and one whose flags change what a handle means (the file
    /// store's `--dir` and `--document`) applies them.
    fn check_aliases(
        config: &Self::Config,
        _args: &Self::Args,
        aliases: &Aliases,
    ) -> Result<(), ConfigError> {
        aliases.check_targets(|target| Self::check_handle(config, target))
    }
}

/// Anything that answers a batch of handles, as a trait object: every
/// [`Provider`] is one, and so are the wrappers around one (aliases).
/// `secret-backend` holds its stores as `dyn Resolver`. Implement
/// [`Provider`], not this.
pub trait Resolver: Send + Sync {
    /// [`Provider::resolve`], boxed.
    fn resolve_boxed<'a>(
        &'a self,
        handles: &'a [String],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Vec<Outcome>>;

    /// [`Provider::close`], boxed.
    fn close_boxed<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, ()>;

    /// [`Provider::hold_credentials`], for a trait object.
    fn hold_all(&self);
}

impl<P: Provider> Resolver for P {
    fn resolve_boxed<'a>(
        &'a self,
        handles: &'a [String],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.resolve(handles, ctx))
    }

    fn close_boxed<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, ()> {
        Box::pin(self.close(ctx))
    }

    fn hold_all(&self) {
        self.hold_credentials();
    }
}

/// The answers of a call none of whose handles parsed: their own errors,
/// so that the store logs in and connects nowhere for it. `None` when at
/// least one handle parsed.
pub fn none_parsed<H>(parsed: &[Result<H, HandleError>]) -> Option<Vec<Outcome>> {
    parsed.iter().all(Result::is_err).then(|| {
        parsed
            .iter()
            .filter_map(|p| p.as_ref().err())
            .map(|e| Err(e.clone()))
            .collect()
    })
}

/// The common shape of a store's call: group the parsed handles by the
/// secret they name, fetch each distinct secret once, and fan the results
/// back out, one outcome per handle in order.
///
/// - `parsed`: each handle parsed (a parse error is that handle's answer,
///   and nothing is fetched for it), borrowed: keys may borrow from the
///   handles, so a request of 200,000 handles holds their names once;
/// - `key`: the secret a parsed handle names (handles with equal keys share
///   one fetch);
/// - `fetch`: fetches the distinct keys, one result per key in order
///   (usually [`bounded`] over a per-key fetch; a store that logs in first
///   or batches requests does that here). Not called when no handle parsed;
/// - `answer`: a handle's outcome from its secret's fetch result, which the
///   last handle naming that secret may [`Fetched::take`] rather than copy.
pub async fn fan_out<'p, H, K, V, Fut>(
    parsed: &'p [Result<H, HandleError>],
    key: impl Fn(&'p H) -> K,
    fetch: impl FnOnce(Vec<K>) -> Fut,
    mut answer: impl FnMut(&'p H, Result<Fetched<'_, V>, &HandleError>) -> Outcome,
) -> Vec<Outcome>
where
    K: Eq + Hash + Clone,
    Fut: Future<Output = Vec<Result<V, HandleError>>>,
{
    let (keys, of_handle) = group(parsed.iter().flatten().map(&key));
    // How many handles still want each key's result: the last one may move
    // it out instead of copying it.
    let mut wanted = vec![0u32; keys.len()];
    for &k in &of_handle {
        if let Some(w) = wanted.get_mut(k) {
            *w += 1;
        }
    }
    let mut fetched = if keys.is_empty() {
        Vec::new()
    } else {
        fetch(keys).await
    };
    let mut of_handle = of_handle.into_iter();
    parsed
        .iter()
        .map(|p| {
            let h = p.as_ref().map_err(Clone::clone)?;
            let k = of_handle.next();
            let (Some(result), Some(wanted)) = (
                k.and_then(|k| fetched.get_mut(k)),
                k.and_then(|k| wanted.get_mut(k)),
            ) else {
                return Err(HandleError::other(
                    "internal error: no fetch for this handle",
                ));
            };
            *wanted = wanted.saturating_sub(1);
            match result {
                Ok(value) => answer(
                    h,
                    Ok(Fetched {
                        value,
                        last: *wanted == 0,
                    }),
                ),
                Err(e) => answer(h, Err(e)),
            }
        })
        .collect()
}

/// One fetched secret as one of the handles naming it sees it (in
/// [`fan_out`]'s `answer`): read it through `Deref`, or [`take`] it.
///
/// [`take`]: Fetched::take
pub struct Fetched<'f, V> {
    value: &'f mut V,
    last: bool,
}

impl<V: Clone + Default> Fetched<'_, V> {
    /// The value itself: moved out for the last handle naming it (the
    /// default is left behind), copied for the others. A request of
    /// 200,000 distinct handles then holds each value once, not twice.
    pub fn take(self) -> V {
        if self.last {
            std::mem::take(self.value)
        } else {
            self.value.clone()
        }
    }
}

impl<V> fmt::Debug for Fetched<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be a secret: never shown.
        f.debug_struct("Fetched")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<V> std::ops::Deref for Fetched<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.value
    }
}

impl<V> std::ops::DerefMut for Fetched<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.value
    }
}

/// Runs `fetch` on every item, at most `limit` at once, each bounded by the
/// deadline; returns the results in the order of `items`.
///
/// Items still running at the deadline get the `timed out` error; items that
/// finished keep their result.
pub async fn bounded<'a, I, R, F, Fut>(
    items: &'a [I],
    limit: usize,
    ctx: &Context,
    fetch: F,
) -> Vec<Result<R, HandleError>>
where
    F: Fn(&'a I) -> Fut,
    Fut: Future<Output = Result<R, HandleError>>,
{
    let mut results: Vec<Option<Result<R, HandleError>>> = (0..items.len()).map(|_| None).collect();
    // Futures are made as slots free up, never all at once: a request of
    // 200,000 handles holds `limit` fetches in memory, not 200,000.
    let run = |i: usize, item: &'a I| {
        let fut = fetch(item);
        async move { (i, ctx.within(fut).await.and_then(|r| r)) }
    };
    let mut pending = items.iter().enumerate();
    let mut running = FuturesUnordered::new();
    for (i, item) in pending.by_ref().take(limit.max(1)) {
        running.push(run(i, item));
    }
    while let Some((i, result)) = running.next().await {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(result);
        }
        // Past the deadline nothing new starts: an item's first poll (a
        // request built, a connection task spawned) costs time even when
        // its timeout is already over, and tens of thousands of them
        // would hold the call past the reply's deadline, losing every
        // answer that did come in time. The rest are `timed out`.
        if Instant::now() >= ctx.deadline() {
            continue;
        }
        if let Some((i, item)) = pending.next() {
            running.push(run(i, item));
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ctx.timed_out())))
        .collect()
}

/// Groups items by a key: returns the distinct keys in first-seen order and,
/// for each item, the index of its key. Providers use it to fetch each secret
/// once however many handles name it.
pub fn group<K: Eq + Hash + Clone>(keys: impl IntoIterator<Item = K>) -> (Vec<K>, Vec<usize>) {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut distinct = Vec::new();
    let mut of_item = Vec::new();
    for key in keys {
        let i = *index.entry(key.clone()).or_insert_with(|| {
            distinct.push(key);
            distinct.len() - 1
        });
        of_item.push(i);
    }
    (distinct, of_item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keeps_first_seen_order() {
        let (keys, idx) = group(["b", "a", "b", "c", "a"]);
        assert_eq!(keys, vec!["b", "a", "c"]);
        assert_eq!(idx, vec![0, 1, 0, 2, 1]);
    }

    #[tokio::test]
    async fn fan_out_fetches_each_key_once_and_answers_in_order() {
        let parsed: Vec<Result<(&str, u8), HandleError>> = vec![
            Ok(("a", 1)),
            Err(HandleError::invalid_handle("bad")),
            Ok(("b", 2)),
            Ok(("a", 3)),
        ];
        let asked = std::cell::RefCell::new(Vec::new());
        let out = fan_out(
            &parsed,
            |h| h.0,
            |keys| {
                asked.borrow_mut().extend(keys.clone());
                std::future::ready(
                    keys.into_iter()
                        .map(|k| match k {
                            "a" => Ok(String::from("A")),
                            _ => Err(HandleError::not_found("no b")),
                        })
                        .collect(),
                )
            },
            |h, v| match v {
                Ok(v) => Ok(Secret::new(format!("{}{}", *v, h.1))),
                Err(e) => Err(e.clone().context(h.0)),
            },
        )
        .await;
        assert_eq!(*asked.borrow(), vec!["a", "b"]);
        let shown: Vec<String> = out
            .iter()
            .map(|o| match o {
                Ok(v) => v.expose().to_owned(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(shown, ["A1", "bad", "b: no b", "A3"]);
    }

    #[tokio::test]
    async fn fan_out_moves_each_value_to_its_last_handle() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CLONES: AtomicUsize = AtomicUsize::new(0);
        #[derive(Default)]
        struct Counted(String);
        impl Clone for Counted {
            fn clone(&self) -> Self {
                CLONES.fetch_add(1, Ordering::SeqCst);
                Counted(self.0.clone())
            }
        }
        let parsed: Vec<Result<&str, HandleError>> =
            vec![Ok("a"), Ok("b"), Ok("a"), Ok("a"), Ok("c")];
        let out = fan_out(
            &parsed,
            |h| *h,
            |keys| std::future::ready(keys.iter().map(|k| Ok(Counted(k.to_uppercase()))).collect()),
            |_, v| Ok(Secret::new(v.map_err(Clone::clone)?.take().0)),
        )
        .await;
        let shown: Vec<&str> = out.iter().flatten().map(Secret::expose).collect();
        assert_eq!(shown, ["A", "B", "A", "A", "C"]);
        // "a" is named three times: copied for the first two, moved to the
        // third; "b" and "c" are moved.
        assert_eq!(CLONES.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_keeps_finished_results_and_times_out_the_rest() {
        let ctx = Context::with_budget(Duration::from_secs(1));
        let items = [10u64, 5000, 20];
        let out = bounded(&items, 2, &ctx, |ms| async move {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Ok::<_, HandleError>(*ms)
        })
        .await;
        assert_eq!(out[0], Ok(10));
        assert_eq!(
            out[1].as_ref().map_err(HandleError::kind),
            Err(crate::ErrorKind::TimedOut)
        );
        assert_eq!(out[2], Ok(20));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_starts_nothing_past_the_deadline() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let started = AtomicUsize::new(0);
        let items: Vec<u64> = (0..1000).collect();
        let ctx = Context::with_budget(Duration::from_millis(100));
        let out = bounded(&items, 4, &ctx, |_| async {
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, HandleError>(())
        })
        .await;
        // 4 at a time, 30 ms each, 100 ms: a few rounds, not 1,000 starts.
        let n = started.load(Ordering::SeqCst);
        assert!((4..=20).contains(&n), "{n} started");
        assert_eq!(
            out.iter().filter(|r| r.is_ok()).count()
                + out
                    .iter()
                    .filter(|r| r
                        .as_ref()
                        .is_err_and(|e| e.kind() == crate::ErrorKind::TimedOut))
                    .count(),
            1000
        );
        assert!(out.iter().filter(|r| r.is_ok()).count() >= 4);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_respects_the_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..50).collect();
        let ctx = Context::with_budget(Duration::from_secs(60));
        let out = bounded(&items, 4, &ctx, |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, HandleError>(())
        })
        .await;
        assert_eq!(out.len(), 50);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }
}
