//! The field's standard forecasts from raw transactions: each customer's (x, t_x, T) history at a
//! calibration end, in days, and BG/NBD and Pareto/NBD (purchases) with Gamma–Gamma (spend per
//! purchase) fitted on them — what `kam evaluate` sets beside its own chain.

use super::bgnbd::{BgNbd, BgNbdParams};
use super::gamma_gamma::{GammaGamma, GammaGammaParams, SpendSummary};
use super::pareto_nbd::{ParetoNbd, ParetoNbdParams};
use super::{BtydError, PurchaseModel, Summary};
use crate::domain::activity::Activity;
use crate::domain::btyd::tiers_ahead::RateGivenAlive;
use crate::domain::calendar::Day;
use crate::domain::sampling::{GOLDEN, splitmix64, unit_interval};
use crate::domain::shards::Parallel;
use serde::{Deserialize, Serialize};

/// One customer's purchase history at an end day. A purchase occasion is a distinct day with at
/// least one non-negative row (as in the panel); its spend is the sum of the day's rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct History {
    /// x repeat occasions, the last t_x days after the first, T days from the first to the end.
    pub summary: Summary,
    /// The repeat occasions' count and mean spend (the first is left out, as in the papers).
    pub spend: SpendSummary,
}

/// A [`History`] as score files, snapshots and the API carry it: x repeat purchase days, the
/// last `t_x` days after the first, `t` days from the first to the as-of date, and the repeat
/// purchases' mean spend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurchaseHistory {
    pub x: u32,
    pub t_x: u32,
    pub t: u32,
    pub repeat_mean_spend: f64,
}

impl From<&History> for PurchaseHistory {
    fn from(h: &History) -> Self {
        Self {
            x: h.summary.x as u32,
            t_x: h.summary.t_x as u32,
            t: h.summary.t as u32,
            repeat_mean_spend: h.spend.mean,
        }
    }
}

impl PurchaseHistory {
    pub fn to_history(&self) -> History {
        let x = f64::from(self.x);
        History {
            summary: Summary { x, t_x: f64::from(self.t_x), t: f64::from(self.t), weight: 1.0 },
            spend: SpendSummary { x, mean: self.repeat_mean_spend, weight: 1.0 },
        }
    }

    /// Whether it is a possible history: t_x ≤ T, t_x > 0 exactly when there are repeats, a
    /// finite, non-negative mean spend only with repeats.
    pub fn is_valid(&self) -> bool {
        self.t_x <= self.t
            && (self.x > 0) == (self.t_x > 0)
            && self.repeat_mean_spend.is_finite()
            && (self.x > 0 || self.repeat_mean_spend == 0.0)
    }
}

/// Every customer's history on the activity of the periods up to the one ending on `end` (`None`
/// for a customer with no purchase occasion by then). `end` is the last day of a period.
pub fn histories(activity: &Activity, end: Day) -> Vec<Option<History>> {
    (0..activity.customers()).map(|c| history_of(activity, c, end)).collect()
}

/// Customer `c`'s history, as [`histories`] gives it.
pub fn history_of(activity: &Activity, c: usize, end: Day) -> Option<History> {
    let unit = activity.unit;
    debug_assert_eq!(unit.end(unit.ordinal(end)), end, "a history ends on a period's last day");
    let last = unit.ordinal(end) - activity.first_ordinal();
    let (mut first, mut last_day, mut occasions, mut repeat_spend) = (None::<Day>, 0, 0u32, 0.0);
    for a in activity.customer(c).iter().take_while(|a| i64::from(a.period) <= last) {
        if a.occasions == 0 {
            continue;
        }
        if first.is_none() {
            first = Some(a.first_purchase_day);
            repeat_spend += a.purchase_spend - a.first_purchase_spend;
        } else {
            repeat_spend += a.purchase_spend;
        }
        occasions += a.occasions;
        last_day = a.last_purchase_day;
    }
    first.map(|first| {
        let x = f64::from(occasions - 1);
        History {
            summary: Summary { x, t_x: f64::from(last_day - first), t: f64::from(end - first), weight: 1.0 },
            spend: SpendSummary { x, mean: if x > 0.0 { repeat_spend / x } else { 0.0 }, weight: 1.0 },
        }
    })
}

/// A BTYD model's fitted parameters, as a backtest records them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    pub model: String,
    /// (name, estimate, standard error) of each parameter; the time unit is days.
    pub parameters: Vec<(String, f64, Option<f64>)>,
    pub log_likelihood: f64,
    /// Customers fitted on.
    pub customers: usize,
}

