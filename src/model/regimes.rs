//! Generated businesses with known truth that differ the way real ones do, to check kam's
//! defaults on more than one kind of data (`kam generate --regime NAME`). Each customer buys by
//! the Pareto/NBD process (a first purchase at acquisition, then purchases at a Poisson rate λ
//! until an exponential lifetime of rate μ ends; λ ~ Gamma(r, α), μ ~ Gamma(s, β) across
//! customers) with Gamma–Gamma spend (a customer's mean spend per purchase is p/ν with
//! ν ~ Gamma(q, γ); each purchase ~ Gamma(p, ν)). Time is in days.
//!
//! - [`Regime::Btyd`]: the CDNOW-like process with the papers' CDNOW parameters, customers
//!   acquired over the first 12 weeks, 39 weeks of calibration and 39 of holdout.
//! - [`Regime::Weekly`]: frequent buyers (about weekly) with only six months of history before the
//!   calibration end and three months of holdout.
//! - [`Regime::B2b`]: few large accounts ordering every few months with little heterogeneity in
//!   rate, long lifetimes and heavy-tailed order values; 3.5 years of calibration, 6 months of
//!   holdout.
//! - [`Regime::Trend`]: five years with growing acquisition, purchase rates rising 10% a year and
//!   prices 5% a year; 4.5 years of calibration, 6 months of holdout. Not a stationary BTYD
//!   process, so no true model is given.

use crate::domain::btyd::gamma_gamma::GammaGammaParams;
use crate::domain::btyd::pareto_nbd::ParetoNbdParams;
use crate::domain::calendar::day_of;
use crate::domain::sampling::seed_for;
use crate::domain::shards::Parallel;
use crate::domain::transactions::Transactions;
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// A kind of business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    Btyd,
    Weekly,
    B2b,
    Trend,
}

impl Regime {
    pub const ALL: [Regime; 4] = [Regime::Btyd, Regime::Weekly, Regime::B2b, Regime::Trend];

    pub fn name(self) -> &'static str {
        match self {
            Regime::Btyd => "btyd",
            Regime::Weekly => "weekly",
            Regime::B2b => "b2b",
            Regime::Trend => "trend",
        }
    }

    /// Customers simulated when the caller does not say.
    pub fn default_customers(self) -> u32 {
        match self {
            Regime::B2b => 600,
            _ => 10_000,
        }
    }

    /// The regime's process and calendar.
    pub fn spec(self) -> RegimeSpec {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        match self {
            // Fader, Hardie & Lee (2005)'s CDNOW estimates, weeks turned into days.
            Regime::Btyd => RegimeSpec::stationary(
                (d(2022, 1, 1), 84, d(2022, 9, 30), d(2023, 6, 30)),
                ParetoNbdParams { r: 0.55, alpha: 10.58 * 7.0, s: 0.61, beta: 11.67 * 7.0 },
                GammaGammaParams { p: 6.25, q: 3.74, v: 15.44 },
            ),
            // Mean rate 1/7 a day (CV 0.5), mean lifetime about 240 days.
            Regime::Weekly => RegimeSpec::stationary(
                (d(2024, 1, 1), 120, d(2024, 6, 30), d(2024, 9, 30)),
                ParetoNbdParams { r: 4.0, alpha: 28.0, s: 1.5, beta: 360.0 },
                GammaGammaParams { p: 4.0, q: 5.0, v: 40.0 },
            ),
            // An order every ~90 days (CV 0.4), lifetimes of ~4 years, orders ~27,000 on average.
            Regime::B2b => RegimeSpec::stationary(
                (d(2021, 1, 1), 730, d(2024, 6, 30), d(2024, 12, 31)),
                ParetoNbdParams { r: 6.0, alpha: 540.0, s: 2.0, beta: 3000.0 },
                GammaGammaParams { p: 2.0, q: 2.5, v: 20_000.0 },
            ),
            // A purchase every ~75 days at the start, lifetimes of ~3 years, mean order 50.
            Regime::Trend => RegimeSpec {
                start: d(2020, 1, 1),
                acquisition_days: 1827,
                calibration_end: d(2024, 6, 30),
                end: d(2024, 12, 31),
                purchase: ParetoNbdParams { r: 1.2, alpha: 90.0, s: 0.8, beta: 900.0 },
                spend: GammaGammaParams { p: 5.0, q: 4.0, v: 30.0 },
                acquisition_growth: 1.0,
                rate_growth_per_year: 0.10,
                price_growth_per_year: 0.05,
            },
        }
    }
}

impl std::str::FromStr for Regime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Regime::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown regime {s:?}; one of {}", Regime::ALL.map(Regime::name).join(", ")))
    }
}

