//! `main` for every backend executable: read, parse, resolve under one
//! deadline, cap, write once, exit.
//!
//! Exit codes: 0 whenever a reply was written (even if every handle failed:
//! the per-handle errors are in it), 1 when the request is unusable or the
//! reply could not be written, 2 for bad configuration or usage.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::time::Instant;

use crate::alias::{Aliased, Aliases};
use crate::config;
use crate::error::{ConfigError, HandleError};
use crate::logging;
use crate::protocol::{Entry, Reply, Request, RequestError};
use crate::provider::{Context, Outcome, Provider, Resolver};
use crate::secret;
use crate::watchdog;

/// The timeout when neither `--timeout` nor the request sets one: the
/// shortest default among our callers (Datadog before 7.30, Vector).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default input limit (`--max-input-bytes`).
pub const DEFAULT_MAX_INPUT: usize = 4 * 1024 * 1024;
/// Default output limit (`--max-output-bytes`): the agent's own cap.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// The git revision the binary was built from (`unknown` outside a checkout).
pub const GIT_REV: &str = env!("SECRET_BACKEND_GIT_REV");

/// Exit code: a reply was written.
pub const EXIT_OK: u8 = 0;
/// Exit code: the request was unusable, or the reply could not be written.
pub const EXIT_BAD_REQUEST: u8 = 1;
/// Exit code: bad configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: stopped by SIGTERM before the reply (128 + 15, as a shell says).
pub const EXIT_TERMINATED: u8 = 143;

/// Options every backend executable shares.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// YAML config file; unknown keys are an error.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Deadline for the whole call, in seconds [default: the request's
    /// secret_backend_timeout, else 5].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, global = true)]
    pub timeout: Option<Duration>,
    /// Largest request accepted on stdin.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT, global = true)]
    pub max_input_bytes: usize,
    /// Largest reply written; the largest values are dropped to fit.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OUTPUT, global = true)]
    pub max_output_bytes: usize,
    /// Log filter: off, error, warn, info, debug, trace, or target=level list.
    #[arg(long, value_name = "LEVEL", env = logging::LOG_ENV, global = true)]
    pub log_level: Option<String>,
    /// Also append log lines to this file (created with mode 0600).
    #[arg(long, value_name = "PATH", global = true)]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve HANDLEs given as arguments and print the reply (for an
    /// operator at a terminal).
    Get {
        /// Handles, as they appear inside ENC[...].
        #[arg(required = true)]
        handles: Vec<String>,
    },
}

#[derive(Debug, Parser)]
struct Cli<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    provider: A,
    #[command(subcommand)]
    command: Option<Command>,
}

