//! Unit tests of the segment scheme: states, families, cut-points, placing rows, allowed moves.

use super::*;

pub(crate) fn scheme(lapse_after: u32, split: bool) -> SegmentScheme {
    SegmentScheme {
        new: "new".into(),
        tiers: vec!["key".into(), "core".into(), "occasional".into()],
        rule: TierRule::TopShare(vec![0.2, 0.5]),
        dormant: "dormant".into(),
        lapsed: "lapsed".into(),
        lapse_after,
        split_inactive: split,
        inactive_tiers: false,
        window: 4,
    }
}

fn row(tenure: u32, purchases: u32, monetary: f64, since: u32) -> PanelRow {
    PanelRow {
        period: 0,
        purchases,
        spend: 0.0,
        margin: 0.0,
        recency_days: 0,
        periods_since_purchase: since,
        frequency: purchases,
        monetary,
        tenure,
    }
}

#[test]
fn the_typed_state_space_names_and_groups_itself_into_families() {
    let mut s = scheme(4, true);
    s.inactive_tiers = true;
    s.window = 6;
    let space = s.state_space();
    assert_eq!(space.len(), s.states().len());
    assert_eq!(s.key_state(), Some(1));
    assert_eq!(
        space[s.states().iter().position(|n| n == "dormant_2_core").unwrap()],
        State::Silent { periods: Some(2), tier: Some(1) }
    );
    let lapsed: Vec<usize> = space.iter().enumerate().filter(|(_, st)| st.is_lapsed()).map(|(i, _)| i).collect();
    assert_eq!(lapsed, s.lapsed_states().collect::<Vec<_>>());
    let inactive: Vec<usize> = (0..space.len()).filter(|&i| space[i].is_inactive()).collect();
    assert_eq!(inactive, (s.first_inactive()..space.len()).collect::<Vec<_>>());
    let families = s.families();
    let names: Vec<&str> = families.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["new", "key", "core", "occasional", "dormant", "lapsed"]);
    assert_eq!(families.iter().map(|(_, v)| v.len()).sum::<usize>(), space.len());
    assert_eq!(families[4].1.len(), 3 * 3);
    assert_eq!(families[5].1.len(), 3);
    // Lapse after one period: no dormant family.
    let names: Vec<String> = scheme(1, true).families().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["new", "key", "core", "occasional", "lapsed"]);
}

#[test]
fn states_are_ordered_new_tiers_inactive_lapsed() {
    assert_eq!(scheme(2, false).states(), ["new", "key", "core", "occasional", "dormant", "lapsed"]);
    assert_eq!(
        scheme(4, true).states(),
        ["new", "key", "core", "occasional", "dormant_1", "dormant_2", "dormant_3", "lapsed"]
    );
    assert_eq!(scheme(1, false).states(), ["new", "key", "core", "occasional", "lapsed"]);
}

#[test]
fn top_share_thresholds_on_ten_values() {
    // Sorted: 100 90 80 70 60 50 40 30 20 10: top 20% = 2 values (≥ 90), top 50% = 5 (≥ 60).
    let mut v: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
    assert_eq!(scheme(2, false).learn_thresholds(&mut v).unwrap(), vec![90.0, 60.0]);
}

#[test]
fn value_share_takes_the_smallest_set_holding_the_share() {
    let mut s = scheme(2, false);
    s.tiers = vec!["key".into(), "rest".into()];
    s.rule = TierRule::ValueShare(vec![0.8]);
    // Total 200; 100 + 60 = 160 = 80%.
    let mut v = vec![10.0, 100.0, 60.0, 20.0, 10.0];
    assert_eq!(s.learn_thresholds(&mut v).unwrap(), vec![60.0]);
}

#[test]
fn rows_are_placed_by_tenure_purchase_value_and_recency() {
    let s = scheme(3, false);
    let seg = s.segmenter(vec![90.0, 60.0]);
    assert_eq!(seg.state_of(&row(0, 1, 5.0, 0)), 0); // new
    assert_eq!(seg.state_of(&row(2, 1, 95.0, 0)), 1); // key
    assert_eq!(seg.state_of(&row(2, 1, 60.0, 0)), 2); // core (at the cut)
    assert_eq!(seg.state_of(&row(2, 1, 59.9, 0)), 3); // occasional
    assert_eq!(seg.state_of(&row(2, 0, 59.9, 1)), 4); // dormant
    assert_eq!(seg.state_of(&row(3, 0, 0.0, 2)), 4); // dormant
    assert_eq!(seg.state_of(&row(4, 0, 0.0, 3)), 5); // lapsed
    let split = scheme(3, true).segmenter(vec![90.0, 60.0]);
    assert_eq!(split.state_of(&row(3, 0, 0.0, 2)), 5); // dormant_2
    assert_eq!(split.state_of(&row(4, 0, 0.0, 3)), 6); // lapsed
}

