//! Pick policies over one immutable instance list: round robin, random, smooth weighted round
//! robin (nginx's), and consistent hashing on a caller's key (a ketama-style ring).
//!
//! Every pick is lock-free and allocation-free: the weighted sequence and the hash ring are
//! built once per snapshot by the writer, and the only shared mutable state a pick touches is
//! one atomic counter per service. `skip` (ejected instances) is only consulted when an
//! ejection may be in force; a pick whose first choice is skipped moves on to the next
//! candidate in the same order (next index, next sequence slot, next point clockwise).

use std::sync::atomic::{AtomicU64, Ordering};

/// How a pick without a hash key chooses an instance.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Each instance in turn (the default). A per-service 64-bit counter modulo the number of
    /// instances: exactly even over whole cycles; when instances come and go the counter
    /// goes on, so no instance is favoured and no index is ever out of range.
    #[default]
    RoundRobin = 0,
    /// Uniformly at random (a per-thread generator).
    Random = 1,
    /// Smooth weighted round robin, as nginx: over each cycle of (sum of weights) picks every
    /// instance is chosen exactly its weight times, interleaved (weights 5,1,1 give
    /// a a b a c a a).
    WeightedRoundRobin = 2,
    /// Consistent hashing on the caller's key; a pick without a key falls back to round robin.
    ConsistentHash = 3,
}

impl Policy {
    pub fn from_u32(v: u32) -> Option<Policy> {
        Some(match v {
            0 => Policy::RoundRobin,
            1 => Policy::Random,
            2 => Policy::WeightedRoundRobin,
            3 => Policy::ConsistentHash,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round-robin",
            Policy::Random => "random",
            Policy::WeightedRoundRobin => "weighted-round-robin",
            Policy::ConsistentHash => "consistent-hash",
        }
    }
}

/// Points per instance on the hash ring (ketama's 160): with N instances, the share of keys
/// of each stays within a few percent of 1/N.
pub const VNODES: u32 = 160;

/// Longest weighted sequence kept per service. Larger weight sums are scaled down (keeping
/// every weight at least 1), which bounds memory and the writer's cost.
pub const MAX_SEQUENCE: u64 = 1 << 16;

/// MurmurHash64A (Austin Appleby), for ring points and caller keys: fast, good avalanche,
/// and the same on every platform and in every process (unlike std's `DefaultHasher`).
pub fn hash64(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The ring: (point, instance index), sorted by point. Points come from each instance's
/// address, so an instance that re-registers under another key keeps its keys.
pub fn build_ring<'a>(addrs: impl Iterator<Item = &'a str>) -> Box<[(u64, u32)]> {
    let mut ring: Vec<(u64, u32)> = addrs
        .enumerate()
        .flat_map(|(i, a)| (0..VNODES).map(move |v| (hash64(a.as_bytes(), u64::from(v)), i as u32)))
        .collect();
    ring.sort_unstable();
    ring.into_boxed_slice()
}

/// One whole cycle of nginx's smooth weighted round robin over `weights`, as instance
/// indices. Weights are first divided by their gcd, and scaled down if their sum exceeds
/// [`MAX_SEQUENCE`].
pub fn build_sequence(weights: &[u32]) -> Box<[u32]> {
    if weights.is_empty() {
        return Box::new([]);
    }
    let g = weights
        .iter()
        .fold(0u64, |g, w| gcd(g, u64::from(*w)))
        .max(1);
    let mut w: Vec<i64> = weights.iter().map(|x| (u64::from(*x) / g) as i64).collect();
    let mut total: i64 = w.iter().sum();
    if total as u64 > MAX_SEQUENCE {
        let scale = MAX_SEQUENCE as f64 / total as f64;
        for x in &mut w {
            *x = ((*x as f64 * scale).round() as i64).max(1);
        }
        total = w.iter().sum();
    }
    let mut current = vec![0i64; w.len()];
    let mut seq = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        seq.push(best as u32);
    }
    seq.into_boxed_slice()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The first index from `start` (wrapping over `n`) that `skip` does not reject; `start`
/// itself if every one is rejected.
#[inline]
fn first_kept(start: usize, n: usize, skip: Option<&dyn Fn(usize) -> bool>) -> usize {
    let Some(skip) = skip else { return start };
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| !skip(i))
        .unwrap_or(start)
}

