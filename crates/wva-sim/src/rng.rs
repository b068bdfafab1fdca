//! Named, seeded random streams: ChaCha8 keyed by SHA-256 of (fleet seed, stream name).

use chacha20::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The random generator type of every stream.
pub type SimRng = ChaCha8Rng;

/// Derives the stream `name` (for example `arrivals/<model>`) from the fleet seed.
///
/// The key is SHA-256 over the seed's little-endian bytes, a `0` separator and the name, so it
/// does not depend on `std`'s hasher and adding a stream perturbs no other.
pub fn stream(seed: u64, name: &str) -> SimRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update([0u8]);
    h.update(name.as_bytes());
    let key: [u8; 32] = h.finalize().into();
    ChaCha8Rng::from_seed(key)
}

/// A uniform `f64` in `[0, 1)` with 53 bits of randomness.
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[0, n)` (`n > 0`), by rejection so that it is unbiased.
pub fn below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n) - 1;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_name_give_the_same_stream() {
        let mut a = stream(7, "arrivals/m");
        let mut b = stream(7, "arrivals/m");
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn different_names_or_seeds_differ() {
        let x = stream(7, "arrivals/m").next_u64();
        assert_ne!(x, stream(7, "arrivals/n").next_u64());
        assert_ne!(x, stream(8, "arrivals/m").next_u64());
    }

    #[test]
    fn unit_and_below_stay_in_range() {
        let mut r = stream(1, "t");
        for _ in 0..1000 {
            let u = unit(&mut r);
            assert!((0.0..1.0).contains(&u));
            assert!(below(&mut r, 5) < 5);
        }
    }
}
