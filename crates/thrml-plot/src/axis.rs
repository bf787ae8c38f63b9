//! Axis ranges and "nice" tick values.

/// How an axis maps data to pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (base 10); data must be > 0.
    Log,
}

/// An axis: the data interval shown, its scale, and its ticks with their labels.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub scale: Scale,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// An axis covering `[min, max]` of the data, with about `target` ticks.
    pub fn fit(min: f64, max: f64, scale: Scale, target: usize) -> Axis {
        match scale {
            Scale::Linear => {
                let (mut lo, mut hi) = (min, max);
                if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()).max(1e-300) {
                    let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
                    lo -= pad;
                    hi += pad;
                }
                let ticks = linear_ticks(lo, hi, target);
                let step = if ticks.len() > 1 {
                    ticks[1] - ticks[0]
                } else {
                    hi - lo
                };
                // Extend to whole steps, so the frame starts and ends on a tick.
                let lo = clean((lo / step + 1e-9).floor() * step, step);
                let hi = clean((hi / step - 1e-9).ceil() * step, step);
                let ticks = linear_ticks(lo, hi, target);
                let labels = label_linear(&ticks);
                Axis {
                    lo,
                    hi,
                    scale,
                    ticks: ticks.into_iter().zip(labels).collect(),
                }
            }
            Scale::Log => {
                let (mut lo, mut hi) = (min.log10(), max.log10());
                if hi - lo < 1e-9 {
                    lo -= 0.5;
                    hi += 0.5;
                }
                // A little room at both ends; whole decades when the span is wide.
                if hi - lo >= 2.0 {
                    lo = lo.floor();
                    hi = hi.ceil();
                } else {
                    let pad = 0.05 * (hi - lo);
                    lo -= pad;
                    hi += pad;
                }
                let (lo, hi) = (10f64.powf(lo), 10f64.powf(hi));
                let mut ticks = log_ticks(lo, hi);
                if ticks.len() > target.max(2) {
                    // Decades only, thinned to the target.
                    let decades: Vec<f64> = ticks
                        .iter()
                        .copied()
                        .filter(|t| (t.log10() - t.log10().round()).abs() < 1e-9)
                        .collect();
                    if decades.len() >= 2 {
                        let stride = decades.len().div_ceil(target.max(2));
                        ticks = decades.into_iter().step_by(stride).collect();
                    }
                }
                Axis {
                    lo,
                    hi,
                    scale,
                    ticks: ticks.into_iter().map(|t| (t, label_log(t))).collect(),
                }
            }
        }
    }

    /// Where `v` falls along the axis, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        }
    }

    /// The data value at fraction `f` along the axis.
    pub fn at(&self, f: f64) -> f64 {
        match self.scale {
            Scale::Linear => self.lo + f * (self.hi - self.lo),
            Scale::Log => 10f64.powf(self.lo.log10() + f * (self.hi.log10() - self.lo.log10())),
        }
    }
}

/// About `target` evenly spaced tick values inside `[lo, hi]`, at multiples of a step
/// `{1, 2, 2.5, 5} × 10^k`.
///
/// ```
/// assert_eq!(thrml_plot::linear_ticks(0.0, 1.0, 6), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
/// assert_eq!(thrml_plot::linear_ticks(-3.0, 7.5, 6), vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
/// ```
#[must_use]
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let rough = (hi - lo) / target.max(2) as f64;
    let mag = 10f64.powf(rough.log10().floor());
    let norm = rough / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 2.25 {
        2.0
    } else if norm < 3.5 {
        2.5
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    let step = nice * mag;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|k| clean(k as f64 * step, step))
        .collect()
}

/// `v` without the float noise of a multiple of `step` (0.30000000000000004 → 0.3).
fn clean(v: f64, step: f64) -> f64 {
    let digits = (-(step.log10().floor()) as i32 + 2).clamp(0, 15);
    let p = 10f64.powi(digits);
    let r = (v * p).round() / p;
    if r == 0.0 { 0.0 } else { r }
}

