//! Criterion benchmarks of the hot paths of training: the (customer, period) group-by and the
//! panel + segment + count pass, on 100,000 generated customers (~1M rows).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kam::domain::config::TrainConfig;
use kam::domain::panel::customer_panel;
use kam::domain::period::Calendar;
use kam::domain::simulate::{simulate, SimulationParams};
use kam::domain::transaction::aggregate;
use kam::domain::train::{train, SourceInfo};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let params = SimulationParams { customers: 100_000, ..Default::default() };
    let (tx, truth) = simulate(&params, 2);
    let (first, last) = tx.day_range().unwrap();
    let unit = kam::domain::period::PeriodUnit::Quarter;
    let (calendar, _) = Calendar::fit(unit, first, last, None).unwrap();
    let ends = calendar.ends();

    let mut g = c.benchmark_group("training");
    g.sample_size(10);
    g.throughput(Throughput::Elements(tx.len() as u64));
    g.bench_function("aggregate 100k customers", |b| b.iter(|| black_box(aggregate(&tx, &calendar))));

    let (activity, _) = aggregate(&tx, &calendar);
    g.bench_function("panel 100k customers", |b| {
        let mut rows = Vec::new();
        b.iter(|| {
            let mut n = 0usize;
            for cust in 0..activity.customers() {
                customer_panel(activity.customer(cust), &ends, 4, &mut rows);
                n += rows.len();
            }
            black_box(n)
        })
    });

    let config: TrainConfig = truth.config.clone();
    g.bench_function("train 100k customers", |b| {
        b.iter(|| {
            let source = SourceInfo { name: "bench".into(), content_hash: String::new(), rows_skipped: 0 };
            black_box(train(&tx, None, &config, source, &mut |_| {}).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
