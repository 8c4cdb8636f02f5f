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

    /// A map with room for 100,000 holding `n` entries (inserted, never removed, so that its
    /// capacity is exact).
    fn roomy(n: u32) -> HashMap<u32, u32> {
        let mut map = HashMap::with_capacity(100_000);
        map.extend((0..n).map(|i| (i, i)));
        map
    }

    #[test]
    fn a_map_that_emptied_gives_its_room_back_and_a_busy_one_keeps_it() {
        let mut busy = roomy(50_000);
        let room = busy.capacity();
        shrink_sparse(&mut busy);
        assert_eq!(busy.capacity(), room, "half full: kept");
        let mut sparse = roomy(10_000);
        shrink_sparse(&mut sparse);
        assert!(
            sparse.capacity() <= room / 4,
            "{} of {room}",
            sparse.capacity()
        );
        assert!(sparse.capacity() >= 20_000, "room to grow back by half");
        assert_eq!(sparse.len(), 10_000);
        let mut emptied: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        for i in 10..10_000 {
            emptied.remove(&i);
            shrink_sparse(&mut emptied);
        }
        assert!(emptied.capacity() < 1_000, "{}", emptied.capacity());
        let mut small: HashMap<u32, u32> = (0..500).map(|i| (i, i)).collect();
        let before = small.capacity();
        small.clear();
        shrink_sparse(&mut small);
        assert_eq!(small.capacity(), before, "small maps are left alone");
    }
}
