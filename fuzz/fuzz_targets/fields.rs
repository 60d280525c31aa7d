//! `kam::ingest::fields::parse_date` and `parse_amount` on the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(day) = kam::ingest::fields::parse_date(data) {
        // A parsed date is a real day of the years kam accepts.
        let (y, _, _) = kam::domain::calendar::civil_from_days(day);
        assert!((1000..=9999).contains(&y), "parse_date accepted year {y}");
    }
    if let Ok(v) = kam::ingest::fields::parse_amount(data) {
        assert!(v.is_finite(), "parse_amount returned {v}");
    }
});
