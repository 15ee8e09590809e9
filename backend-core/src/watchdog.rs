//! The promise "always answer before the deadline", kept whatever blocks.
//!
//! The runner bounds everything it awaits by the call's deadline, but a
//! process can still block where no timer reaches: a read of stdin the
//! caller never closes, a config or credential file on a hung network
//! filesystem, a synchronous call deep inside a dependency. The watchdog is
//! a plain thread started first thing in `main`; it sleeps until the
//! deadline and then acts on what the main thread has got to:
//!
//! - still loading the configuration or reading the request: one line on
//!   stderr, exit 2 or 1 (the request was not complete in time);
//! - between the request read and the provider at work (a deadline
//!   already past when the request arrived): one line saying so, exit 1;
//! - resolving handles: it writes the reply itself, every handle `timed
//!   out`, and exits 0, so the agent still gets an answer it can log per
//!   handle;
//! - writing the reply: it lets that run until the caller's own deadline (a
//!   large reply to a slow reader is not cut short), then exits;
//! - cleaning up after the reply: it lets that run until the exit
//!   deadline, then exits.
//!
//! Its deadline sits between the runner's own reply deadline and the exit
//! deadline, so on the ordinary path (everything awaited under timers) the
//! main thread always answers first and the watchdog never fires.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::HandleError;
use crate::protocol::{Entry, Reply};

/// Where the main thread is.
#[derive(Debug)]
enum Phase {
    /// Parsing flags, loading the config.
    Starting,
    /// Reading stdin.
    Reading,
    /// The request is read; the provider is being built.
    Preparing,
    /// Waiting for the provider; the distinct handles and the budget, for
    /// the all-timed-out reply.
    Resolving {
        handles: Arc<Vec<String>>,
        budget: Duration,
        max_output: usize,
    },
    /// The main thread is writing the reply.
    Writing,
    /// The reply is written (or failed); cleanup may run.
    Replied,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the watchdog acts on a phase before `Replied`.
    fire: Instant,
    /// When the process ends after the reply, cleanup or not.
    exit: Instant,
    /// The caller's own deadline: a reply still being written may take
    /// until then (cutting it short would leave the agent half a JSON).
    end: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static WAKE: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the watchdog for a call that started at `start` and must be over
/// within `budget` (the budget is refined by [`set_budget`] once the request
/// is read). A second call only updates the deadlines.
pub fn start(start: Instant, budget: Duration) {
    let mut guard = state();
    let first = guard.is_none();
    let (fire, exit) = deadlines(start, budget);
    *guard = Some(State {
        phase: Phase::Starting,
        fire,
        exit,
        end: start + budget,
    });
    drop(guard);
    if first {
        // A watchdog that cannot start leaves the runner's own timers in
        // charge; nothing else to do about it.
        let _ = std::thread::Builder::new()
            .name("watchdog".into())
            .stack_size(64 * 1024)
            .spawn(watch);
    }
}

/// The call's budget, known once the request is read.
pub fn set_budget(start: Instant, budget: Duration) {
    if let Some(s) = state().as_mut() {
        (s.fire, s.exit) = deadlines(start, budget);
        s.end = start + budget;
    }
    WAKE.notify_all();
}

/// The main thread reads the request now.
pub fn reading() {
    set_phase(Phase::Reading);
}

/// The request is read: a deadline from now on is not the caller's fault.
pub fn preparing() {
    set_phase(Phase::Preparing);
}

/// The main thread waits for the provider to resolve `handles`.
pub fn resolving(handles: Arc<Vec<String>>, budget: Duration, max_output: usize) {
    set_phase(Phase::Resolving {
        handles,
        budget,
        max_output,
    });
}

/// The main thread takes the reply over. Returns `false` when the watchdog
/// has already answered (the main thread then writes nothing).
pub fn replying() -> bool {
    let mut guard = state();
    let taken = match guard.as_mut() {
        Some(s) if matches!(s.phase, Phase::Writing | Phase::Replied) => false,
        Some(s) => {
            s.phase = Phase::Writing;
            true
        }
        None => true,
    };
    drop(guard);
    WAKE.notify_all();
    taken
}

/// The reply is written (or its write failed): from now on the process
/// ends at the exit deadline, cleanup done or not.
pub fn replied() {
    if let Some(s) = state().as_mut() {
        s.phase = Phase::Replied;
    }
    WAKE.notify_all();
}

fn set_phase(phase: Phase) {
    if let Some(s) = state().as_mut()
        && !matches!(s.phase, Phase::Writing | Phase::Replied)
    {
        s.phase = phase;
    }
}

/// The watchdog fires halfway between the runner's reply deadline and the
/// exit deadline (see [`crate::runner::Deadlines`]).
fn deadlines(start: Instant, budget: Duration) -> (Instant, Instant) {
    let d = crate::runner::Deadlines::new(tokio::time::Instant::from_std(start), budget);
    let reply = d.reply.into_std();
    let exit = d.exit.into_std();
    (reply + (exit - reply) / 2, exit)
}

fn watch() {
    let mut guard = state();
    loop {
        let Some(s) = guard.as_mut() else { return };
        let now = Instant::now();
        let due = match s.phase {
            Phase::Writing => s.end,
            Phase::Replied => s.exit,
            _ => s.fire,
        };
        if now < due {
            guard = WAKE
                .wait_timeout(guard, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let phase = std::mem::replace(&mut s.phase, Phase::Replied);
        match phase {
            Phase::Starting => fail(
                2,
                "the configuration could not be loaded before the deadline",
            ),
            Phase::Reading => fail(
                1,
                "unusable request: no complete request on stdin before the deadline",
            ),
            Phase::Preparing => fail(
                1,
                "the deadline passed after the request was read, before its handles could be resolved (is the timeout too short?): nothing written",
            ),
            Phase::Resolving {
                handles,
                budget,
                max_output,
            } => {
                drop(guard);
                if answer(handles, budget, max_output) {
                    std::process::exit(0);
                }
                fail(
                    1,
                    "the call did not finish by the deadline, and even a reply of timeouts is over the output limit: nothing written",
                );
            }
            Phase::Writing | Phase::Replied => {
                drop(guard);
                // The reply is out, or its write is stuck on a caller that
                // stopped reading until the caller's own deadline; cleanup
                // had its time.
                std::process::exit(0);
            }
        }
    }
}

/// The last word of a process that must stop now.
fn fail(code: i32, message: &str) -> ! {
    tracing::error!("{message}");
    std::process::exit(code);
}

/// Writes the reply with every handle timed out; `false` when even that
/// is over the output limit (nothing is written then).
fn answer(handles: Arc<Vec<String>>, budget: Duration, max_output: usize) -> bool {
    tracing::warn!("the call did not finish by the deadline; every handle timed out");
    let entries = handles
        .iter()
        .map(|handle| Entry {
            handle: handle.clone(),
            outcome: Err(HandleError::timed_out(budget)),
        })
        .collect();
    let (bytes, _) = Reply::new(entries).to_json(max_output);
    if bytes.len() > max_output {
        return false;
    }
    let _ = crate::runner::write_out(&mut std::io::stdout().lock(), &bytes);
    true
}
