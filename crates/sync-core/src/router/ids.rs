//! Hashing for the host-assigned ids (`ConnId`, `PathKey`) that key the router's maps.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The ids are counters chosen by the host, never by a peer, so there is nothing to defend
/// against: a multiplicative hash spreads them well and is far cheaper than SipHash, which
/// matters because a broadcast looks up every recipient's connection.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

/// Knuth's multiplicative constant: 2^64 divided by the golden ratio.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0.rotate_left(5) ^ id).wrapping_mul(SPREAD);
    }
}

pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ConnId;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_hash_apart() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hash = |id: u64| build.hash_one(ConnId(id));
        assert_ne!(hash(1), hash(2));
        assert_ne!(hash(1) >> 57, hash(2) >> 57);
    }
}