#[test]
fn allowed_moves_follow_the_definitions() {
    let a = scheme(2, false).allowed();
    // new key core occ dormant lapsed
    assert_eq!(a[0], [false, true, true, true, true, false]);
    assert_eq!(a[4], [false, true, true, true, false, true]);
    assert_eq!(a[5], [false, true, true, true, false, true]);
    let b = scheme(3, true).allowed();
    assert_eq!(b[4], [false, true, true, true, false, true, false]); // dormant_1 -> dormant_2
    assert_eq!(b[5], [false, true, true, true, false, false, true]); // dormant_2 -> lapsed
    let c = scheme(3, false).allowed();
    assert_eq!(c[4], [false, true, true, true, true, true]);
}

#[test]
fn inactive_tiers_remember_the_trailing_value() {
    let mut s = scheme(3, true);
    s.inactive_tiers = true;
    let names = s.states();
    assert_eq!(names.len(), 1 + 3 + 3 * 2 + 3);
    assert_eq!(&names[4..7], ["dormant_1_key", "dormant_1_core", "dormant_1_occasional"]);
    assert_eq!(&names[10..], ["lapsed_key", "lapsed_core", "lapsed_occasional"]);
    assert_eq!(s.lapsed_states(), 10..13);
    let seg = s.segmenter(vec![90.0, 60.0]);
    assert_eq!(seg.state_of(&row(2, 0, 70.0, 1)), 5); // dormant_1_core
    assert_eq!(seg.state_of(&row(5, 0, 95.0, 3)), 10); // lapsed_key
    let a = s.allowed();
    // dormant_1_core → tiers, or any tier copy of dormant_2.
    assert_eq!(a[5], [false, true, true, true, false, false, false, true, true, true, false, false, false]);
    assert_eq!(a[8][10..], [true, true, true]); // dormant_2_core → lapsed_*
    let plan = s.borrow_plan();
    assert_eq!(plan[11].from, vec![8, 5]); // lapsed_core ← dormant_2_core, dormant_1_core
    assert_eq!(plan[11].rest_to, vec![11]); // and stays lapsed_core
    assert_eq!(plan[5].rest_to, vec![8]); // dormant_1_core → dormant_2_core
}

#[test]
fn lapsed_is_one_state_when_the_window_does_not_outlast_the_lapse() {
    let mut s = scheme(3, true);
    s.inactive_tiers = true;
    s.window = 3;
    let names = s.states();
    assert_eq!(&names[10..], ["lapsed"]);
    assert_eq!(s.lapsed_states(), 10..11);
    let seg = s.segmenter(vec![90.0, 60.0]);
    assert_eq!(seg.state_of(&row(5, 0, 95.0, 3)), 10);
    let a = s.allowed();
    assert_eq!(a[8][10], true); // dormant_2_core → lapsed
    assert_eq!(a[10], [false, true, true, true, false, false, false, false, false, false, true]);
    let plan = s.borrow_plan();
    assert_eq!(plan[10].from, vec![9, 6]); // from dormant_2_occasional, dormant_1_occasional
    assert_eq!(plan[10].rest_to, vec![10]);
}

#[test]
fn bad_schemes_are_refused_with_the_field() {
    let mut s = scheme(2, false);
    s.rule = TierRule::TopShare(vec![0.5, 0.2]);
    assert!(s.check().unwrap_err().to_string().starts_with("segments.cuts"));
    s.rule = TierRule::TopShare(vec![0.2]);
    assert!(s.check().unwrap_err().to_string().contains("need 2 cuts"));
    let mut s = scheme(2, false);
    s.window = 0;
    assert!(s.check().is_err());
}

#[test]
fn a_family_matrix_weights_each_states_row_by_its_moves() {
    let sc = scheme(3, true);
    let names = sc.states();
    let g = Grouping::families(&sc);
    assert_eq!(g.names, ["new", "key", "core", "occasional", "dormant", "lapsed"][..g.names.len()].to_vec());
    assert_eq!(g.sum(&vec![1.0; names.len()]).iter().sum::<f64>(), names.len() as f64);
    // Two dormant states with 30 and 10 moves: the dormant row is 3/4 of the first and 1/4 of
    // the second, and every row still sums to 1.
    let n = names.len();
    let dormant: Vec<usize> = (0..n).filter(|&i| g.name_of(i) == "dormant").collect();
    let mut p = vec![vec![0.0; n]; n];
    let mut w = vec![0.0; n];
    for (i, row) in p.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let (a, b) = (dormant[0], dormant[1]);
    p[a] = vec![0.0; n];
    p[a][1] = 1.0; // back to key
    w[a] = 30.0;
    w[b] = 10.0; // stays dormant (its own row)
    let m = g.matrix(&p, &w);
    let (key, dorm) = (g.of_state[1], g.of_state[a]);
    assert!((m[dorm][key] - 0.75).abs() < 1e-12 && (m[dorm][dorm] - 0.25).abs() < 1e-12, "{m:?}");
    for row in &m {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
