//! Criterion benchmarks of the prediction API's work per request, without the network: parse the
//! JSON body, place and forecast the customers, serialize the response — on the committed
//! default model (`models/CURRENT`), one customer and 10,000 customers by features, with and
//! without intervals. The first request of a setting builds the forecaster and its posterior
//! draws; the server caches them per model and setting, and so does this benchmark.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kam::http::json::parse;
use kam::http::predict::{PredictRequest, respond};
use kam::http::{Deadline, Served};
use kam::store::ModelStore;
use std::hint::black_box;

/// The size of `respond`'s answer (no response cap, a deadline that never comes).
fn response_bytes(req: &PredictRequest, served: &Served) -> usize {
    let deadline = Deadline::after(std::time::Duration::from_secs(600));
    respond(req, served, usize::MAX, deadline).unwrap().iter().map(Vec::len).sum()
}

fn body(customers: usize, intervals: bool) -> Vec<u8> {
    let segments = ["key", "core", "occasional", "dormant", "lapsed", "new"];
    let list: Vec<String> = (0..customers)
        .map(|i| {
            format!(
                r#"{{"id": "C{i}", "segment": "{}", "monetary": {}, "recency_days": {}, "frequency": {}, "tenure_periods": {}}}"#,
                segments[i % segments.len()],
                100 + (i * 37) % 2400,
                (i * 13) % 90,
                1 + i % 7,
                1 + i % 12
            )
        })
        .collect();
    format!(r#"{{"horizon": 4, "intervals": {intervals}, "customers": [{}]}}"#, list.join(",")).into_bytes()
}

fn bench(c: &mut Criterion) {
    let store = ModelStore::new("models");
    let id = store.current().unwrap().expect("models/CURRENT");
    let served = Served::new(store.load(&id).unwrap(), None);
    let mut g = c.benchmark_group("predict");
    for intervals in [false, true] {
        let label = if intervals { "with intervals" } else { "without intervals" };
        let one = body(1, intervals);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("1 customer by features, {label}"), |b| {
            b.iter(|| {
                let req: PredictRequest = parse(&one).unwrap();
                black_box(response_bytes(&req, &served))
            })
        });
        let many = body(10_000, intervals);
        g.sample_size(10);
        g.throughput(Throughput::Elements(10_000));
        g.bench_function(format!("10,000 customers by features, {label}"), |b| {
            b.iter(|| {
                let req: PredictRequest = parse(&many).unwrap();
                black_box(response_bytes(&req, &served))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
