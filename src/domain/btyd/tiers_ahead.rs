//! Where a customer will stand in the value tiers at each horizon, from its own purchase history:
//! the probability that it buys in period h and that its trailing value then reaches each tier's
//! cut — for a key account, the probability of still being key at h; one minus it, of leaving.
//!
//! A customer is in tier k at period T + h when it buys in that period and its trailing value
//! (spend over the last W periods, that one included) is at least `cuts[k]` (the segmenter's
//! rule). At T + h the window still holds the known spend of periods T + h − W + 1 ..= T, the
//! rest is to come. Given the customer alive at T (probability `p_alive`), its purchase rate λ is
//! Gamma(r + x, α + T) — the posterior of BG/NBD and of Pareto/NBD alike — and its purchases in
//! disjoint spans are Poisson given λ; each purchase adds its expected spend per purchase z (the
//! Gamma–Gamma estimate). With K_h the known part, m = max(1, ⌈(cut − K_h) / z⌉) purchases are
//! needed over (T, T + d_h], at least one of them in period h (days (d_{h−1}, d_h]), so
//!
//! P(tier ≥ k at h | alive) = P(N(d_h) ≥ m) − P(N(δ_h) = 0, N(d_{h−1}) ≥ m),   δ_h = d_h − d_{h−1},
//!
//! and integrating λ out turns both terms into negative-binomial tails (closed form, through the
//! regularized incomplete beta function): E[P(Pois(λd) ≥ m)] = 1 − I_q(a, m) with a = r + x,
//! q = (α+T)/(α+T+d); E[e^{−λδ} P(Pois(λd′) ≥ m)] = ((α+T)/(α+T+δ))^a (1 − I_{q′}(a, m)),
//! q′ = (α+T+δ)/(α+T+δ+d′). A customer that is not alive buys nothing, so is in no tier.
//!
//! What it leaves out, knowingly: dropout inside the horizon (the customer alive at T keeps its
//! rate; over a few periods second order for the customers that can reach a tier), the spread of
//! spend per purchase (every purchase adds z), and the cuts' drift (the model's cuts hold).

use statrs::function::beta::beta_reg;

/// A customer's purchase rate given that it is alive: λ ~ Gamma(shape, rate), per day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateGivenAlive {
    pub shape: f64,
    pub rate: f64,
}

/// What the tier odds of one customer need.
#[derive(Clone, Copy, Debug)]
pub struct TierInputs<'a> {
    pub p_alive: f64,
    pub rate: RateGivenAlive,
    /// Expected spend per purchase (≤ 0 or not finite: purchases add nothing to the trailing
    /// value, so only the known spend can reach a cut).
    pub spend_per_purchase: f64,
    /// Spend of the last periods, newest (the as-of period) first; periods before the
    /// customer's first are absent.
    pub recent_spend: &'a [f64],
    /// The trailing window W, in periods.
    pub window: usize,
    /// Minimum trailing values of the tiers, highest tier first.
    pub cuts: &'a [f64],
}

/// Tier odds at one horizon.
#[derive(Clone, Debug, PartialEq)]
pub struct TiersAt {
    /// P(at least one purchase in period h).
    pub p_active: f64,
    /// `p_at_least[k]`: P(a purchase in period h and a trailing value ≥ `cuts[k]` then), so
    /// `p_at_least[0]` is P(in the top (key) tier at h).
    pub p_at_least: Vec<f64>,
}

impl TiersAt {
    /// P(in tier `k` at h): active with a trailing value in [cuts[k], cuts[k − 1]) (the lowest
    /// tier, one past the cuts, is every active customer below the last cut).
    pub fn p_tier(&self, k: usize) -> f64 {
        let upper = if k == 0 { 0.0 } else { self.p_at_least[k - 1] };
        let lower = self.p_at_least.get(k).copied().unwrap_or(self.p_active);
        (lower - upper).max(0.0)
    }
}

/// P(NB ≥ m) for the gamma(shape, rate)-mixed Poisson count over `d` days (m ≥ 1).
fn nb_at_least(shape: f64, rate: f64, d: f64, m: f64) -> f64 {
    if d <= 0.0 {
        return 0.0;
    }
    (1.0 - beta_reg(shape, m, rate / (rate + d))).clamp(0.0, 1.0)
}

