//! Order statistics for the noisy samples this VM gives.
//!
//! Medians and quartiles rather than means: one descheduled run on the
//! shared machine would drag a mean far more than the effect we measure.

/// The median and quartiles of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
}

impl Summary {
    /// None for no samples: a figure that was not measured must not show
    /// up as zero.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Summary { median: quantile(&v, 0.5), q1: quantile(&v, 0.25), q3: quantile(&v, 0.75), n: v.len() })
    }
}

/// Linear interpolation between closest ranks (the usual "type 7");
/// `sorted` must be sorted and non-empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
pub fn median(samples: &[f64]) -> Option<f64> {
    Summary::of(samples).map(|s| s.median)
}

/// Differences `a[i] - b[i]` of samples taken next to each other in the same
/// round. Their median is less sensitive to slow drifts of the machine
/// (a neighbour starting a job) than the difference of two medians.
pub fn paired(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// `a / b`, or None when the ratio means nothing (b at or below zero,
/// which noise can produce for a tiny floor).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn quartiles_interpolate() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3, s.n), (2.0, 3.0, 4.0, 5));
        let s = Summary::of(&[10.0, 0.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.5, 5.0, 7.5));
    }

    #[test]
    fn median_ignores_one_wild_sample() {
        assert_eq!(median(&[220.0, 221.0, 5000.0, 219.0, 222.0]), Some(221.0));
    }

    #[test]
    fn paired_differences_and_ratios() {
        assert_eq!(paired(&[5.0, 7.0, 9.0], &[1.0, 2.0]), vec![4.0, 5.0]);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(3.0, -1.0), None);
    }
}
