//! Micro-benchmarks of the wire: parsing a request and serializing a reply
//! at 10 and 10,000 handles, the two ends of what an agent sends.
//!
//! Run by hand with `cargo bench -p backend-core --bench protocol`; the
//! end-to-end numbers (process start, network) are in `bench/`. They never
//! run as tests: timings on shared machines are too noisy to assert on.

use std::hint::black_box;

use backend_core::protocol::{Entry, Reply, Request};
use backend_core::{HandleError, Secret};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 2] = [10, 10_000];

/// Handles shaped like real ones: a path and a key.
fn handles(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("secret/app{}/db;password{i}", i % 20))
        .collect()
}

/// A request as an agent writes it: keys sorted, compact, Go's escaping.
fn request(n: usize) -> Vec<u8> {
    let body = serde_json::json!({ "secrets": handles(n), "version": "1.0" });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A reply with one error in ten, the rest values.
fn reply(n: usize) -> Reply {
    let entries = handles(n)
        .into_iter()
        .enumerate()
        .map(|(i, handle)| {
            let outcome = if i % 10 == 9 {
                Err(HandleError::not_found(format!(
                    "{handle}: no secret at this path"
                )))
            } else {
                Ok(Secret::new(format!("value-of-{handle}")))
            };
            Entry { handle, outcome }
        })
        .collect();
    Reply::new(entries)
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_parse");
    for n in SIZES {
        let input = request(n);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| {
                let request = Request::parse(black_box(input));
                black_box(request.map(|r| r.distinct_secrets().len()))
            });
        });
    }
    group.finish();
}

fn serialize(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_serialize");
    for n in SIZES {
        // to_json takes &mut (it may drop values to fit the cap); with no cap
        // in reach it leaves the reply as it is, so one reply serves every run.
        let mut r = reply(n);
        let len = r.to_json(usize::MAX).0.len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(r.to_json(black_box(usize::MAX)).0.len()));
        });
    }
    group.finish();
}

criterion_group!(benches, parse, serialize);
criterion_main!(benches);
