//! Request-size distributions and the Poisson arrival count.

use crate::rng::{below, unit};
use rand_core::Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use serde::{Deserialize, Serialize};

/// A distribution of token counts (`prompt_tokens`, `output_tokens`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always `value`.
    Constant {
        /// The value.
        value: u32,
    },
    /// Uniform integers in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: u32,
        /// Upper bound (inclusive).
        max: u32,
    },
    /// Normal, truncated to `[min, max]`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
    },
    /// Log-normal whose *value* has this mean and standard deviation, truncated to `[min, max]`.
    Lognormal {
        /// Mean of the value.
        mean: f64,
        /// Standard deviation of the value.
        stddev: f64,
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
    },
    /// Discrete values with weights.
    Empirical {
        /// The values.
        values: Vec<u32>,
        /// Their weights (same length, non-negative, not all zero).
        weights: Vec<f64>,
    },
}

impl SizeDist {
    /// The default prompt distribution: lognormal(512, 256) in [16, 2048].
    pub fn default_prompt() -> Self {
        SizeDist::Lognormal {
            mean: 512.0,
            stddev: 256.0,
            min: 16,
            max: 2048,
        }
    }

    /// The default output distribution: lognormal(256, 128) in [1, max_tokens].
    pub fn default_output(max_tokens: u32) -> Self {
        SizeDist::Lognormal {
            mean: 256.0,
            stddev: 128.0,
            min: 1,
            max: max_tokens.max(1),
        }
    }

    /// Checks the parameters; the error says what is wrong (the caller adds the key path).
    pub fn validate(&self) -> Result<(), String> {
        let bounds = |min: u32, max: u32| {
            if min > max {
                Err(format!("min {min} > max {max}"))
            } else {
                Ok(())
            }
        };
        match self {
            SizeDist::Constant { .. } => Ok(()),
            SizeDist::Uniform { min, max } => bounds(*min, *max),
            SizeDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => {
                if !mean.is_finite() || !stddev.is_finite() || *stddev < 0.0 {
                    return Err(format!(
                        "mean {mean} / stddev {stddev} must be finite, stddev >= 0"
                    ));
                }
                bounds(*min, *max)
            }
            SizeDist::Lognormal {
                mean,
                stddev,
                min,
                max,
            } => {
                if !mean.is_finite() || *mean <= 0.0 || !stddev.is_finite() || *stddev < 0.0 {
                    return Err(format!("mean {mean} must be > 0 and stddev {stddev} >= 0"));
                }
                bounds(*min, *max)
            }
            SizeDist::Empirical { values, weights } => {
                if values.is_empty() || values.len() != weights.len() {
                    return Err("values and weights must be non-empty and of equal length".into());
                }
                if weights.iter().any(|w| !w.is_finite() || *w < 0.0)
                    || weights.iter().sum::<f64>() <= 0.0
                {
                    return Err("weights must be finite, >= 0 and not all 0".into());
                }
                Ok(())
            }
        }
    }

    /// The mean of the distribution (before truncation for the continuous ones).
    pub fn mean(&self) -> f64 {
        match self {
            SizeDist::Constant { value } => f64::from(*value),
            SizeDist::Uniform { min, max } => (f64::from(*min) + f64::from(*max)) / 2.0,
            SizeDist::Normal { mean, .. } | SizeDist::Lognormal { mean, .. } => *mean,
            SizeDist::Empirical { values, weights } => {
                let total: f64 = weights.iter().sum();
                values
                    .iter()
                    .zip(weights)
                    .map(|(v, w)| f64::from(*v) * w)
                    .sum::<f64>()
                    / total
            }
        }
    }

