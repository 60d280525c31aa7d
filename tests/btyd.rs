//! The BTYD models on the CDNOW sample of the papers (2,357 customers, 39-week calibration, time
//! in weeks; `data/cdnow/cdnow_customers_summary.csv` from the lifetimes package): the published
//! parameters come back to 3 significant figures.

use crate::util::cdnow_file;
use kam::domain::btyd::Summary;
use kam::domain::btyd::bgnbd::BgNbd;

fn cdnow_summaries() -> Vec<Summary> {
    let path = cdnow_file("cdnow_customers_summary.csv");
    let mut r = csv::Reader::from_path(&path).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let f = |i: usize| rec[i].parse::<f64>().unwrap();
            Summary { x: f(1), t_x: f(2), t: f(3), weight: 1.0 }
        })
        .collect()
}

fn three_figures(got: f64, published: f64) -> bool {
    let scale = 10f64.powf(published.abs().log10().floor() - 2.0);
    (got / scale).round() == (published / scale).round()
}

#[test]
fn bg_nbd_recovers_the_published_cdnow_parameters() {
    let s = cdnow_summaries();
    assert_eq!(s.len(), 2357);
    let m = BgNbd::fit(&s).unwrap();
    let p = m.params();
    // Fader, Hardie & Lee (2005): r = 0.243, α = 4.414, a = 0.793, b = 2.426; LL = −9,582.4.
    for (name, got, published) in [("r", p.r, 0.243), ("alpha", p.alpha, 4.414), ("a", p.a, 0.793), ("b", p.b, 2.426)] {
        assert!(three_figures(got, published), "{name} = {got}, published {published}");
    }
    assert!((m.log_likelihood() - (-9582.4)).abs() < 0.1, "{}", m.log_likelihood());
    assert_eq!(m.customers(), 2357.0);
    let se = m.standard_errors();
    println!("BG/NBD on CDNOW: {p:?}, standard errors {se:?}, log-likelihood {:.2}", m.log_likelihood());
    assert!(se.iter().all(|s| s.is_some_and(|s| s > 0.0 && s < 1.0)), "{se:?}");
    // A customer who bought often and recently is alive; one who stopped long ago likely not.
    let recent = Summary { x: 10.0, t_x: 38.0, t: 38.86, weight: 1.0 };
    let gone = Summary { x: 10.0, t_x: 5.0, t: 38.86, weight: 1.0 };
    assert!(m.p_alive(&recent) > 0.9 && m.p_alive(&gone) < 0.05, "{} {}", m.p_alive(&recent), m.p_alive(&gone));
    // The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the
    // next 39 weeks.
    let example = Summary { x: 2.0, t_x: 30.43, t: 38.86, weight: 1.0 };
    let e = m.expected_purchases(&example, 39.0);
    assert!((e - 1.226).abs() < 5e-4, "{e}");
}

#[test]
fn gamma_gamma_recovers_the_published_cdnow_parameters() {
    use kam::domain::btyd::gamma_gamma::{GammaGamma, SpendSummary};
    let path = cdnow_file("cdnow_customers_summary_with_transactions.csv");
    let mut r = csv::Reader::from_path(&path).unwrap();
    let data: Vec<SpendSummary> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            SpendSummary { x: rec[1].parse().unwrap(), mean: rec[4].parse().unwrap(), weight: 1.0 }
        })
        .collect();
    assert_eq!(data.iter().filter(|s| s.x >= 1.0).count(), 946);
    let m = GammaGamma::fit(&data).unwrap();
    let g = m.params();
    println!("Gamma-Gamma on CDNOW: {g:?}, standard errors {:?}", m.standard_errors());
    // Fader, Hardie & Lee (2005, "RFM and CLV"): p = 6.25, q = 3.74, γ = 15.44.
    for (name, got, published) in [("p", g.p, 6.25), ("q", g.q, 3.74), ("v", g.v, 15.44)] {
        assert!(three_figures(got, published), "{name} = {got}, published {published}");
    }
    assert!(m.standard_errors().iter().all(|s| s.is_some()));
    // The population mean spend per purchase p·γ/(q − 1) ≈ $35.
    assert!((m.expected_spend(0.0, 0.0) - 35.2).abs() < 0.5, "{}", m.expected_spend(0.0, 0.0));
}

/// Equal at the precision the paper printed (`decimals` places).
fn as_printed(got: f64, published: f64, decimals: i32) -> bool {
    let k = 10f64.powi(decimals);
    (got * k).round() == (published * k).round()
}