const AFTER_HELP: &str = "\
Without a command, reads one request from stdin, as the agent writes it:
  {\"version\":\"1.0\",\"secrets\":[\"handle1\",\"handle2\"]}
and writes one reply to stdout:
  {\"handle1\":{\"value\":\"...\",\"error\":null},\"handle2\":{\"value\":null,\"error\":\"...\"}}

Exit codes:
  0  a reply was written (handles that failed carry their error in it)
  1  the request was unusable (not JSON, wrong version, too large, ...) or the reply could not be written
  2  bad configuration or usage";

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    // Under a millisecond is refused too: 1e-12 would become a deadline of
    // zero, past before the config is loaded.
    if !(secs >= 0.001 && secs <= crate::protocol::MAX_TIMEOUT.as_secs_f64()) {
        return Err(format!(
            "timeout must be between 0.001 and {} seconds",
            crate::protocol::MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs a backend executable; its `main` is `backend_core::main::<P>()`.
pub fn main<P: Provider>() -> ExitCode {
    let start = Instant::now();
    let cli = match parse_cli::<P>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Err(e) = logging::init(
        cli.common.log_level.as_deref(),
        cli.common.log_file.as_deref(),
    ) {
        report(P::ABOUT.binary, &e);
        return ExitCode::from(EXIT_CONFIG);
    }
    // Until the request says otherwise, the deadline is --timeout's or the
    // default: a caller that never finishes its request is not waited for.
    watchdog::start(
        start.into_std(),
        cli.common.timeout.unwrap_or(DEFAULT_TIMEOUT),
    );
    match run::<P>(cli, start) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Request(e)) => {
            tracing::error!("unusable request: {e}");
            ExitCode::from(EXIT_BAD_REQUEST)
        }
        Err(Failure::Config(e)) => {
            tracing::error!("configuration error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Write(e)) => {
            tracing::error!("could not write the reply: {e}");
            ExitCode::from(EXIT_BAD_REQUEST)
        }
        Err(Failure::Oversized { min, max }) => {
            tracing::error!(
                "the reply is {min} bytes even with every value left out and every error shortened, over the output limit of {max} bytes (--max-output-bytes): nothing written, the agent would refuse it"
            );
            ExitCode::from(EXIT_BAD_REQUEST)
        }
        Err(Failure::Terminated) => {
            tracing::warn!("terminated (SIGTERM) before the reply was written");
            ExitCode::from(EXIT_TERMINATED)
        }
    }
}

/// One line on stderr, before logging exists. A stderr that cannot be
/// written (a pipe whose reader is gone) loses the line: `eprintln!` would
/// panic there (exit 101) instead of exiting with the code the error has.
fn report(binary: &str, e: &dyn fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{binary}: error: {e}");
}

fn parse_cli<P: Provider>() -> Result<Cli<P::Args>, ExitCode> {
    let command = Cli::<P::Args>::command()
        .name(P::ABOUT.binary)
        .bin_name(P::ABOUT.binary)
        // Built once per process; leaking it gives clap the 'static str it wants.
        .version(&*Box::leak(
            format!("{} (git {GIT_REV})", P::ABOUT.version).into_boxed_str(),
        ))
        .about(P::ABOUT.about)
        .after_help(AFTER_HELP)
        .args_conflicts_with_subcommands(false);
    let parsed = command
        .try_get_matches()
        .and_then(|m| Cli::<P::Args>::from_arg_matches(&m));
    parsed.map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { EXIT_CONFIG } else { EXIT_OK })
    })
}

enum Failure {
    Request(RequestError),
    Config(ConfigError),
    Write(io::Error),
    Oversized { min: usize, max: usize },
    Terminated,
}

fn run<P: Provider>(cli: Cli<P::Args>, start: Instant) -> Result<u8, Failure> {
    let config: P::Config = match &cli.common.config {
        Some(path) => {
            // Credentials inline are counted as the config deserializes
            // them ([`crate::Credential`]): no list of keys to keep.
            let inline = secret::inline_credentials();
            let config = P::load_config(path).map_err(Failure::Config)?;
            if secret::inline_credentials() > inline {
                config::warn_if_readable_by_others(path, "config file holding credentials");
            }
            config
        }
        None => P::Config::default(),
    };
    let aliases = checked_aliases::<P>(&config, &cli.provider, cli.common.config.as_deref())?;
    let terminal = cli.command.is_some();
    let max_output = cli.common.max_output_bytes;
    let request = match cli.command {
        Some(Command::Get { handles }) => Request {
            version: "1.0".into(),
            secrets: handles,
            timeout: None,
            backend_type: None,
            backend_config: None,
        },
        None => {
            watchdog::reading();
            read_request(io::stdin().lock(), cli.common.max_input_bytes)
                .map_err(Failure::Request)?
        }
    };
    watchdog::preparing();
    let budget = cli
        .common
        .timeout
        .or(request.timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    watchdog::set_budget(start.into_std(), budget);
    if request.secrets.is_empty() {
        watchdog::replying();
        write_reply(Reply::default(), max_output, terminal)?;
        watchdog::replied();
        return Ok(EXIT_OK);
    }
    let provider = P::build(config, cli.provider, &request).map_err(Failure::Config)?;
    // Aliases are answered around the provider: the watchdog and the reply
    // keep the handles as requested.
    let provider = Aliased::new(provider, aliases);
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if P::NETWORK {
        builder.enable_all();
    } else {
        builder.enable_time();
    }
    let runtime = builder
        .build()
        .map_err(|e| Failure::Config(ConfigError::new(format!("cannot start the runtime: {e}"))))?;
    let mut request = request;
    let handles: Arc<Vec<String>> = Arc::new(request.take_distinct_secrets());
    let deadlines = Deadlines::for_handles(start, budget, handles.len());
    watchdog::resolving(Arc::clone(&handles), budget, max_output);
    let answered = runtime.block_on(async {
        tokio::select! {
            outcomes = outcomes(&provider, &handles, &deadlines) => Some(outcomes),
            () = signals::terminated(P::NETWORK) => None,
        }
    });
    let written = match answered {
        Some(outcomes) if watchdog::replying() => {
            // The watchdog let its share of the handles go: the reply takes
            // them over without a copy.
            let handles = Arc::try_unwrap(handles).unwrap_or_else(|shared| (*shared).clone());
            let reply = reply(handles.into_iter(), outcomes, &deadlines);
            let written = write_reply(reply, max_output, terminal);
            watchdog::replied();
            written
        }
        // The watchdog answered already and ends the process.
        Some(_) => loop {
            std::thread::park();
        },
        None => Err(Failure::Terminated),
    };
    // Cleanup (revoking a login token) runs on every path with time left:
    // after the reply, after a failed write, after SIGTERM.
    let ctx = Context::new(deadlines.exit, budget);
    runtime.block_on(async { ctx.within(provider.close_boxed(&ctx)).await.ok() });
    // Nothing may outlive the reply: pending tasks are dropped, not awaited.
    runtime.shutdown_timeout(Duration::ZERO);
    written.map(|()| EXIT_OK)
}

/// The config's aliases, each target checked by the backend's handle
/// parser: a bad one stops the run as a config error, as any bad key does.
fn checked_aliases<P: Provider>(
    config: &P::Config,
    args: &P::Args,
    path: Option<&std::path::Path>,
) -> Result<Aliases, Failure> {
    let aliases = P::aliases(config).cloned().unwrap_or_default();
    P::check_aliases(config, args, &aliases).map_err(|e| {
        let file = path.map(|p| format!("config file {}: ", p.display()));
        Failure::Config(ConfigError::new(format!("{}{e}", file.unwrap_or_default())))
    })?;
    Ok(aliases)
}

fn write_reply(mut reply: Reply, max_output: usize, terminal: bool) -> Result<(), Failure> {
    let (mut bytes, dropped) = reply.to_json(max_output);
    if bytes.len() > max_output {
        let min = bytes.len();
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(Failure::Oversized {
            min,
            max: max_output,
        });
    }
    if dropped > 0 {
        tracing::warn!("{dropped} value(s) left out to keep the reply under {max_output} bytes");
    }
    if terminal {
        bytes.push(b'\n');
    }
    let written = write_out(&mut io::stdout().lock(), &bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    written.map_err(Failure::Write)
}

/// How long a read or write of a non-blocking stdin or stdout waits before
/// it tries again.
const RETRY: Duration = Duration::from_millis(2);

/// Writes all of `bytes` and flushes, waiting out a stdout that is
/// non-blocking (a parent that hands down a socket or pipe with O_NONBLOCK
/// set, as event loops do): `write_all` gives up on the first `EAGAIN` and
/// the reply would be lost, or half written. How long this may take is the
/// watchdog's to bound. A failed `write` consumes nothing, so retrying
/// resends nothing twice.
pub(crate) fn write_out(out: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(RETRY),
            Err(e) => return Err(e),
        }
    }
    loop {
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(RETRY),
            done => return done,
        }
    }
}