/// The tier odds at the end of each period after the as-of date; `days[h − 1]` is the days from
/// the as-of date to the end of period h (increasing).
pub fn tiers_ahead(inputs: &TierInputs<'_>, days: &[f64]) -> Vec<TiersAt> {
    let RateGivenAlive { shape: a, rate: b } = inputs.rate;
    let z = inputs.spend_per_purchase;
    let p_alive = inputs.p_alive.clamp(0.0, 1.0);
    let mut before = 0.0;
    days.iter()
        .enumerate()
        .map(|(i, &d)| {
            let h = i + 1;
            let span = d - before;
            // The known periods still inside the window at T + h: T − j for j < W − h.
            let kept = inputs.window.saturating_sub(h).min(inputs.recent_spend.len());
            let known: f64 = inputs.recent_spend[..kept].iter().sum();
            let none_in_period = (b / (b + span)).powf(a);
            let p_active = p_alive * (1.0 - none_in_period);
            let p_at_least = inputs
                .cuts
                .iter()
                .map(|&cut| {
                    let need = cut - known;
                    let m = if need <= 0.0 {
                        1.0
                    } else if z > 0.0 && z.is_finite() {
                        (need / z).ceil().max(1.0)
                    } else {
                        return 0.0;
                    };
                    let given_alive = nb_at_least(a, b, d, m) - none_in_period * nb_at_least(a, b + span, before, m);
                    p_alive * given_alive.clamp(0.0, 1.0)
                })
                .collect();
            before = d;
            TiersAt { p_active, p_at_least }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{Continuous, Gamma};

    /// The same probabilities by brute force: λ integrated on a fine grid, the Poisson counts
    /// of the earlier periods and of period h summed term by term.
    fn by_quadrature(inputs: &TierInputs<'_>, days: &[f64], h: usize, cut: f64) -> f64 {
        let g = Gamma::new(inputs.rate.shape, inputs.rate.rate).unwrap();
        let before = if h == 1 { 0.0 } else { days[h - 2] };
        let span = days[h - 1] - before;
        let kept = inputs.window.saturating_sub(h).min(inputs.recent_spend.len());
        let known: f64 = inputs.recent_spend[..kept].iter().sum();
        // Poisson pmfs by recurrence, tails of the earlier periods' count.
        let pmf = |mu: f64, out: &mut [f64]| {
            out[0] = (-mu).exp();
            for n in 1..out.len() {
                out[n] = out[n - 1] * mu / n as f64;
            }
        };
        let (steps, top, counts) = (6_000, 0.3, 80);
        let dl = top / f64::from(steps);
        let (mut p_before, mut p_in, mut tail) = (vec![0.0; counts], vec![0.0; counts], vec![0.0; counts + 1]);
        let mut total = 0.0;
        for i in 0..steps {
            let lambda = (f64::from(i) + 0.5) * dl;
            pmf(lambda * before, &mut p_before);
            pmf(lambda * span, &mut p_in);
            for n in (0..counts).rev() {
                tail[n] = tail[n + 1] + p_before[n];
            }
            let mut p = 0.0;
            for (n_in, q) in p_in.iter().enumerate().skip(1) {
                // The fewest earlier purchases that reach the cut with n_in in period h.
                let need = ((cut - known) / inputs.spend_per_purchase - n_in as f64).ceil().max(0.0) as usize;
                p += q * tail[need.min(counts)];
            }
            total += g.pdf(lambda) * p * dl;
        }
        inputs.p_alive * total
    }

    #[test]
    fn tier_odds_match_the_integral_they_stand_for() {
        let recent = [120.0, 0.0, 80.0, 40.0, 0.0];
        let inputs = TierInputs {
            p_alive: 0.8,
            rate: RateGivenAlive { shape: 3.5, rate: 90.0 },
            spend_per_purchase: 30.0,
            recent_spend: &recent,
            window: 4,
            cuts: &[250.0, 100.0],
        };
        let days = [31.0, 59.0, 90.0, 120.0, 151.0];
        let odds = tiers_ahead(&inputs, &days);
        for (h, at) in odds.iter().enumerate() {
            for (k, &cut) in inputs.cuts.iter().enumerate() {
                let want = by_quadrature(&inputs, &days, h + 1, cut);
                assert!(
                    (at.p_at_least[k] - want).abs() < 2e-4,
                    "h {} cut {cut}: {} vs {want}",
                    h + 1,
                    at.p_at_least[k]
                );
            }
            assert!(at.p_at_least[0] <= at.p_at_least[1] && at.p_at_least[1] <= at.p_active + 1e-12);
        }
    }

    #[test]
    fn hand_computed_cases() {
        // Known spend already above the cut at h = 1 (window 3 keeps periods T and T − 1):
        // key exactly when it buys in period 1, P = p_alive (1 − (b/(b+δ))^a).
        let inputs = TierInputs {
            p_alive: 0.5,
            rate: RateGivenAlive { shape: 2.0, rate: 10.0 },
            spend_per_purchase: 5.0,
            recent_spend: &[300.0, 200.0, 1000.0],
            window: 3,
            cuts: &[400.0],
        };
        let at = &tiers_ahead(&inputs, &[10.0])[0];
        let p = 0.5 * (1.0 - 0.25);
        assert!((at.p_active - p).abs() < 1e-12 && (at.p_at_least[0] - p).abs() < 1e-12);
        assert!((at.p_tier(0) - p).abs() < 1e-12 && at.p_tier(1).abs() < 1e-12);
        // One purchase short of the cut at h = 1: the same, since one purchase in period 1 is
        // needed anyway. Two short: P(N ≥ 2) over 10 days, NB(2, 1/2): 1 − 1/4 − 2·1/8 = 1/2.
        let two_short = TierInputs { recent_spend: &[390.0, 0.0], spend_per_purchase: 6.0, ..inputs };
        let at = &tiers_ahead(&two_short, &[10.0])[0];
        assert!((at.p_at_least[0] - 0.5 * 0.5).abs() < 1e-12);
        // Without spend per purchase only the known spend counts; a dead customer is nowhere.
        let no_spend = TierInputs { spend_per_purchase: 0.0, recent_spend: &[390.0], ..inputs };
        assert_eq!(tiers_ahead(&no_spend, &[10.0])[0].p_at_least[0], 0.0);
        let dead = TierInputs { p_alive: 0.0, ..inputs };
        let at = &tiers_ahead(&dead, &[10.0, 20.0])[1];
        assert_eq!((at.p_active, at.p_at_least[0]), (0.0, 0.0));
        // Past the window the known spend is gone: with W = 1 nothing is kept even at h = 1.
        let short = TierInputs { window: 1, spend_per_purchase: 1000.0, ..inputs };
        let at = &tiers_ahead(&short, &[10.0])[0];
        assert!((at.p_at_least[0] - p).abs() < 1e-12);
    }
}
