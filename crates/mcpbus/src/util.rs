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
