//! The contract between the runner and a secret store.
//!
//! A provider sees a list of distinct handles and a [`Context`] holding the
//! call's deadline, and answers with one [`Outcome`] per handle, in order. It
//! never touches stdin, stdout or exit codes. Taking the whole batch at once
//! lets it group handles by the secret they name, fetch each secret once,
//! batch requests and run them concurrently.
//!
//! The deadline is the provider's to honour: wrap anything that waits on the
//! network in [`Context::within`] (or use [`bounded`], which does it per item)
//! so that whatever finished in time is kept and only the rest reports
//! `timed out`. The runner stops waiting a little after the deadline anyway,
//! but then every handle of the call is lost.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::error::HandleError;
use crate::secret::Secret;

/// A boxed future, so that providers stay usable as trait objects.
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

/// A secret store, resolving a batch of handles.
pub trait Provider: Send + Sync {
    /// Resolves `handles` (distinct, in the caller's order) and returns one
    /// outcome per handle, in the same order.
    ///
    /// Errors are per handle: [`HandleError::not_found`] when the store has
    /// nothing there, `permission_denied` when it refuses, `invalid_handle`
    /// when the handle does not parse, `unavailable` when the store cannot be
    /// reached, `timed_out` past the deadline. A provider that returns fewer
    /// outcomes than handles is a bug; the runner reports the missing ones.
    fn resolve<'a>(
        &'a self,
        handles: &'a [String],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Vec<Outcome>>;

    /// Releases what the call acquired (a login token, say). The runner calls
    /// it after the reply is written, with what is left of the deadline.
    fn close<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, ()> {
        Box::pin(async {})
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