/// Tick values of a log axis over `[lo, hi]` (both > 0): the powers of ten inside, thinned
/// to at most about 8; when fewer than three decades fall inside, also 2× and 5× each.
///
/// ```
/// assert_eq!(thrml_plot::log_ticks(1.0, 1000.0), vec![1.0, 10.0, 100.0, 1000.0]);
/// assert_eq!(thrml_plot::log_ticks(1.5, 30.0), vec![2.0, 5.0, 10.0, 20.0]);
/// ```
#[must_use]
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10(), hi.log10());
    let (d0, d1) = ((a - 1e-9).floor() as i32, (b + 1e-9).ceil() as i32);
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let decades: Vec<f64> = (d0..=d1)
        .map(|d| 10f64.powi(d))
        .filter(|&v| inside(v))
        .collect();
    if decades.len() >= 3 {
        let stride = decades.len().div_ceil(8);
        return decades.into_iter().step_by(stride).collect();
    }
    let mut t = Vec::new();
    for d in d0..=d1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(d);
            if inside(v) {
                t.push(v);
            }
        }
    }
    t
}

/// Labels with as many decimals as the step needs; scientific notation for very large or
/// small magnitudes.
fn label_linear(ticks: &[f64]) -> Vec<String> {
    if ticks.len() < 2 {
        return ticks.iter().map(|&t| format_g(t)).collect();
    }
    let step = ticks[1] - ticks[0];
    let big = ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
    if big >= 1e5 || step < 1e-4 {
        return ticks.iter().map(|&t| format_sci(t, step, big)).collect();
    }
    // The fewest decimals that write the step exactly (0.25 → 2, 25 → 0).
    let decimals = (0..10)
        .find(|&d| {
            let v = step * 10f64.powi(d);
            (v - v.round()).abs() < 1e-6 * v.abs().max(1.0)
        })
        .unwrap_or(10) as usize;
    ticks.iter().map(|&t| format!("{t:.decimals$}")).collect()
}

fn format_sci(t: f64, step: f64, big: f64) -> String {
    if t == 0.0 {
        return "0".into();
    }
    let digits = ((big.log10().floor() - step.log10().floor()).max(0.0) as usize).min(6);
    format!("{t:.digits$e}")
}

fn format_g(t: f64) -> String {
    if t != 0.0 && (t.abs() >= 1e5 || t.abs() < 1e-3) {
        format!("{t:.2e}")
    } else {
        let s = format!("{t:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn label_log(t: f64) -> String {
    let e = t.log10();
    if (1e-3..1e5).contains(&t) {
        format_g(t)
    } else if (e - e.round()).abs() < 1e-9 {
        format!("1e{}", e.round() as i64)
    } else {
        format!("{t:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_axis_is_padded_to_ticks() {
        let a = Axis::fit(0.13, 0.87, Scale::Linear, 6);
        assert!(a.lo <= 0.13 && a.hi >= 0.87);
        assert_eq!(a.ticks.first().unwrap().0, a.lo);
        assert_eq!(a.ticks.last().unwrap().0, a.hi);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            [
                "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"
            ]
        );
    }

    #[test]
    fn degenerate_range_is_widened() {
        let a = Axis::fit(2.0, 2.0, Scale::Linear, 6);
        assert!(a.lo < 2.0 && a.hi > 2.0);
        let a = Axis::fit(0.0, 0.0, Scale::Linear, 6);
        assert!(a.lo < 0.0 && a.hi > 0.0);
        let a = Axis::fit(5.0, 5.0, Scale::Log, 6);
        assert!(a.lo < 5.0 && a.hi > 5.0 && a.ticks.len() >= 2, "{a:?}");
    }

    #[test]
    fn log_axis_ticks_are_decades() {
        let a = Axis::fit(1.0, 4096.0, Scale::Log, 6);
        let v: Vec<f64> = a.ticks.iter().map(|t| t.0).collect();
        assert_eq!(v, [1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert!((a.frac(100.0) - 0.5).abs() < 1e-12);
        assert!((a.at(0.5) - 100.0).abs() < 1e-9);
        assert_eq!(a.ticks[4].1, "10000");
        assert_eq!(label_log(1e-6), "1e-6");
    }

    #[test]
    fn labels_match_step() {
        assert_eq!(label_linear(&[0.0, 0.25, 0.5]), ["0.00", "0.25", "0.50"]);
        assert_eq!(label_linear(&[-2.0, 0.0, 2.0]), ["-2", "0", "2"]);
        assert_eq!(label_linear(&[0.0, 2e5, 4e5]), ["0", "2e5", "4e5"]);
        assert_eq!(label_linear(&[0.0, 25.0, 50.0]), ["0", "25", "50"]);
    }
}