/// Reads one request of at most `max` bytes: stops reading at the limit,
/// and as soon as a complete JSON object has arrived (a caller that leaves
/// stdin open after its request is still answered). How long the read may
/// take is the watchdog's to bound.
pub fn read_request(mut input: impl Read, max: usize) -> Result<Request, RequestError> {
    let mut bytes = Vec::new();
    let mut scan = ObjectEnd::default();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A non-blocking stdin with nothing yet: wait for the caller.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(RETRY);
                continue;
            }
            Err(e) => return Err(RequestError::NotJson(format!("cannot read stdin: {e}"))),
        };
        let read = chunk.get(..n).unwrap_or(&[]);
        if bytes.len() + read.len() > max {
            return Err(RequestError::TooLarge(max));
        }
        let done = scan.feed(read);
        bytes.extend_from_slice(read);
        if let Some(end) = done {
            // Whatever else arrived with the object must be blank, as it
            // must be before EOF; otherwise read on and let the parser judge.
            let rest = read.get(end..).unwrap_or(&[]);
            if rest.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
    }
    Request::parse(&bytes)
}

/// Finds where the first top-level JSON object of a stream ends, fed chunk
/// by chunk, in one pass: bracket depth outside strings, with escapes. It
/// only decides when to stop reading; the parser judges the bytes.
#[derive(Debug, Default)]
struct ObjectEnd {
    depth: usize,
    started: bool,
    in_string: bool,
    escaped: bool,
    done: bool,
}

