//! How kam writes numbers for people and client systems: rounded to at most [`DECIMALS`]
//! decimal places, trailing zeros dropped (an integral value has none: `12`, not `12.0`), so
//! float noise never shows (`95.39999999999999` is written `95.4`). Magnitudes from 1e15 on,
//! where six decimals exceed f64's precision, are written in shortest round-trip form.
//!
//! One home for the text of every number kam hands out: `kam score`'s CSV and JSON Lines and
//! every API response ([`to_vec`], [`to_writer`]). Artifacts, snapshots and Parquet keep full
//! precision.

use serde::Serialize;
use std::io;

/// Decimal places kept.
pub const DECIMALS: u32 = 6;

const SCALE: f64 = 1e6;

/// Appends finite `x` to `out`, rounded to [`DECIMALS`] places (half away from zero).
pub fn push_number(out: &mut Vec<u8>, x: f64) {
    debug_assert!(x.is_finite(), "non-finite numbers are the caller's (empty cell, null)");
    if x.abs() >= 1e15 {
        out.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
        return;
    }
    let scaled = (x * SCALE).round() as i64;
    if scaled == 0 {
        out.push(b'0');
        return;
    }
    if scaled < 0 {
        out.push(b'-');
    }
    let abs = scaled.unsigned_abs();
    let (int, mut frac) = (abs / SCALE as u64, abs % SCALE as u64);
    out.extend_from_slice(itoa::Buffer::new().format(int).as_bytes());
    if frac > 0 {
        let mut digits = DECIMALS as usize;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let mut buf = itoa::Buffer::new();
        let s = buf.format(frac);
        out.extend(std::iter::repeat_n(b'0', digits - s.len()));
        out.extend_from_slice(s.as_bytes());
    }
}

/// serde_json's compact output with every float written by [`push_number`] (NaN and infinities
/// stay `null`, as serde_json writes them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rounded;

impl serde_json::ser::Formatter for Rounded {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = Vec::with_capacity(24);
        push_number(&mut buf, value);
        writer.write_all(&buf)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Writes `value` as compact JSON with rounded numbers.
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(writer: W, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(writer, Rounded))
}

/// `value` as compact JSON with rounded numbers.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(x: f64) -> String {
        let mut v = Vec::new();
        push_number(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn numbers_keep_six_decimals_and_drop_trailing_zeros() {
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(12.0), "12");
        assert_eq!(fmt(0.5), "0.5");
        assert_eq!(fmt(-3.25), "-3.25");
        assert_eq!(fmt(0.0000004), "0");
        assert_eq!(fmt(0.000012), "0.000012");
        assert_eq!(fmt(1.0 / 3.0), "0.333333");
        assert_eq!(fmt(-0.0000004), "0");
        assert_eq!(fmt(95.39999999999999), "95.4");
        assert_eq!(fmt(0.1 + 0.2), "0.3");
        assert_eq!(fmt(2e16), "2e16");
    }

    #[test]
    fn json_numbers_are_rounded_and_everything_else_is_serde_jsons() {
        let v =
            serde_json::json!({"a": 95.39999999999999, "b": [1.0, -0.125, 7], "c": "x\"y", "d": null, "e": f64::NAN});
        let text = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":95.4,"b":[1,-0.125,7],"c":"x\"y","d":null,"e":null}"#);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"].as_f64(), Some(95.4));
    }
}
