//! Small helpers shared by every module of the crate.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks a mutex, taking it over if a panicking holder poisoned it: every structure the
/// crate guards stays consistent between statements, so the data is still good.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks an `RwLock`, poisoned or not (see [`lock`]).
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks an `RwLock`, poisoned or not (see [`lock`]).
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Gives back the room of a map that emptied. A hash map keeps its capacity for good: after a
/// burst (10,000 sessions that ended) megabytes of tables that a quiet server never fills
/// again. Shrinks it to twice its length once it is less than an eighth full (beyond 1,024
/// slots), so that a map that keeps growing and shrinking by half never reallocates: at most
/// one reallocation per halving, O(1) per removal amortized.
pub(crate) fn shrink_sparse<K, V, S>(map: &mut std::collections::HashMap<K, V, S>)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    let capacity = map.capacity();
    if capacity > 1024 && map.len() < capacity / 8 {
        map.shrink_to(map.len() * 2);
    }
}

/// `n` random bytes from the OS as lowercase hex; falls back to the clock's nanoseconds
/// (still distinct per call site in practice) in the never-seen case that the OS source
/// fails.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random `u32` (see [`random_hex`] for the fallback).
pub(crate) fn random_u32() -> u32 {
    let hex = random_hex(4);
    u32::from_str_radix(&hex, 16).unwrap_or(0)
}

#[cfg(test)]
mod shrink_tests {
    use super::shrink_sparse;
    use std::collections::HashMap;

    #[test]
    fn a_map_that_emptied_gives_its_room_back_and_a_busy_one_keeps_it() {
        let mut map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let full = map.capacity();
        for i in 0..5_000 {
            map.remove(&i);
            shrink_sparse(&mut map);
        }
        assert_eq!(map.capacity(), full, "half full: kept");
        for i in 5_000..9_990 {
            map.remove(&i);
            shrink_sparse(&mut map);
        }
        assert!(map.capacity() < full / 8, "{} of {full}", map.capacity());
        assert_eq!(map.len(), 10);
        let mut small: HashMap<u32, u32> = (0..500).map(|i| (i, i)).collect();
        let room = small.capacity();
        small.clear();
        shrink_sparse(&mut small);
        assert_eq!(small.capacity(), room, "small maps are left alone");
    }
}