impl ObjectEnd {
    /// Feeds a chunk; returns the offset just past the object's closing
    /// brace when it is in this chunk.
    fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        if self.done {
            return None;
        }
        for (i, &b) in chunk.iter().enumerate() {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.started && self.depth == 0 {
                        self.done = true;
                        return Some(i + 1);
                    }
                }
                _ if !self.started && !b.is_ascii_whitespace() => {
                    // Not an object: read to EOF and let the parser say so.
                    self.done = true;
                    return None;
                }
                _ => {}
            }
        }
        None
    }
}

/// SIGTERM while the provider works: the runner stops waiting, cleans up
/// (revokes a login token) and exits 143.
mod signals {
    /// Resolves when the process receives SIGTERM; never, where the signal
    /// cannot be watched. Tokio watches signals with its I/O driver, which
    /// only a network backend starts (`io`): the others hold nothing to
    /// clean up, and the signal's default action serves them.
    pub async fn terminated(io: bool) {
        #[cfg(unix)]
        if io
            && let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// The instants that bound one call.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// The provider's work must be done by then.
    pub provider: Instant,
    /// The runner stops waiting for the provider then.
    pub reply: Instant,
    /// Cleanup (token revocation) must be over by then; the process exits.
    pub exit: Instant,
    /// The caller's timeout.
    pub budget: Duration,
}

impl Deadlines {
    /// Deadlines for a call that started at `start` and must be over within
    /// `budget`, keeping a margin so the reply is written and the process has
    /// exited before the caller kills it.
    pub fn new(start: Instant, budget: Duration) -> Self {
        let margin = (budget / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
            .min(budget / 2);
        let reply = start + budget.saturating_sub(margin);
        let provider = reply
            .checked_sub(Duration::from_millis(50).min(margin / 2))
            .unwrap_or(reply);
        Self {
            provider,
            reply,
            exit: start + budget.saturating_sub(margin / 2),
            budget,
        }
    }

    /// [`Deadlines::new`] for a call of `handles` distinct handles: the
    /// provider stops earlier by the time building and writing the reply
    /// takes for that many (about 2 µs a handle in release builds, doubled
    /// here, at most a quarter of the budget), and the runner stops waiting
    /// for it earlier by half that, so that a reply of 200,000 handles is
    /// out as surely as one of ten.
    pub fn for_handles(start: Instant, budget: Duration, handles: usize) -> Self {
        let mut d = Self::new(start, budget);
        let extra =
            (Duration::from_micros(4) * u32::try_from(handles).unwrap_or(u32::MAX)).min(budget / 4);
        // The runner stops waiting earlier too (by half as much), so that the
        // reply of a provider late by its whole margin is still out in time.
        d.reply = d.reply.checked_sub(extra / 2).unwrap_or(d.reply).max(start);
        d.provider = d
            .provider
            .checked_sub(extra)
            .unwrap_or(d.provider)
            .max(start)
            .min(d.reply);
        d
    }
}

/// Resolves a request's handles with `provider` under `deadlines`: each
/// distinct handle once, every requested handle answered, in request order.
pub async fn respond<R: Resolver + ?Sized>(
    provider: &R,
    request: &Request,
    deadlines: &Deadlines,
) -> Reply {
    respond_to(provider, &request.distinct_secrets(), deadlines).await
}

/// [`respond`] for the request's distinct `handles`.
pub async fn respond_to<R: Resolver + ?Sized>(
    provider: &R,
    handles: &[String],
    deadlines: &Deadlines,
) -> Reply {
    let outcomes = outcomes(provider, handles, deadlines).await;
    reply(handles.iter().cloned(), outcomes, deadlines)
}

/// The provider's outcomes for `handles`, or none past the reply deadline.
async fn outcomes<R: Resolver + ?Sized>(
    provider: &R,
    handles: &[String],
    deadlines: &Deadlines,
) -> Vec<Outcome> {
    let ctx = Context::new(deadlines.provider, deadlines.budget);
    let outcomes =
        match tokio::time::timeout_at(deadlines.reply, provider.resolve_boxed(handles, &ctx)).await
        {
            Ok(outcomes) => outcomes,
            Err(_) => {
                tracing::warn!(
                    "the provider did not return by the deadline; every handle timed out"
                );
                Vec::new()
            }
        };
    if outcomes.len() > handles.len() {
        tracing::error!(
            "provider returned {} results for {} handles",
            outcomes.len(),
            handles.len()
        );
    }
    outcomes
}

/// The reply pairing `handles` with `outcomes`, in order; a handle without
/// an outcome timed out (or, before the deadline, met a provider bug).
fn reply(
    handles: impl Iterator<Item = String>,
    outcomes: Vec<Outcome>,
    deadlines: &Deadlines,
) -> Reply {
    let ctx = Context::new(deadlines.provider, deadlines.budget);
    let mut outcomes = outcomes.into_iter();
    let entries: Vec<Entry> = handles
        .map(|handle| {
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(if Instant::now() >= deadlines.provider {
                    ctx.timed_out()
                } else {
                    HandleError::other(
                        "internal error: the provider returned no result for this handle",
                    )
                })
            });
            if let Err(e) = &outcome {
                tracing::debug!(handle = %shorten(&handle), "{e}");
            }
            Entry { handle, outcome }
        })
        .collect();
    let failed = entries.iter().filter(|e| e.outcome.is_err()).count();
    tracing::info!(
        "resolved {} of {} handles",
        entries.len() - failed,
        entries.len()
    );
    Reply::new(entries)
}