/// A regime's process and calendar (time in days).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegimeSpec {
    pub start: NaiveDate,
    /// Customers are acquired over this many days from the start.
    pub acquisition_days: i32,
    /// The backtest's calibration end; the holdout runs from the next day to `end`.
    pub calibration_end: NaiveDate,
    pub end: NaiveDate,
    /// Purchase (λ ~ Gamma(r, α)) and lifetime (μ ~ Gamma(s, β)) heterogeneity, per day.
    pub purchase: ParetoNbdParams,
    pub spend: GammaGammaParams,
    /// Acquisition density ∝ 1 + g·u over the acquisition span (u in [0, 1]); 0: uniform.
    pub acquisition_growth: f64,
    /// Purchase rates and prices multiplied by (1 + g) per year since the start.
    pub rate_growth_per_year: f64,
    pub price_growth_per_year: f64,
}

impl RegimeSpec {
    /// A stationary process: customers acquired over `acquisition_days` from `start`, no growth.
    fn stationary(
        (start, acquisition_days, calibration_end, end): (NaiveDate, i32, NaiveDate, NaiveDate),
        purchase: ParetoNbdParams,
        spend: GammaGammaParams,
    ) -> Self {
        RegimeSpec {
            start,
            acquisition_days,
            calibration_end,
            end,
            purchase,
            spend,
            acquisition_growth: 0.0,
            rate_growth_per_year: 0.0,
            price_growth_per_year: 0.0,
        }
    }

    /// Whether the process is a stationary Pareto/NBD + Gamma–Gamma one (so [`Self::purchase`]
    /// and [`Self::spend`] are the true model of the data).
    pub fn is_btyd(&self) -> bool {
        self.acquisition_growth == 0.0 && self.rate_growth_per_year == 0.0 && self.price_growth_per_year == 0.0
    }
}

/// What a regime run planted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegimeTruth {
    pub regime: Regime,
    pub customers: u32,
    pub seed: u64,
    /// The process; its `purchase` and `spend` are the true Pareto/NBD and Gamma–Gamma models
    /// of the data where [`RegimeSpec::is_btyd`] (no growth).
    pub spec: RegimeSpec,
}

const CHUNK: u32 = 2048;

/// Simulates `customers` customers of `regime` (ids `R0000001`, …, amounts in whole cents).
/// Deterministic for a seed whatever the number of threads.
pub fn simulate_regime(regime: Regime, customers: u32, seed: u64, par: &impl Parallel) -> (Transactions, RegimeTruth) {
    let spec = regime.spec();
    let chunks: Vec<Vec<(u32, i32, i64)>> =
        par.map(customers.div_ceil(CHUNK) as usize, |i| simulate_chunk(&spec, customers, seed, i as u32));
    let mut tx =
        Transactions { customer_ids: (1..=customers).map(|i| format!("R{i:07}")).collect(), ..Transactions::default() };
    for (c, d, cents) in chunks.into_iter().flatten() {
        tx.customer.push(c);
        tx.day.push(d);
        tx.amount.push(cents as f64 / 100.0);
    }
    (tx, RegimeTruth { regime, customers, seed, spec })
}

/// Gamma(shape, rate).
fn gamma(shape: f64, rate: f64) -> Gamma<f64> {
    Gamma::new(shape, 1.0 / rate).expect("positive shape and rate")
}

