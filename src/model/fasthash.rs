//! A fast hasher for keys that the kernel or the system assigns (socket cookies,
//! pids, ports, indices): no outside peer chooses them, so they need no defence
//! against collision attacks, and SipHash's defence costs more than the rest of a
//! lookup when 100k sockets are looked up every tick. Keys holding remote
//! addresses, which a peer does choose (think SYN flood), keep the standard
//! hasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Folds each word in with a 64×64→128-bit multiply (as foldhash and ahash do).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FoldHasher(u64);

impl FoldHasher {
    fn mix(&mut self, word: u64) {
        let full = u128::from(self.0 ^ word) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (full as u64) ^ ((full >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FoldHasher`], for system-assigned keys only (see above).
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_keys_spread_over_buckets_and_control_bits() {
        let build = BuildHasherDefault::<FoldHasher>::default();
        let mut low = std::collections::HashSet::new();
        let mut high = std::collections::HashSet::new();
        for cookie in 1_000_000u64..1_004_096 {
            let h = build.hash_one(cookie);
            low.insert(h & 4095);
            high.insert(h >> 57);
        }
        assert!(low.len() > 2500, "{} of 4096 buckets used", low.len());
        assert_eq!(high.len(), 128, "every control tag used");
    }
}
