//! The conformance kit: the contract every provider must keep, run against
//! a real instance of it. Each provider crate calls [`check`] once from its
//! tests, with handles that exist in its test store and handles that do not.

// A test kit reports a breach of the contract by panicking, as tests do.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;

use crate::ErrorKind;
use crate::protocol::{Reply, Request};
use crate::provider::{Context, Resolver};
use crate::runner::{Deadlines, respond};

/// What the provider's test store holds.
#[derive(Debug, Clone, Default)]
pub struct Cases {
    /// Handles that resolve, with their expected values.
    pub found: Vec<(String, String)>,
    /// Handles that name nothing in the store (must fail with `NotFound`).
    pub missing: Vec<String>,
    /// The budget for the calls (use the one the store needs to answer).
    pub budget: Option<Duration>,
}

/// An environment of fixed `pairs`, for code that reads variables through
/// a `Fn(&str) -> Option<String>` (tests of endpoint and chain rules).
pub fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// Handles no provider should choke on.
pub fn odd_handles() -> Vec<String> {
    vec![
        String::new(),
        "]]]".into(),
        "ENC[x]".into(),
        r#"{"a":1}"#.into(),
        "ünïcødé/☃".into(),
        "line\nbreak".into(),
        "nul\0byte".into(),
        ";".into(),
        ";;;".into(),
        "../../../etc/passwd".into(),
        "/absolute".into(),
        "?version=x".into(),
        "%2e%2e/x".into(),
        "x".repeat(10 * 1024),
    ]
}

fn payload(handles: &[String]) -> Request {
    let body = serde_json::json!({"version": "1.0", "secrets": handles}).to_string();
    Request::parse(body.as_bytes()).expect("a kit request parses")
}

fn reply_json(mut reply: Reply) -> Value {
    let (bytes, _) = reply.to_json(usize::MAX);
    serde_json::from_slice(&bytes).expect("a reply is JSON")
}

/// Runs the contract against `provider`; panics with a description of the
/// first breach.
pub async fn check<R: Resolver + ?Sized>(provider: &R, cases: &Cases) {
    let budget = cases.budget.unwrap_or(Duration::from_secs(10));
    let secret_values: Vec<&str> = cases.found.iter().map(|(_, v)| v.as_str()).collect();

    // Found and missing, each once, through the provider alone.
    let mut handles: Vec<String> = cases.found.iter().map(|(h, _)| h.clone()).collect();
    handles.extend(cases.missing.iter().cloned());
    let ctx = Context::with_budget(budget);
    let outcomes = provider.resolve_boxed(&handles, &ctx).await;
    assert_eq!(outcomes.len(), handles.len(), "one outcome per handle");
    for ((handle, want), got) in cases.found.iter().zip(&outcomes) {
        match got {
            Ok(v) => assert_eq!(v.expose(), want, "value of {handle:?}"),
            Err(e) => panic!("{handle:?} should resolve, got error: {e}"),
        }
    }
    for (handle, got) in cases.missing.iter().zip(&outcomes[cases.found.len()..]) {
        match got {
            Ok(_) => panic!("{handle:?} should be missing, got a value"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NotFound, "{handle:?}: {e}");
                assert!(!e.message().is_empty());
            }
        }
    }
    for o in &outcomes {
        let shown = format!(
            "{o:?} {}",
            o.as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        for v in &secret_values {
            assert!(
                !shown.contains(v),
                "a value shows in Debug or an error: {shown}"
            );
        }
    }

    // Through the runner: duplicates and reversed order, each handle once.
    let mut doubled: Vec<String> = handles.iter().rev().cloned().collect();
    doubled.extend(handles.iter().cloned());
    let d = Deadlines::new(tokio::time::Instant::now(), budget);
    let reply = reply_json(respond(provider, &payload(&doubled), &d).await);
    let obj = reply.as_object().expect("object");
    assert_eq!(obj.len(), handles.len(), "duplicates answered once");
    for (handle, want) in &cases.found {
        assert_eq!(
            obj[handle]["value"],
            Value::String(want.clone()),
            "{handle:?} via runner"
        );
        assert_eq!(obj[handle]["error"], Value::Null);
    }
    for handle in &cases.missing {
        assert_eq!(obj[handle]["value"], Value::Null);
        assert!(
            obj[handle]["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{handle:?}"
        );
    }

    // Odd handles: every one answered, none with an empty error.
    let odd = odd_handles();
    let d = Deadlines::new(tokio::time::Instant::now(), budget);
    let reply = reply_json(respond(provider, &payload(&odd), &d).await);
    for handle in &odd {
        let entry = &reply[handle];
        let answered = entry["value"].as_str().is_some_and(|v| !v.is_empty())
            || entry["error"].as_str().is_some_and(|e| !e.is_empty());
        assert!(
            answered,
            "odd handle {:?} unanswered: {entry}",
            crate::runner::shorten(handle)
        );
    }

    // Deadline: a call with almost no time left still answers every handle,
    // promptly, with values or errors.
    let started = tokio::time::Instant::now();
    let d = Deadlines::new(started, Duration::from_millis(200));
    let reply = reply_json(respond(provider, &payload(&handles), &d).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "deadline ignored: {:?}",
        started.elapsed()
    );
    assert_eq!(reply.as_object().map(|o| o.len()), Some(handles.len()));
}