/// BG/NBD, Pareto/NBD and Gamma–Gamma fitted on the same histories; a model whose fit failed is
/// absent, with the reason kept.
#[derive(Clone, Debug)]
pub struct BtydBaselines {
    pub bg_nbd: Result<BgNbd, BtydError>,
    pub pareto_nbd: Result<ParetoNbd, BtydError>,
    pub gamma_gamma: Result<GammaGamma, BtydError>,
    /// Customers the models were fitted on (all, or the hash sample).
    pub customers_fitted: usize,
}

/// Customers a BTYD fit uses at most (about; a hash sample beyond).
pub const FIT_SAMPLE: usize = 50_000;

/// One customer's forecast over (T, T + t] from one purchase model with Gamma–Gamma spend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BtydForecast {
    pub p_no_purchase: f64,
    pub expected_purchases: f64,
    /// Expected purchases times the Gamma–Gamma expected spend per purchase.
    pub expected_spend: f64,
}

impl BtydBaselines {
    /// Fits the three models on the customers that have a history — all of them up to
    /// [`FIT_SAMPLE`], beyond that a deterministic hash sample of about that many (the parameters
    /// of four-parameter models are pinned down long before; the forecasts still cover everyone).
    pub fn fit(histories: &[Option<History>], par: &impl Parallel) -> Self {
        Self::fit_models(histories, par, true)
    }

    /// [`Self::fit`] with Pareto/NBD only when `pareto` (its likelihood sums a hypergeometric
    /// series per customer, hundreds of terms where dropout is rare; BG/NBD's is closed-form):
    /// without it, `pareto_nbd` is `Err(NotFitted)`.
    pub fn fit_models(histories: &[Option<History>], par: &impl Parallel, pareto: bool) -> Self {
        let n = histories.iter().flatten().count();
        let keep = FIT_SAMPLE as f64 / n.max(1) as f64;
        let sample: Vec<&History> = histories
            .iter()
            .enumerate()
            .filter_map(|(c, h)| {
                h.as_ref().filter(|_| keep >= 1.0 || unit_interval(splitmix64(c as u64 ^ GOLDEN)) < keep)
            })
            .collect();
        let summaries: Vec<Summary> = sample.iter().map(|h| h.summary).collect();
        let spends: Vec<SpendSummary> = sample.iter().map(|h| h.spend).collect();
        Self {
            bg_nbd: BgNbd::fit_with(&summaries, par),
            pareto_nbd: if pareto { ParetoNbd::fit_with(&summaries, par) } else { Err(BtydError::NotFitted) },
            gamma_gamma: GammaGamma::fit(&spends),
            customers_fitted: summaries.len(),
        }
    }

    /// Models with parameters fitted elsewhere (a model's own); `customers` they were fitted on.
    pub fn from_params(
        bg_nbd: Option<BgNbdParams>,
        pareto_nbd: Option<ParetoNbdParams>,
        gamma_gamma: Option<GammaGammaParams>,
        customers: usize,
    ) -> Self {
        Self {
            bg_nbd: bg_nbd.map(BgNbd::with_params).ok_or(BtydError::NotFitted),
            pareto_nbd: pareto_nbd.map(ParetoNbd::with_params).ok_or(BtydError::NotFitted),
            gamma_gamma: gamma_gamma.map(GammaGamma::with_params).ok_or(BtydError::NotFitted),
            customers_fitted: customers,
        }
    }

    /// Expected spend per purchase of `h` (0 when Gamma–Gamma could not be fitted).
    pub fn spend_per_purchase(&self, h: &History) -> f64 {
        self.gamma_gamma.as_ref().map_or(0.0, |g| g.expected_spend(h.spend.x, h.spend.mean))
    }

    /// The BG/NBD forecast of `h` over the next `t` days.
    pub fn bg_nbd_forecast(&self, h: &History, t: f64) -> Option<BtydForecast> {
        Some(self.forecast(self.bg_nbd.as_ref().ok()?, h, t))
    }

    /// The Pareto/NBD forecast of `h` over the next `t` days.
    pub fn pareto_nbd_forecast(&self, h: &History, t: f64) -> Option<BtydForecast> {
        Some(self.forecast(self.pareto_nbd.as_ref().ok()?, h, t))
    }

    fn forecast(&self, m: &impl PurchaseModel, h: &History, t: f64) -> BtydForecast {
        let expected_purchases = m.expected_purchases(&h.summary, t);
        BtydForecast {
            p_no_purchase: m.p_no_purchase(&h.summary, t),
            expected_purchases,
            expected_spend: expected_purchases * self.spend_per_purchase(h),
        }
    }

