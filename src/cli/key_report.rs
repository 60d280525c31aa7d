//! The key-account part of `kam score --summary`: moves into and out of key with value and
//! origin or destination, and the accounts most at risk with why.

use super::table::{Table, thousands};
use crate::domain::forecast::portfolio::Portfolio;

/// The key-account part of the summary: moves in and out of key with value and destination, and
/// the accounts most at risk with why.
pub fn key_report(p: &Portfolio, key: &str, horizon: &str) -> String {
    let m = &p.key_moves;
    let mut s = format!(
        "\n{} accounts entered {key} in the last period; {} left it\n",
        thousands(m.entered),
        thousands(m.left)
    );
    let counts = |v: &[(String, u64)], word: &str| {
        v.iter().map(|(name, n)| format!("{} {word} {name}", thousands(*n))).collect::<Vec<_>>().join(", ")
    };
    if !m.entered_from.is_empty() {
        s.push_str(&format!("  came from: {}\n", counts(&m.entered_from, "from")));
    }
    if !m.left_to.is_empty() {
        s.push_str(&format!("  left for: {}\n", counts(&m.left_to, "to")));
    }
    for (title, list, word) in [("entered", &m.entered_top, "from"), ("left", &m.left_top, "now")] {
        if list.is_empty() {
            continue;
        }
        let mut t = Table::new(vec![format!("largest {title}"), word.into(), format!("value, next {horizon}")]);
        for k in list {
            t.row(vec![k.customer_id.clone(), k.segment.clone(), format!("{:.2}", k.value)]);
        }
        s.push('\n');
        s.push_str(&t.render(2));
    }
    let mut t = Table::new(vec![
        format!("{key} accounts most at risk"),
        "segment".into(),
        format!("value, next {horizon}"),
        "if kept".into(),
        "value at risk".into(),
        format!("p(leave {key})"),
        "silent / usual gap (days)".into(),
        "spend change".into(),
    ]);
    let opt =
        |x: Option<f64>, digits: usize| x.filter(|x| x.is_finite()).map_or("–".into(), |x| format!("{x:.digits$}"));
    for r in &p.at_risk {
        let segment = match &r.previous_segment {
            Some(before) if *before != r.segment => format!("{before} → {}", r.segment),
            _ => r.segment.clone(),
        };
        let silent = match (r.silent_days, r.usual_gap_days) {
            (Some(d), Some(g)) => format!("{d} / {g:.0}"),
            (Some(d), None) => format!("{d} / –"),
            _ => "–".into(),
        };
        t.row(vec![
            r.customer_id.clone(),
            segment,
            format!("{:.2}", r.value),
            opt(r.value_if_retained, 2),
            format!("{:.2}", r.value_at_risk),
            opt(r.p_leave_key, 3),
            silent,
            r.spend_change.map_or("–".into(), |c| format!("{:+.0}%", 100.0 * c)),
        ]);
    }
    s.push('\n');
    s.push_str(&t.render(2));
    s.push_str(&format!(
        "  value at risk: expected value over the next {horizon} if the account keeps buying at its own rate, less its expected value;\n  \
         p(leave {key}): probability of not being {key} at the end of the horizon; key accounts together: {:.2} at risk\n",
        p.key_value_at_risk
    ));
    s
}
