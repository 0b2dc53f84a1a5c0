//! A latency histogram in the manner of HdrHistogram: fixed log-linear buckets, so recording is
//! an index computation and an increment, histograms of several threads merge by adding, and
//! every reported percentile is within 1/64 (1.6 %) of the true value.

/// Counts of values (microseconds here) in buckets 1 wide up to 127, then 64 buckets per
/// power of two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    /// An empty histogram covering the whole `u64` range.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded, exactly; 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below or at which a fraction `q` (0..=1) of the values lie: the upper bound of
    /// the bucket that holds the value of rank ⌈q·n⌉, never above the exact maximum; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // The float product is exact enough here: counts stay far below 2^53.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(index).min(self.max);
            }
        }
        self.max
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Which bucket holds `value`.
fn bucket(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let shift = msb - SUB_BITS;
    // (value >> shift) is in SUB..2*SUB: the 64 sub-buckets of this power of two.
    ((shift as usize + 1) << SUB_BITS) + (value >> shift) as usize - SUB as usize
}

/// The largest value that lands in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < LINEAR as usize {
        return index as u64;
    }
    let shift = (index >> SUB_BITS) - 1;
    let mantissa = (index as u64 & (SUB - 1)) + SUB;
    // Written so that the last bucket's bound, u64::MAX, does not overflow.
    (mantissa << shift) + ((1 << shift) - 1)
}

/// Precision: 2^6 = 64 sub-buckets per power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this get a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Enough buckets for `u64::MAX`.
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB as usize + SUB as usize;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(127), 127);
        assert_eq!(bucket(128), 128);
        assert_eq!(bucket(129), 128);
        assert_eq!(bucket(130), 129);
        assert_eq!(bucket(255), 191);
        assert_eq!(bucket(256), 192);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for index in 1..BUCKETS {
            assert_eq!(bucket(upper_bound(index - 1) + 1), index, "index {index}");
            assert_eq!(bucket(upper_bound(index)), index);
        }
        assert_eq!(upper_bound(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        assert_eq!((h.quantile(0.5), h.max(), h.count()), (0, 0, 0));
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile(0.0), 1);
        // Rank 500 is 500, in the bucket 500..=503.
        assert_eq!(h.quantile(0.5), 503);
        // Rank 990 is 990, in the bucket 984..=991.
        assert_eq!(h.quantile(0.99), 991);
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.max(), 1000);
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(20);
        b.record(5_000_000);
        a.merge(&b);
        assert_eq!((a.count(), a.max(), a.quantile(0.5)), (3, 5_000_000, 20));
    }

    proptest! {
        #[test]
        fn every_value_is_within_its_bucket_and_1_6_percent(value in any::<u64>()) {
            let index = bucket(value);
            prop_assert!(index < BUCKETS);
            let high = upper_bound(index);
            prop_assert!(value <= high);
            let low = if index == 0 { 0 } else { upper_bound(index - 1) + 1 };
            prop_assert!(low <= value);
            prop_assert!((high - low) as f64 <= low as f64 / 64.0 + 1.0);
        }
    }
}