    /// P(alive) of `h` under `model` (`None` when that model is not fitted).
    pub fn p_alive(&self, model: super::blend::BtydModel, h: &History) -> Option<f64> {
        match model {
            super::blend::BtydModel::BgNbd => self.bg_nbd.as_ref().ok().map(|m| m.p_alive(&h.summary)),
            super::blend::BtydModel::ParetoNbd => self.pareto_nbd.as_ref().ok().map(|m| m.p_alive(&h.summary)),
        }
    }

    /// The purchase rate of `h` given that it is alive under `model`, per day: Gamma(r + x, α + T)
    /// for BG/NBD and Pareto/NBD alike (`None` when that model is not fitted).
    pub fn rate_given_alive(&self, model: super::blend::BtydModel, h: &History) -> Option<RateGivenAlive> {
        let (r, alpha) = match model {
            super::blend::BtydModel::BgNbd => self.bg_nbd.as_ref().ok().map(|m| (m.params().r, m.params().alpha))?,
            super::blend::BtydModel::ParetoNbd => {
                self.pareto_nbd.as_ref().ok().map(|m| (m.params().r, m.params().alpha))?
            }
        };
        Some(RateGivenAlive { shape: r + h.summary.x, rate: alpha + h.summary.t })
    }

    /// The forecast of `h` under `model` over the next `t` days.
    pub fn forecast_with(&self, model: super::blend::BtydModel, h: &History, t: f64) -> Option<BtydForecast> {
        match model {
            super::blend::BtydModel::BgNbd => self.bg_nbd_forecast(h, t),
            super::blend::BtydModel::ParetoNbd => self.pareto_nbd_forecast(h, t),
        }
    }

    /// Why fits failed, one line per failed model.
    pub fn failures(&self) -> Vec<String> {
        [
            ("BG/NBD", self.bg_nbd.as_ref().err()),
            ("Pareto/NBD", self.pareto_nbd.as_ref().err()),
            ("Gamma–Gamma", self.gamma_gamma.as_ref().err()),
        ]
        .into_iter()
        .filter_map(|(name, e)| e.filter(|e| **e != BtydError::NotFitted).map(|e| format!("{name}: {e}")))
        .collect()
    }