/// Round robin over `n` instances (n > 0).
#[inline]
pub fn round_robin(counter: &AtomicU64, n: usize, skip: Option<&dyn Fn(usize) -> bool>) -> usize {
    let start = (counter.fetch_add(1, Ordering::Relaxed) % n as u64) as usize;
    first_kept(start, n, skip)
}

/// A uniformly random instance of `n` (n > 0).
#[inline]
pub fn random(n: usize, skip: Option<&dyn Fn(usize) -> bool>) -> usize {
    first_kept(fastrand::usize(..n), n, skip)
}

/// The next slot of the smooth weighted sequence (non-empty).
#[inline]
pub fn weighted(counter: &AtomicU64, seq: &[u32], skip: Option<&dyn Fn(usize) -> bool>) -> usize {
    let len = seq.len();
    let start = (counter.fetch_add(1, Ordering::Relaxed) % len as u64) as usize;
    let slot = match skip {
        None => start,
        Some(skip) => (0..len)
            .map(|k| (start + k) % len)
            .find(|&j| !skip(seq[j] as usize))
            .unwrap_or(start),
    };
    seq[slot] as usize
}

/// The instance owning `key` on the ring (non-empty): the first point at or after the key's
/// hash, wrapping; skipped instances pass the key on clockwise.
#[inline]
pub fn consistent(ring: &[(u64, u32)], key: &[u8], skip: Option<&dyn Fn(usize) -> bool>) -> usize {
    let h = hash64(key, 0);
    let len = ring.len();
    let start = ring.partition_point(|p| p.0 < h) % len;
    let slot = match skip {
        None => start,
        Some(skip) => (0..len)
            .map(|k| (start + k) % len)
            .find(|&j| !skip(ring[j].1 as usize))
            .unwrap_or(start),
    };
    ring[slot].1 as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_smooth_sequence() {
        let names = |s: &[u32]| {
            s.iter()
                .map(|i| (b'a' + *i as u8) as char)
                .collect::<String>()
        };
        assert_eq!(names(&build_sequence(&[5, 1, 1])), "aabacaa");
        assert_eq!(names(&build_sequence(&[10, 2, 2])), "aabacaa"); // gcd
        assert_eq!(build_sequence(&[1, 1, 1]).len(), 3);
        let big = build_sequence(&[10_000; 100]);
        assert_eq!(big.len(), 100);
        let skewed = build_sequence(&[10_000, 1, 10_000, 1, 10_000, 3, 9_999, 2]);
        assert!(skewed.len() as u64 <= MAX_SEQUENCE + 8);
    }

    #[test]
    fn ring_spreads_keys_evenly() {
        let addrs: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:80")).collect();
        let ring = build_ring(addrs.iter().map(String::as_str));
        assert_eq!(ring.len(), 1600);
        let mut counts = [0u32; 10];
        for k in 0..10_000u32 {
            counts[consistent(&ring, &k.to_le_bytes(), None)] += 1;
        }
        for c in counts {
            assert!((600..1400).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn murmur_is_stable() {
        // Fixed values: ring positions must not change between versions or platforms.
        assert_eq!(hash64(b"", 0), 0);
        assert_eq!(hash64(b"abc", 0), hash64(b"abc", 0));
        assert_ne!(hash64(b"abc", 0), hash64(b"abc", 1));
        assert_ne!(hash64(b"abcdefgh1", 0), hash64(b"abcdefgh2", 0));
    }

    #[test]
    fn skipping_moves_on() {
        let c = AtomicU64::new(0);
        let skip = |i: usize| i == 1;
        let picks: Vec<usize> = (0..6).map(|_| round_robin(&c, 3, Some(&skip))).collect();
        assert_eq!(picks, [0, 2, 2, 0, 2, 2]);
        let all = |_: usize| true;
        assert_eq!(random(1, Some(&all)), 0);
    }
}