#[test]
fn pareto_nbd_recovers_the_published_cdnow_parameters() {
    use kam::domain::btyd::pareto_nbd::ParetoNbd;
    let m = ParetoNbd::fit(&cdnow_summaries()).unwrap();
    let p = m.params();
    println!(
        "Pareto/NBD on CDNOW: {p:?}, standard errors {:?}, log-likelihood {:.2}",
        m.standard_errors(),
        m.log_likelihood()
    );
    // Fader, Hardie & Lee (2005, "RFM and CLV"): r = 0.55, α = 10.58, s = 0.61, β = 11.67.
    for (name, got, published) in
        [("r", p.r, 0.55), ("alpha", p.alpha, 10.58), ("s", p.s, 0.61), ("beta", p.beta, 11.67)]
    {
        assert!(as_printed(got, published, 2), "{name} = {got}, published {published}");
    }
    assert!(m.standard_errors().iter().all(|s| s.is_some()));
}

#[test]
fn evaluate_sets_bg_nbd_and_pareto_nbd_beside_the_chain_with_lifetimes_figures() {
    // `kam evaluate` on the full CDNOW file, calibration to 1997-09-30, holdout to 1998-06-30.
    // The reference figures are lifetimes 0.11.3's on the same split and the same metrics
    // (bench/compare_lifetimes.py; README "Side by side with lifetimes").
    let data = crate::util::cdnow();
    let s = crate::util::Sandbox::new();
    let out =
        s.ok(&["evaluate", data.to_str().unwrap(), "--amount-col", "4", "--calibration-end", "1997-09-30", "--json"]);
    let ev: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let close = |got: &serde_json::Value, want: f64, tol: f64| {
        let got = got.as_f64().unwrap();
        assert!((got - want).abs() <= tol, "{got} vs lifetimes' {want}");
    };
    for (model, auc, brier, log_loss, mae, rmse, spearman, top20) in [
        ("bg_nbd", 0.7466, 0.1654, 0.5123, 32.68, 92.94, 0.4208, 0.6836),
        ("pareto_nbd", 0.7627, 0.1656, 0.5172, 31.99, 92.87, 0.4418, 0.6842),
    ] {
        let c = &ev["no_purchase"][model];
        close(&c["auc"], auc, 5e-5);
        close(&c["brier"], brier, 5e-5);
        close(&c["log_loss"], log_loss, 5e-5);
        let p = &ev["holdout_spend"][model];
        close(&p["mae"], mae, 5e-3);
        close(&p["rmse"], rmse, 5e-3);
        close(&p["spearman"], spearman, 5e-5);
        close(&p["top20_capture"], top20, 5e-5);
    }
    // The model is the blend of its chain with BG/NBD, its weights set on the 4 months before
    // the calibration end; on those months the blend beats both ends, and on the real holdout
    // its probabilities beat the chain's alone.
    let blend = &ev["blend"];
    assert_eq!(blend["with"], "bg_nbd", "{blend}");
    assert_eq!(blend["calibration_end"], "1997-05-31");
    for q in ["churn", "spend"] {
        let w = &blend[q];
        let (weight, b) = (w["weight"].as_f64().unwrap(), w["blend"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&weight), "{w}");
        assert!(b <= w["first"].as_f64().unwrap() && b <= w["second"].as_f64().unwrap(), "{w}");
    }
    let (model, chain) = (&ev["no_purchase"]["model"], &ev["no_purchase"]["chain"]);
    assert!(model["brier"].as_f64().unwrap() < chain["brier"].as_f64().unwrap() - 0.005, "{model} vs {chain}");
    assert!(model["log_loss"].as_f64().unwrap() < chain["log_loss"].as_f64().unwrap() - 0.01);
    let (model, chain) = (&ev["holdout_spend"]["model"], &ev["holdout_spend"]["chain"]);
    assert!(model["rmse"].as_f64().unwrap() < chain["rmse"].as_f64().unwrap() - 5.0, "{model} vs {chain}");
    let fits = ev["btyd_fits"].as_array().unwrap();
    assert_eq!(fits.len(), 3, "{fits:?}");
    assert!(fits.iter().all(|f| f["customers"] == 23_570));
    assert!(ev.get("btyd_failures").is_none());
    // The readable report has both columns.
    let text =
        s.ok(&["evaluate", data.to_str().unwrap(), "--amount-col", "4", "--calibration-end", "1997-09-30"]).stdout;
    assert!(text.contains("BG/NBD+GG") && text.contains("Pareto/NBD+GG"), "{text}");
    assert!(
        text.contains("model (blend)") && text.contains("chain alone") && text.contains("blend: chain with BG/NBD")
    );
    // --blend off: the chain alone is the model, with no blend record.
    let off: serde_json::Value = serde_json::from_str(
        &s.ok(&[
            "evaluate",
            data.to_str().unwrap(),
            "--amount-col",
            "4",
            "--calibration-end",
            "1997-09-30",
            "--blend",
            "off",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert!(off.get("blend").is_none() && off["no_purchase"].get("chain").is_none());
    assert_eq!(off["no_purchase"]["model"], ev["no_purchase"]["chain"]);
}
