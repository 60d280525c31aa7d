//! The one hash behind every deterministic sample and seed: SplitMix64's finaliser (Steele,
//! Lea & Flood 2014). A customer-period always gets the same key, so the samples of the spend
//! model and of the covariate transitions do not depend on threads, shards or row order.

/// 2⁶⁴ / φ, SplitMix64's increment.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijection of u64 that mixes every input bit into every
/// output bit.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sampling key of customer number `customer` in period `period`.
#[inline]
pub fn customer_period_key(customer: u64, period: u32) -> u64 {
    splitmix64(customer.wrapping_mul(GOLDEN) ^ (u64::from(period) << 1).wrapping_add(0x632B_E59B_D9B4_E019))
}

/// A key as a uniform number in [0, 1) (its top 53 bits).
#[inline]
pub fn unit_interval(key: u64) -> f64 {
    (key >> 11) as f64 / (1u64 << 53) as f64
}

/// The seed of the `i`-th independent piece of a run seeded with `seed`.
#[inline]
pub fn seed_for(seed: u64, i: u64) -> u64 {
    splitmix64(seed ^ i.wrapping_mul(GOLDEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_reference_outputs() {
        // The first outputs of SplitMix64 seeded with 0 (state advanced by GOLDEN each call),
        // as in Vigna's reference C code.
        assert_eq!(splitmix64(GOLDEN), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(GOLDEN.wrapping_mul(2)), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn keys_are_uniform_enough_to_sample_by_threshold() {
        let n = 200_000u64;
        let kept = (0..n).filter(|&c| unit_interval(customer_period_key(c, 7)) < 0.25).count() as f64;
        assert!((kept / n as f64 - 0.25).abs() < 0.005, "{kept}");
    }
}