fn simulate_chunk(spec: &RegimeSpec, customers: u32, seed: u64, index: u32) -> Vec<(u32, i32, i64)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed_for(seed ^ 0x5E61_4E5, u64::from(index)));
    let start = day_of(spec.start);
    let end = day_of(spec.end);
    let (rates, lifetimes) = (gamma(spec.purchase.r, spec.purchase.alpha), gamma(spec.purchase.s, spec.purchase.beta));
    let scales = gamma(spec.spend.q, spec.spend.v);
    let year = 365.25;
    let rate_growth = (1.0 + spec.rate_growth_per_year).ln() / year;
    let price_growth = (1.0 + spec.price_growth_per_year).ln() / year;
    let mut out = Vec::new();
    for c in index * CHUNK..((index + 1) * CHUNK).min(customers) {
        // Acquisition day: density ∝ 1 + g·u on [0, 1], drawn by inverting its distribution.
        let u: f64 = rng.random();
        let g = spec.acquisition_growth;
        let at = if g > 0.0 { ((1.0 + g * (2.0 + g) * u).sqrt() - 1.0) / g } else { u };
        let first = start + (at * f64::from(spec.acquisition_days)).floor() as i32;
        if first > end {
            continue;
        }
        let lambda = rates.sample(&mut rng);
        let mu = lifetimes.sample(&mut rng);
        let death = f64::from(first) + Exp::new(mu).expect("a positive rate").sample(&mut rng);
        let nu = scales.sample(&mut rng);
        let per_purchase = gamma(spec.spend.p, nu);
        let spend = |rng: &mut Xoshiro256PlusPlus, day: i32| {
            let grown = (price_growth * f64::from(day - start)).exp();
            ((per_purchase.sample(rng) * grown * 100.0).round() as i64).max(1)
        };
        out.push((c, first, spend(&mut rng, first)));
        // Later purchases: a Poisson process of rate λ·e^{growth·t}, by thinning at its peak rate.
        let peak = lambda * (rate_growth * f64::from(end - start)).exp();
        let mut t = f64::from(first);
        loop {
            t += Exp::new(peak).expect("a positive rate").sample(&mut rng);
            if t >= death || t >= f64::from(end + 1) {
                break;
            }
            let now = lambda * (rate_growth * (t - f64::from(start))).exp();
            if rng.random::<f64>() * peak <= now {
                let day = t.floor() as i32;
                out.push((c, day, spend(&mut rng, day)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::btyd::baselines::histories;
    use crate::domain::btyd::pareto_nbd::ParetoNbd;
    use crate::domain::btyd::{Summary, group};
    use crate::domain::shards::Serial;

    #[test]
    fn the_same_seed_gives_the_same_data_and_every_regime_has_purchases_in_its_span() {
        for regime in Regime::ALL {
            let (a, truth) = simulate_regime(regime, 3000, 5, &Serial);
            let (b, _) = simulate_regime(regime, 3000, 5, &Serial);
            assert_eq!(a.day, b.day);
            assert_eq!(a.amount, b.amount);
            let s = regime.spec();
            assert!(a.day.iter().all(|&d| d >= day_of(s.start) && d <= day_of(s.end)), "{regime:?}");
            assert!(a.amount.iter().all(|&x| x > 0.0));
            assert_eq!(truth.spec.is_btyd(), regime != Regime::Trend);
            let per_customer = a.len() as f64 / a.customers() as f64;
            assert!(per_customer > 1.5, "{regime:?}: {per_customer} purchases per customer");
        }
    }

    /// The activity table in one-day periods (every day ends a period, so any day can end a
    /// history).
    fn daily(tx: &Transactions) -> crate::domain::activity::Activity {
        let anchor = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        crate::domain::activity::aggregate(tx, crate::domain::calendar::PeriodUnit::Days { length: 1, anchor }).unwrap()
    }

    #[test]
    fn pareto_nbd_recovers_the_planted_parameters_of_the_btyd_regime() {
        // Whole days make t_x and T discrete; the estimates still land near the truth.
        let (tx, truth) = simulate_regime(Regime::Btyd, 20_000, 11, &Serial);
        let end = day_of(truth.spec.calibration_end);
        let summaries: Vec<Summary> = histories(&daily(&tx), end).into_iter().flatten().map(|h| h.summary).collect();
        let model = ParetoNbd::fit(&group(&summaries).unwrap()).unwrap();
        let (fit, se) = (model.params(), model.standard_errors());
        let p = truth.spec.purchase;
        let rows = [(fit.r, p.r, "r"), (fit.alpha, p.alpha, "alpha"), (fit.s, p.s, "s"), (fit.beta, p.beta, "beta")];
        for ((got, want, name), se) in rows.into_iter().zip(se) {
            let se = se.expect("a standard error");
            assert!((got - want).abs() < 3.0 * se, "{name}: fitted {got} (se {se}), planted {want}");
        }
    }

    #[test]
    fn pareto_nbd_on_long_lived_b2b_accounts_stops_at_the_shape_cap_and_ranks_like_the_truth() {
        // 600 accounts that rarely drop out in the window: the likelihood rises along s, β → ∞
        // (an uncapped fit walked there for 17 minutes); the capped fit ranks churn like the truth.
        let (tx, truth) = simulate_regime(Regime::B2b, 600, 7, &Serial);
        let (cal, end) = (day_of(truth.spec.calibration_end), day_of(truth.spec.end));
        let mut silent = vec![true; tx.customers()];
        for (&c, &d) in tx.customer.iter().zip(&tx.day) {
            if d > cal {
                silent[c as usize] = false;
            }
        }
        let (summaries, labels): (Vec<Summary>, Vec<bool>) = histories(&daily(&tx), cal)
            .into_iter()
            .zip(&silent)
            .filter_map(|(h, &s)| h.map(|h| (h.summary, s)))
            .unzip();
        let model = ParetoNbd::fit_with(&summaries, &crate::model::parallel::Rayon).unwrap();
        assert!(model.params().s <= crate::domain::btyd::pareto_nbd::SHAPE_CAP, "{:?}", model.params());
        let days = f64::from(end - cal);
        let auc_of = |m: &ParetoNbd| {
            let p: Vec<f64> = summaries.iter().map(|c| m.p_no_purchase(c, days)).collect();
            crate::domain::metrics::auc(&p, &labels)
        };
        let (fitted, planted) = (auc_of(&model), auc_of(&ParetoNbd::with_params(truth.spec.purchase)));
        assert!(fitted > planted - 0.02, "AUC {fitted:.3}, the planted model's {planted:.3}");
    }
}