/// A handle as it appears in a log line: escaped, at most 200 characters.
pub fn shorten(handle: &str) -> String {
    let escaped: String = handle.escape_debug().take(200).collect();
    if handle.escape_debug().nth(200).is_some() {
        format!("{escaped}...")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::provider::{NoArgs, NoConfig, Outcome, bounded};
    use crate::{ErrorKind, Secret};

    /// Sleeps as many milliseconds as the handle says; `fail` fails.
    struct Sleepy;

    impl Provider for Sleepy {
        const ABOUT: crate::About = crate::about!("sleepy", "test");
        type Config = NoConfig;
        type Args = NoArgs;
        fn build(_: NoConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
            Ok(Sleepy)
        }
        async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
            bounded(handles, 8, ctx, |h| async move {
                match h.parse::<u64>() {
                    Ok(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(Secret::new(format!("slept {ms}")))
                    }
                    Err(_) => Err(HandleError::not_found(format!("{h}: not a number"))),
                }
            })
            .await
        }
    }

    /// Never returns, ignoring the deadline.
    struct Stuck(AtomicBool);

    impl Provider for Stuck {
        const ABOUT: crate::About = crate::about!("stuck", "test");
        type Config = NoConfig;
        type Args = NoArgs;
        fn build(_: NoConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
            Ok(Stuck(AtomicBool::new(false)))
        }
        async fn resolve(&self, _: &[String], _: &Context) -> Vec<Outcome> {
            std::future::pending().await
        }
        async fn close(&self, _: &Context) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn req(handles: &[&str]) -> Request {
        Request::parse(
            serde_json::json!({"version": "1.0", "secrets": handles})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn value(reply: &Reply, handle: &str) -> Result<String, (ErrorKind, String)> {
        let e = reply.entries().iter().find(|e| e.handle == handle).unwrap();
        e.outcome
            .as_ref()
            .map(|s| s.expose().to_owned())
            .map_err(|e| (e.kind(), e.to_string()))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_handles_time_out_and_fast_ones_survive() {
        let d = Deadlines::new(Instant::now(), Duration::from_secs(3));
        let reply = respond(&Sleepy, &req(&["10", "60000", "x", "10", "2000"]), &d).await;
        assert_eq!(reply.entries().len(), 4);
        assert_eq!(value(&reply, "10").unwrap(), "slept 10");
        assert_eq!(value(&reply, "2000").unwrap(), "slept 2000");
        assert_eq!(
            value(&reply, "60000").unwrap_err(),
            (ErrorKind::TimedOut, "timed out after 3s".into())
        );
        assert_eq!(value(&reply, "x").unwrap_err().0, ErrorKind::NotFound);
        assert!(Instant::now() <= d.reply);
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_ignoring_the_deadline_still_gets_an_answer_in_time() {
        let d = Deadlines::new(Instant::now(), Duration::from_secs(5));
        let reply = respond(&Stuck(AtomicBool::new(false)), &req(&["a", "b"]), &d).await;
        assert!(reply.entries().iter().all(|e| {
            e.outcome
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::TimedOut)
        }));
        assert!(Instant::now() <= d.reply + Duration::from_millis(1));
        assert!(d.reply < d.exit && d.exit < d.reply + Duration::from_secs(1));
    }

    #[test]
    fn many_handles_move_the_provider_and_reply_deadlines_earlier() {
        let now = Instant::now();
        for secs in [1u64, 5, 30] {
            let budget = Duration::from_secs(secs);
            let few = Deadlines::for_handles(now, budget, 10);
            let many = Deadlines::for_handles(now, budget, 200_000);
            assert!(
                many.provider <= many.reply && many.reply < many.exit,
                "{secs}"
            );
            assert!(
                many.provider < few.provider && many.reply < few.reply,
                "{secs}"
            );
            assert_eq!(many.exit, few.exit);
            // At most a quarter of the budget goes to the reply's size.
            assert!(many.provider >= few.provider - budget / 4, "{secs}");
        }
    }

    #[test]
    fn deadlines_leave_a_margin() {
        let now = Instant::now();
        for secs in [1u64, 3, 5, 30, 86400] {
            let d = Deadlines::new(now, Duration::from_secs(secs));
            assert!(d.provider < d.reply && d.reply < d.exit, "{secs}");
            assert!(d.exit < now + Duration::from_secs(secs), "{secs}");
            assert!(
                d.reply >= now + Duration::from_secs(secs) * 8 / 10,
                "{secs}"
            );
        }
        let d = Deadlines::new(now, Duration::from_millis(10));
        assert!(d.provider <= d.reply && d.exit <= now + Duration::from_millis(10));
    }

    #[test]
    fn input_limit_stops_reading() {
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += buf.len();
                buf.fill(b' ');
                Ok(buf.len())
            }
        }
        let mut src = Endless(0);
        assert_eq!(
            read_request(&mut src, 1000).unwrap_err(),
            RequestError::TooLarge(1000)
        );
        assert!(src.0 < 100_000);
    }

    /// Hands out its chunks, then fails the test if read again (a caller
    /// that leaves stdin open would block us there).
    struct OpenEnded(Vec<&'static [u8]>);

    impl Read for OpenEnded {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(!self.0.is_empty(), "read past a complete request");
            let chunk = self.0.remove(0);
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    #[test]
    fn a_complete_request_is_read_without_waiting_for_eof() {
        for chunks in [
            vec![&br#"{"version":"1.0","secrets":["a}"]}"#[..]],
            vec![b"{\"version\":\"1.0\",", b"\"secrets\":[\"\\\"}\"", b"]}\n"],
            vec![
                b" ",
                b"{",
                b"\"version\":\"1.0\",\"secrets\":[],\"x\":{\"y\":[1]}",
                b"}",
            ],
        ] {
            let r = read_request(OpenEnded(chunks), 1000).unwrap();
            assert_eq!(r.version, "1.0");
        }
        // Text after the object is read on and refused by the parser.
        let r = read_request(&br#"{"version":"1.0","secrets":[]} x"#[..], 1000);
        assert!(r.is_err());
        let r = read_request(&b"[1,2]"[..], 1000);
        assert_eq!(r.unwrap_err(), RequestError::NotObject);
    }

    /// Says "would block" before every other operation, and takes at most
    /// three bytes a write.
    #[derive(Default)]
    struct Skittish {
        got: Vec<u8>,
        calls: usize,
        input: Vec<u8>,
    }

    impl Read for Skittish {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.input.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Skittish {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(3);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        }
    }

    #[test]
    fn a_non_blocking_stdin_and_stdout_are_waited_for() {
        let input = br#"{"version":"1.0","secrets":["a","b"]}"#;
        let mut src = Skittish {
            input: input.to_vec(),
            ..Skittish::default()
        };
        assert_eq!(read_request(&mut src, 1000).unwrap().secrets, ["a", "b"]);
        let mut out = Skittish::default();
        write_out(&mut out, input).unwrap();
        assert_eq!(out.got, input);
    }

    #[test]
    fn timeout_flag_bounds() {
        for bad in ["0", "-1", "1e-12", "0.0009", "NaN", "inf", "86401", "x", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_seconds("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_seconds("86400"), Ok(crate::protocol::MAX_TIMEOUT));
    }

    #[test]
    fn shorten_bounds_log_handles() {
        assert_eq!(shorten("a\nb"), "a\\nb");
        assert_eq!(shorten(&"x".repeat(500)).len(), 203);
    }
}
