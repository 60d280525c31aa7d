#!/usr/bin/env python3
"""Benchmark kam against the field's standard CLV models (python `lifetimes`) on CDNOW.

What it does
------------
1. Reads the CDNOW master file (23,570 customers, 1997-01-01..1998-06-30) and splits it at
   1997-09-30: calibration = transactions on or before that day, holdout = 1997-10-01..1998-06-30
   (273 days, inclusive). A purchase occasion is a distinct (customer, day); spend of a day is the
   sum of its rows.
2. Fits, with time in days (lifetimes' summary_data_from_transaction_data, freq='D'):
     * BG/NBD      (lifetimes.BetaGeoFitter)   + Gamma-Gamma spend model
     * Pareto/NBD  (lifetimes.ParetoNBDFitter) + Gamma-Gamma spend model
   Gamma-Gamma (lifetimes.GammaGammaFitter) is fitted on customers with frequency > 0 and
   monetary_value > 0 in calibration (monetary_value = mean spend of the repeat purchase days, as
   lifetimes defines it); customers with frequency 0 get its population mean.
   Penalizers default to 0 (all fits converge without one on this split); see --penalizer-*.
3. For every customer computes
     * P(no purchase in the holdout | calibration history) = P(X(t)=0 | x, t_x, T), t = 273 days:
         BG/NBD:     (1 - P(alive)) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x)
         Pareto/NBD: (1 - P(alive)) + P(alive) * E[exp(-lambda*min(tau, t)) | alive], with
                     lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T) a posteriori and
                     tau ~ Exp(mu) the remaining lifetime:
                     = A^(r+x) B^s/((A+t)^(r+x) (B+t)^s)
                       + integral_0^t (s/B)(B/(B+u))^(s+1) (A/(A+u))^(r+x) du   (A=alpha+T, B=beta+T)
                     (64-point Gauss-Legendre; cross-checked against lifetimes'
                     ParetoNBDFitter.conditional_probability_of_n_purchases_up_to_time(0, ...)).
       `--self-check` also verifies both formulas against a Monte Carlo simulation of the fitted
       models (conditioning on simulated histories equal to a few (x, t_x, T)).
     * predicted holdout spend = conditional expected number of purchases in t days
       x Gamma-Gamma conditional expected spend per purchase.
4. Runs `KAM evaluate data/cdnow/CDNOW_master.txt --amount-col 4 --calibration-end 1997-09-30
   --json [--kam-args ...]` from the repo root and reads kam's model and its two baselines.
5. Prints one table (rows = metrics, columns = BG/NBD+GG, Pareto/NBD+GG, kam model,
   kam persistence, kam segment-average), computing for the lifetimes models exactly the metrics
   kam computes (src/domain/metrics.rs):
     AUC (Mann-Whitney, ties = half via average ranks) / Brier / log-loss (p clipped to
     [1e-15, 1-1e-15]) for the label "no purchase in the holdout"; and MAE, RMSE, Spearman
     (Pearson on average ranks), predicted and actual totals, total error % = 100 (pred-actual)/actual,
     top-20% capture (share of actual holdout spend held by the round(0.2 n) customers with the
     highest predicted spend, ties broken by customer order) for holdout spend.
   `--json out.json` also writes all numbers, fitted parameters and diagnostics.

How to run (from the repo root, with a release build of kam present)
--------------------------------------------------------------------
    python3 -m venv /tmp/lt-venv && /tmp/lt-venv/bin/pip install -r bench/requirements-lifetimes.txt
    /tmp/lt-venv/bin/python bench/compare_lifetimes.py --kam target/release/kam --json /tmp/lt.json

    options: --kam PATH (default target/release/kam, relative to the repo root),
             --kam-args "..." (extra arguments passed to `kam evaluate`), --data PATH,
             --penalizer-bgnbd / --penalizer-pareto / --penalizer-gg FLOAT (default 0),
             --seed INT (default 0; Pareto/NBD's Nelder-Mead start and the self-check),
             --self-check [--self-check-sims N] (Monte Carlo check of the P(X(t)=0) formulas,
             10M simulated customers per model by default, ~10 s and ~2 GB RAM).

Runtime on the 2-core dev machine: 10-20 s wall (the Pareto/NBD Nelder-Mead fit takes 5-12 s,
everything else incl. kam evaluate ~2 s); ~10 s more with --self-check.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import roots_legendre

import lifetimes
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAL_END = "1997-09-30"
HOLDOUT_START = "1997-10-01"
HOLDOUT_END = "1998-06-30"
T_HOLDOUT = float((pd.Timestamp(HOLDOUT_END) - pd.Timestamp(CAL_END)).days)  # 273 days


# ---------------------------------------------------------------- metrics (as in kam's metrics.rs)
def average_ranks(x):
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ranks = np.empty(len(x))
    n = len(x)
    # group runs of equal values
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e - 1) / 2.0 + 1.0
    return ranks


def pearson(a, b):
    a = np.asarray(a, float) - np.mean(a)
    b = np.asarray(b, float) - np.mean(b)
    saa, sbb = (a * a).sum(), (b * b).sum()
    return 0.0 if saa == 0 or sbb == 0 else float((a * b).sum() / np.sqrt(saa * sbb))


def spearman(a, b):
    return pearson(average_ranks(a), average_ranks(b))


def auc(score, label):
    label = np.asarray(label, bool)
    ranks = average_ranks(score)
    pos = label.sum()
    neg = len(label) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return float((ranks[label].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def brier(p, label):
    return float(np.mean((np.asarray(p, float) - np.asarray(label, float)) ** 2))


def log_loss(p, label):
    p = np.clip(np.asarray(p, float), 1e-15, 1 - 1e-15)
    y = np.asarray(label, bool)
    return float(np.mean(-np.where(y, np.log(p), np.log1p(-p))))


def top_share_capture(pred, actual, share=0.2):
    pred = np.asarray(pred, float)
    actual = np.asarray(actual, float)
    # descending by prediction, ties by customer order (stable sort on the negated value)
    order = np.argsort(-pred, kind="stable")
    k = int(round(len(pred) * share))
    total = actual.sum()
    return float("nan") if total == 0 else float(actual[order[:k]].sum() / total)


def churn_scores(p, label):
    return {"auc": auc(p, label), "brier": brier(p, label), "log_loss": log_loss(p, label)}


def spend_errors(pred, actual):
    pred = np.asarray(pred, float)
    actual = np.asarray(actual, float)
    pt, at = float(pred.sum()), float(actual.sum())
    return {
        "mae": float(np.mean(np.abs(pred - actual))),
        "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
        "spearman": spearman(pred, actual),
        "predicted_total": pt,
        "actual_total": at,
        "total_error_pct": 100.0 * (pt - at) / at,
        "top20_capture": top_share_capture(pred, actual, 0.2),
    }


# ---------------------------------------------------------------- P(X(t) = 0 | history)
def bgnbd_p_zero(bg, t, x, tx, T):
    r, alpha, a, b = bg._unload_params("r", "alpha", "a", "b")
    p_alive = bg.conditional_probability_alive(x, tx, T)
    # alive: lambda | history ~ Gamma(r+x, alpha+T); no purchase in t iff the next gap > t
    e_zero = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return (1 - p_alive) + p_alive * e_zero


def pareto_p_zero(pn, t, x, tx, T, nodes=64):
    r, alpha, s, beta = pn._unload_params("r", "alpha", "s", "beta")
    x = np.asarray(x, float)[:, None]
    A = np.asarray(T, float)[:, None] + alpha
    B = np.asarray(T, float)[:, None] + beta
    p_alive = np.asarray(pn.conditional_probability_alive(np.ravel(x), np.asarray(tx, float), np.asarray(T, float)))
    # alive, rates lambda ~ Gamma(r+x, A), mu ~ Gamma(s, B), remaining lifetime tau ~ Exp(mu):
    # P(0 | lambda, mu) = E_tau exp(-lambda min(tau, t))
    #                   = exp(-(lambda+mu) t) + int_0^t mu exp(-(lambda+mu) u) du
    z, w = roots_legendre(nodes)
    u = (z + 1) * t / 2.0
    w = w * t / 2.0
    both_survive = np.exp((r + x) * np.log(A / (A + t)) + s * np.log(B / (B + t)))[:, 0]
    integrand = (s / B) * np.exp((s + 1) * np.log(B / (B + u)) + (r + x) * np.log(A / (A + u)))
    e_zero = both_survive + integrand @ w
    return (1 - p_alive) + p_alive * e_zero


# ---------------------------------------------------------------- Monte Carlo self-check
def self_check(bg, pn, t, rng, n_sim=10_000_000, T0=229.0, width=1.0):
    """Simulate the fitted models for customers of age T0 and compare, for a few histories
    (x, t_x), the share with no holdout purchase against the closed forms above."""
    cases = [(0, 0.0), (1, 30.0), (1, 200.0), (2, 150.0), (4, 210.0), (8, 225.0)]
    out = []
    r, alpha, s, beta = pn._unload_params("r", "alpha", "s", "beta")
    lam = rng.gamma(r, 1.0 / alpha, n_sim)
    mu = rng.gamma(s, 1.0 / beta, n_sim)
    tau = rng.exponential(1.0, n_sim) / mu
    life_cal = np.minimum(tau, T0)
    n1 = rng.poisson(lam * life_cal)
    txs = np.where(n1 > 0, life_cal * rng.random(n_sim) ** (1.0 / np.maximum(n1, 1)), 0.0)
    n2 = rng.poisson(lam * np.clip(np.minimum(tau, T0 + t) - T0, 0, None))
    sims = {"pareto": (n1, txs, n2)}

    r_, alpha_, a_, b_ = bg._unload_params("r", "alpha", "a", "b")
    lam = rng.gamma(r_, 1.0 / alpha_, n_sim)
    p = rng.beta(a_, b_, n_sim)
    n1 = np.zeros(n_sim, int)
    n2 = np.zeros(n_sim, int)
    txs = np.zeros(n_sim)
    now = np.zeros(n_sim)
    active = np.arange(n_sim)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        tn = now[active]
        in_cal = tn <= T0
        in_hold = (tn > T0) & (tn <= T0 + t)
        n1[active[in_cal]] += 1
        txs[active[in_cal]] = tn[in_cal]
        n2[active[in_hold]] += 1
        # after a repeat purchase the customer drops out with probability p
        alive = (tn <= T0 + t) & (rng.random(active.size) >= p[active])
        active = active[alive]
    sims["bgnbd"] = (n1, txs, n2)

    for model, (n1, txs, n2) in sims.items():
        for x, tx in cases:
            sel = (n1 == x) & ((x == 0) | (np.abs(txs - tx) <= width / 2))
            m = int(sel.sum())
            emp = float(np.mean(n2[sel] == 0)) if m else float("nan")
            se = float(np.sqrt(emp * (1 - emp) / m)) if m else float("nan")
            args = (np.array([x]), np.array([tx]), np.array([T0]))
            f = bgnbd_p_zero(bg, t, *args) if model == "bgnbd" else pareto_p_zero(pn, t, *args)
            out.append({"model": model, "x": x, "t_x": tx, "T": T0, "matches": m,
                        "simulated": emp, "se": se, "formula": float(np.ravel(f)[0])})
    return out


# ---------------------------------------------------------------- kam
def run_kam(kam, data_rel, extra):
    kam_path = kam if os.path.isabs(kam) else os.path.join(REPO, kam)
    cmd = [kam_path, "evaluate", data_rel, "--amount-col", "4", "--calibration-end", CAL_END, "--json"] + extra
    t0 = time.time()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"kam failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return json.loads(res.stdout), cmd, time.time() - t0


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kam", default="target/release/kam", help="kam binary (relative to the repo root)")
    ap.add_argument("--kam-args", default="", help="extra arguments for `kam evaluate`, one string")
    ap.add_argument("--data", default="data/cdnow/CDNOW_master.txt", help="CDNOW master file (relative to the repo root)")
    ap.add_argument("--penalizer-bgnbd", type=float, default=0.0)
    ap.add_argument("--penalizer-pareto", type=float, default=0.0)
    ap.add_argument("--penalizer-gg", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0, help="seed (Pareto/NBD Nelder-Mead start, self-check)")
    ap.add_argument("--self-check", action="store_true", help="Monte Carlo check of the P(X(t)=0) formulas")
    ap.add_argument("--self-check-sims", type=int, default=10_000_000, help="simulated customers per model")
    ap.add_argument("--json", metavar="OUT", help="also write all results as JSON")
    args = ap.parse_args()
    t_start = time.time()
    np.random.seed(args.seed)
    timings = {}

    # --- data
    path = args.data if os.path.isabs(args.data) else os.path.join(REPO, args.data)
    df = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str})
    df.columns = ["customer_id", "date", "cds", "amount"]
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    customers = pd.Index(pd.unique(df["customer_id"]))  # order of first appearance = kam's order
    cal = df[df["date"] <= CAL_END]
    hold = df[(df["date"] >= HOLDOUT_START) & (df["date"] <= HOLDOUT_END)]
    summ = summary_data_from_transaction_data(
        cal, "customer_id", "date", "amount", observation_period_end=CAL_END, freq="D"
    ).reindex(customers)
    if summ.isna().any().any():
        sys.exit("some customers have no calibration purchase; this script assumes all are evaluated")
    x, tx, T, m = (summ[c].to_numpy(float) for c in ["frequency", "recency", "T", "monetary_value"])
    actual = hold.groupby("customer_id")["amount"].sum().reindex(customers, fill_value=0.0).to_numpy()
    bought = hold.groupby("customer_id").size().reindex(customers, fill_value=0).to_numpy() > 0
    no_purchase = ~bought
    timings["load"] = time.time() - t_start

    # --- fits (lifetimes prints/raises on non-convergence)
    diag = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.time()
        bg = BetaGeoFitter(penalizer_coef=args.penalizer_bgnbd).fit(x, tx, T)
        timings["fit_bgnbd"] = time.time() - t0
        t0 = time.time()
        pn = ParetoNBDFitter(penalizer_coef=args.penalizer_pareto).fit(x, tx, T, tol=1e-8)
        timings["fit_pareto"] = time.time() - t0
        gg_mask = (x > 0) & (m > 0)
        t0 = time.time()
        gg = GammaGammaFitter(penalizer_coef=args.penalizer_gg).fit(x[gg_mask], m[gg_mask])
        timings["fit_gg"] = time.time() - t0

        t0 = time.time()
        spend_per = np.asarray(gg.conditional_expected_average_profit(x, m), float)
        models = {}
        for name, fitter, pzero in [("bgnbd_gg", bg, bgnbd_p_zero), ("pareto_gg", pn, pareto_p_zero)]:
            p0 = np.asarray(pzero(fitter, T_HOLDOUT, x, tx, T), float)
            ex = np.asarray(fitter.conditional_expected_number_of_purchases_up_to_time(T_HOLDOUT, x, tx, T), float)
            models[name] = {"p_zero": p0, "expected_purchases": ex, "spend": ex * spend_per}
        # cross-check the Pareto/NBD P(X=0) against lifetimes' own conditional pmf (Hardie note 028)
        p0_lt = np.asarray(pn.conditional_probability_of_n_purchases_up_to_time(0, T_HOLDOUT, x, tx, T), float)
        pareto_pmf_diff = float(np.nanmax(np.abs(p0_lt - models["pareto_gg"]["p_zero"])))
        timings["predict"] = time.time() - t0
    for w in caught:
        diag.append(f"{w.category.__name__}: {w.message}")
    for name, mdl in models.items():
        for k, v in mdl.items():
            if not np.all(np.isfinite(v)):
                diag.append(f"{name}.{k}: {int((~np.isfinite(v)).sum())} non-finite values")

    # --- kam
    kam_json, kam_cmd, timings["kam"] = run_kam(args.kam, args.data, shlex.split(args.kam_args))
    kam_split = (kam_json.get("calibration_end"), kam_json.get("holdout_start"), kam_json.get("holdout_end"))
    if kam_split != (CAL_END, HOLDOUT_START, HOLDOUT_END) or kam_json.get("customers") != len(customers):
        diag.append(f"kam evaluated a different split/population: calibration_end, holdout = {kam_split}, "
                    f"customers = {kam_json.get('customers')} (lifetimes columns use {CAL_END}, "
                    f"{HOLDOUT_START}..{HOLDOUT_END}, {len(customers)})")

    # --- table
    results = {}
    for name, mdl in models.items():
        results[name] = {
            "no_purchase_rate": float(no_purchase.mean()),
            "no_purchase": churn_scores(mdl["p_zero"], no_purchase),
            "holdout_spend": spend_errors(mdl["spend"], actual),
        }
    for key in ["model", "persistence", "segment_average"]:
        results["kam_" + key] = {
            "no_purchase_rate": kam_json["no_purchase_rate"],
            "no_purchase": {k: kam_json["no_purchase"][key][k] for k in ["auc", "brier", "log_loss"]},
            "holdout_spend": {k: kam_json["holdout_spend"][key][k] for k in
                              ["mae", "rmse", "spearman", "predicted_total", "actual_total",
                               "total_error_pct", "top20_capture"]},
        }

    cols = [("bgnbd_gg", "BG/NBD+GG"), ("pareto_gg", "Pareto/NBD+GG"), ("kam_model", "kam model"),
            ("kam_persistence", "kam persist."), ("kam_segment_average", "kam seg-avg")]
    rows = [
        ("customers", lambda r, c: f"{len(customers) if c.startswith('bg') or c.startswith('pa') else kam_json['customers']}"),
        ("no-purchase rate", lambda r, c: f"{r['no_purchase_rate']:.4f}"),
        ("no-purchase AUC", lambda r, c: f"{r['no_purchase']['auc']:.4f}"),
        ("no-purchase Brier", lambda r, c: f"{r['no_purchase']['brier']:.4f}"),
        ("no-purchase log-loss", lambda r, c: f"{r['no_purchase']['log_loss']:.4f}"),
        ("spend MAE", lambda r, c: f"{r['holdout_spend']['mae']:.2f}"),
        ("spend RMSE", lambda r, c: f"{r['holdout_spend']['rmse']:.2f}"),
        ("spend Spearman", lambda r, c: f"{r['holdout_spend']['spearman']:.4f}"),
        ("predicted total", lambda r, c: f"{r['holdout_spend']['predicted_total']:,.0f}"),
        ("actual total", lambda r, c: f"{r['holdout_spend']['actual_total']:,.0f}"),
        ("total error %", lambda r, c: f"{r['holdout_spend']['total_error_pct']:+.1f}"),
        ("top-20% capture", lambda r, c: f"{r['holdout_spend']['top20_capture']:.4f}"),
    ]
    w0 = max(len(r[0]) for r in rows)
    cells = [[fn(results[c], c) for c, _ in cols] for _, fn in rows]
    widths = [max(len(h), *(len(cr[i]) for cr in cells)) for i, (_, h) in enumerate(cols)]
    print(f"CDNOW holdout {HOLDOUT_START}..{HOLDOUT_END} ({T_HOLDOUT:.0f} days), calibration to {CAL_END}")
    print(f"{'metric':<{w0}}  " + "  ".join(f"{h:>{w}}" for (_, h), w in zip(cols, widths)))
    for (label, _), cr in zip(rows, cells):
        print(f"{label:<{w0}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cr, widths)))

    params = {
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "pareto": {k: float(v) for k, v in pn.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in gg.params_.items()},
    }
    penalizers = {"bgnbd": args.penalizer_bgnbd, "pareto": args.penalizer_pareto, "gamma_gamma": args.penalizer_gg}
    print()
    print("time unit: days; penalizers:", ", ".join(f"{k}={v:g}" for k, v in penalizers.items()))
    for k, v in params.items():
        print(f"{k} params: " + ", ".join(f"{a}={b:.4g}" for a, b in v.items()))
    print(f"Gamma-Gamma fitted on {int(gg_mask.sum())} customers (frequency>0 and monetary_value>0; "
          f"{int(((x > 0) & (m <= 0)).sum())} with frequency>0 but zero repeat spend left out of the fit); "
          f"population mean spend/purchase {float(gg.conditional_expected_average_profit(0, 0)):.2f}")
    print(f"Pareto/NBD P(X=0): max |own quadrature - lifetimes conditional pmf| = {pareto_pmf_diff:.2e}")
    print("kam command:", " ".join(shlex.quote(c) for c in kam_cmd))
    if diag:
        print("warnings/diagnostics:")
        for d in dict.fromkeys(diag):
            print("  " + d)

    check = None
    if args.self_check:
        t0 = time.time()
        check = self_check(bg, pn, T_HOLDOUT, np.random.default_rng(args.seed), n_sim=args.self_check_sims)
        timings["self_check"] = time.time() - t0
        print("\nself-check: P(no holdout purchase | x, t_x, T) simulated vs closed form")
        print(f"{'model':<7} {'x':>2} {'t_x':>5} {'T':>5} {'matches':>8} {'simulated':>10} {'+-se':>7} {'formula':>8}")
        for c in check:
            print(f"{c['model']:<7} {c['x']:>2} {c['t_x']:>5.0f} {c['T']:>5.0f} {c['matches']:>8} "
                  f"{c['simulated']:>10.4f} {c['se']:>7.4f} {c['formula']:>8.4f}")

    timings["total"] = time.time() - t_start
    print(f"\nruntime {timings['total']:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k != "total") + ")")

    if args.json:
        out = {
            "split": {"calibration_end": CAL_END, "holdout_start": HOLDOUT_START, "holdout_end": HOLDOUT_END,
                      "holdout_days": T_HOLDOUT, "customers": len(customers)},
            "results": results, "params": params, "penalizers": penalizers,
            "gamma_gamma_fit_customers": int(gg_mask.sum()),
            "pareto_p_zero_max_abs_diff_vs_lifetimes_pmf": pareto_pmf_diff,
            "kam_command": kam_cmd, "diagnostics": list(dict.fromkeys(diag)), "self_check": check,
            "versions": {"python": sys.version.split()[0], "lifetimes": lifetimes.__version__,
                         "numpy": np.__version__, "pandas": pd.__version__,
                         "scipy": __import__("scipy").__version__},
            "timings_s": timings,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
