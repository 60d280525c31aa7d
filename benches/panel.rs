//! Criterion benchmarks of the hot paths, on 100,000 generated customers (~960k rows): the
//! (customer, period) group-by, the panel, the whole in-memory training, and scoring (placing
//! every customer with the model's cut-points and forecasting 4 periods).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kam::domain::activity::aggregate;
use kam::domain::calendar::Calendar;
use kam::domain::panel::customer_panel;
use kam::model::config::TrainConfig;
use kam::model::simulate::{SimulationParams, simulate};
use kam::model::train::{SourceInfo, train};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let params = SimulationParams { customers: 100_000, ..Default::default() };
    let (tx, truth) = simulate(&params, &kam::model::parallel::Rayon);
    let (first, last) = tx.day_range().unwrap();
    let unit = kam::domain::calendar::PeriodUnit::Quarter;
    let (calendar, _) = Calendar::fit(unit, first, last, None).unwrap();
    let ends = calendar.ends();

    let mut g = c.benchmark_group("training");
    g.sample_size(10);
    g.throughput(Throughput::Elements(tx.len() as u64));
    g.bench_function("aggregate 100k customers", |b| b.iter(|| black_box(aggregate(&tx, unit).unwrap())));

    let activity = aggregate(&tx, unit).unwrap();
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
        b.iter(|| black_box(train(&activity, None, &config, SourceInfo::default(), &mut |_| {}).unwrap()))
    });
    let model = train(&activity, None, &config, SourceInfo::default(), &mut |_| {}).unwrap();
    g.bench_function("score 100k customers (place + forecast 4 periods)", |b| {
        b.iter(|| {
            let snap = kam::model::place::snapshot(&activity, &model, None, None).unwrap();
            let f =
                model.forecaster(kam::domain::forecast::ForecastParams { horizon: 4, discount_rate: 0.025 }).unwrap();
            let per_state: Vec<_> = (0..model.segments.states.len()).map(|s| f.customer(s, 0.0)).collect();
            let total: f64 =
                snap.customers.iter().map(|c| per_state[c.state].value_horizon + c.next_spend / 1.025).sum();
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