    /// What the fits found, for the record (failed fits left out).
    pub fn reports(&self) -> Vec<FitReport> {
        let named = |model: &str, names: &[&str], v: &[f64], se: &[Option<f64>], ll: f64| FitReport {
            model: model.into(),
            parameters: names.iter().zip(v).zip(se).map(|((n, v), se)| (n.to_string(), *v, *se)).collect(),
            log_likelihood: ll,
            customers: self.customers_fitted,
        };
        let mut out = Vec::new();
        if let Ok(m) = &self.bg_nbd {
            let p = m.params();
            out.push(named(
                "bg_nbd",
                &["r", "alpha", "a", "b"],
                &[p.r, p.alpha, p.a, p.b],
                &m.standard_errors(),
                m.log_likelihood(),
            ));
        }
        if let Ok(m) = &self.pareto_nbd {
            let p = m.params();
            out.push(named(
                "pareto_nbd",
                &["r", "alpha", "s", "beta"],
                &[p.r, p.alpha, p.s, p.beta],
                &m.standard_errors(),
                m.log_likelihood(),
            ));
        }
        if let Ok(m) = &self.gamma_gamma {
            let p = m.params();
            out.push(named(
                "gamma_gamma",
                &["p", "q", "gamma"],
                &[p.p, p.q, p.v],
                &m.standard_errors(),
                m.log_likelihood(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_count_distinct_purchase_days_and_leave_returns_and_later_rows_out() {
        let tx = crate::domain::transactions::Transactions {
            customer_ids: vec!["a".into(), "b".into(), "c".into()],
            customer: vec![0, 0, 0, 0, 0, 1, 2, 0],
            day: vec![10, 10, 13, 20, 21, 15, 25, 40],
            amount: vec![5.0, 7.0, 30.0, 10.0, -4.0, 8.0, -3.0, 99.0],
            margin: None,
        };
        // Periods of ten days from 1970-01-01: days 0–9, 10–19, 20–29, …
        let unit = crate::domain::calendar::PeriodUnit::Days {
            length: 10,
            anchor: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        };
        let h = histories(&crate::domain::activity::aggregate(&tx, unit).unwrap(), 29);
        // a: purchases on days 10 (12), 13 (30), 20 (10); day 21 only a return; day 40 too late.
        let a = h[0].unwrap();
        assert_eq!(a.summary, Summary { x: 2.0, t_x: 10.0, t: 19.0, weight: 1.0 });
        assert_eq!(a.spend, SpendSummary { x: 2.0, mean: 20.0, weight: 1.0 });
        let b = h[1].unwrap();
        assert_eq!((b.summary.x, b.summary.t_x, b.summary.t), (0.0, 0.0, 14.0));
        // c only returned something: no history.
        assert_eq!(h[2], None);
    }
}

/// Expected purchases over the next `horizon_days` and P(alive) of a customer observed `t` days,
/// by its repeat purchases (rows, `frequencies`) and the day of its last one (columns,
/// `recencies`, days after the first): the frequency × recency views lifetimes and CLVTools
/// draw. A frequency of 0 has only recency 0; its other cells are `None`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrequencyRecencyGrid {
    pub model: super::blend::BtydModel,
    pub t: f64,
    pub horizon_days: f64,
    pub frequencies: Vec<u32>,
    pub recencies: Vec<f64>,
    pub expected_purchases: Vec<Vec<Option<f64>>>,
    pub p_alive: Vec<Vec<Option<f64>>>,
}

impl BtydBaselines {
    /// The grid under `model` (`None` when it is not fitted) with `rows` frequencies from 0 to
    /// `max_frequency` and `columns` recencies from 0 to `t`.
    pub fn frequency_recency_grid(
        &self,
        model: super::blend::BtydModel,
        t: f64,
        horizon_days: f64,
        max_frequency: u32,
        rows: usize,
        columns: usize,
    ) -> Option<FrequencyRecencyGrid> {
        let rows = rows.max(2);
        let columns = columns.max(2);
        let mut frequencies: Vec<u32> =
            (0..rows).map(|i| (f64::from(max_frequency) * i as f64 / (rows - 1) as f64).round() as u32).collect();
        frequencies.dedup();
        let recencies: Vec<f64> = (0..columns).map(|j| (t * j as f64 / (columns - 1) as f64).round()).collect();
        let mut expected = Vec::with_capacity(frequencies.len());
        let mut alive = Vec::with_capacity(frequencies.len());
        for &x in &frequencies {
            let (mut e, mut a) = (Vec::with_capacity(columns), Vec::with_capacity(columns));
            for &t_x in &recencies {
                if (x == 0) != (t_x == 0.0) {
                    e.push(None);
                    a.push(None);
                    continue;
                }
                let h = History {
                    summary: Summary { x: f64::from(x), t_x, t, weight: 1.0 },
                    spend: SpendSummary { x: f64::from(x), mean: 0.0, weight: 1.0 },
                };
                e.push(Some(self.forecast_with(model, &h, horizon_days)?.expected_purchases));
                a.push(Some(self.p_alive(model, &h)?));
            }
            expected.push(e);
            alive.push(a);
        }
        Some(FrequencyRecencyGrid {
            model,
            t,
            horizon_days,
            frequencies,
            recencies,
            expected_purchases: expected,
            p_alive: alive,
        })
    }
}

#[cfg(test)]
mod grid_tests {
    use super::*;
    use crate::domain::btyd::blend::BtydModel;

    #[test]
    fn the_grid_holds_the_models_own_numbers_and_rises_with_recency() {
        let m = BtydBaselines::from_params(
            Some(BgNbdParams { r: 0.243, alpha: 4.414 * 7.0, a: 0.793, b: 2.426 }),
            None,
            None,
            0,
        );
        let g = m.frequency_recency_grid(BtydModel::BgNbd, 273.0, 31.0, 20, 11, 10).unwrap();
        assert_eq!(g.frequencies, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
        assert_eq!((g.recencies[0], *g.recencies.last().unwrap()), (0.0, 273.0));
        assert!(g.expected_purchases[0][0].is_some() && g.expected_purchases[0][1].is_none());
        assert!(g.expected_purchases[1][0].is_none());
        let h = History {
            summary: Summary { x: 10.0, t_x: 273.0, t: 273.0, weight: 1.0 },
            spend: SpendSummary { x: 10.0, mean: 0.0, weight: 1.0 },
        };
        let bg = m.bg_nbd.as_ref().unwrap();
        assert!((g.p_alive[5][9].unwrap() - bg.p_alive(&h.summary)).abs() < 1e-12);
        assert!((g.expected_purchases[5][9].unwrap() - bg.expected_purchases(&h.summary, 31.0)).abs() < 1e-12);
        // A heavy buyer silent for long is likelier gone than one who just bought.
        for row in &g.p_alive[1..] {
            let known: Vec<f64> = row.iter().flatten().copied().collect();
            assert!(known.windows(2).all(|w| w[0] <= w[1] + 1e-12), "{known:?}");
        }
    }
}