    /// Draws one value. Truncated distributions retry a few times, then clamp.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match self {
            SizeDist::Constant { value } => *value,
            SizeDist::Uniform { min, max } => min + below(rng, u64::from(max - min) + 1) as u32,
            SizeDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => match Normal::new(*mean, *stddev) {
                Ok(d) => truncated(|| d.sample(rng), *min, *max),
                Err(_) => clamp(*mean, *min, *max),
            },
            SizeDist::Lognormal {
                mean,
                stddev,
                min,
                max,
            } => {
                let sigma2 = (1.0 + (stddev * stddev) / (mean * mean)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                match LogNormal::new(mu, sigma2.sqrt()) {
                    Ok(d) => truncated(|| d.sample(rng), *min, *max),
                    Err(_) => clamp(*mean, *min, *max),
                }
            }
            SizeDist::Empirical { values, weights } => {
                let total: f64 = weights.iter().sum();
                let mut x = unit(rng) * total;
                for (v, w) in values.iter().zip(weights) {
                    if x < *w {
                        return *v;
                    }
                    x -= w;
                }
                values.last().copied().unwrap_or(0)
            }
        }
    }
}

fn truncated(mut draw: impl FnMut() -> f64, min: u32, max: u32) -> u32 {
    let mut last = f64::from(min);
    for _ in 0..16 {
        last = draw().round();
        if last >= f64::from(min) && last <= f64::from(max) {
            return last as u32;
        }
    }
    clamp(last, min, max)
}

fn clamp(x: f64, min: u32, max: u32) -> u32 {
    if x.is_nan() {
        return min;
    }
    x.round().clamp(f64::from(min), f64::from(max)) as u32
}

/// A Poisson count with mean `lambda`; 0 without sampling when `lambda <= 0`.
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, lambda: f64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    match Poisson::new(lambda) {
        Ok(d) => {
            let x: f64 = d.sample(rng);
            x as u64
        }
        Err(_) => lambda.round() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn lognormal_matches_its_mean_and_bounds() {
        let d = SizeDist::Lognormal {
            mean: 512.0,
            stddev: 256.0,
            min: 16,
            max: 4096,
        };
        let mut r = stream(3, "t");
        let n = 20_000;
        let xs: Vec<u32> = (0..n).map(|_| d.sample(&mut r)).collect();
        let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / f64::from(n);
        assert!((mean - 512.0).abs() / 512.0 < 0.03, "mean {mean}");
        assert!(xs.iter().all(|&x| (16..=4096).contains(&x)));
    }

    #[test]
    fn uniform_and_empirical_stay_in_support() {
        let mut r = stream(3, "u");
        let u = SizeDist::Uniform { min: 3, max: 5 };
        let e = SizeDist::Empirical {
            values: vec![10, 20],
            weights: vec![0.0, 1.0],
        };
        for _ in 0..500 {
            assert!((3..=5).contains(&u.sample(&mut r)));
            assert_eq!(e.sample(&mut r), 20);
        }
    }

    #[test]
    fn validation_rejects_inverted_bounds_and_bad_weights() {
        assert!(SizeDist::Uniform { min: 5, max: 3 }.validate().is_err());
        assert!(
            SizeDist::Empirical {
                values: vec![1],
                weights: vec![0.0]
            }
            .validate()
            .is_err()
        );
        assert!(
            SizeDist::Lognormal {
                mean: 0.0,
                stddev: 1.0,
                min: 1,
                max: 2
            }
            .validate()
            .is_err()
        );
        assert!(SizeDist::default_prompt().validate().is_ok());
    }

    #[test]
    fn poisson_of_zero_is_zero() {
        let mut r = stream(1, "p");
        assert_eq!(poisson(&mut r, 0.0), 0);
    }

    #[test]
    fn poisson_mean_and_variance_within_three_percent_over_ten_thousand_ticks() {
        let mut r = stream(11, "arrivals/m");
        let lambda = 3.0;
        let n = 10_000;
        let xs: Vec<f64> = (0..n).map(|_| poisson(&mut r, lambda) as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        assert!((mean - lambda).abs() / lambda < 0.03, "mean {mean}");
        assert!((var - lambda).abs() / lambda < 0.03, "var {var}");
    }
}
