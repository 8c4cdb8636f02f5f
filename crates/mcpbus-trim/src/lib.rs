//! Gives the memory the C allocator keeps after frees back to the operating system.
//!
//! glibc's `malloc` keeps freed memory in its arenas (one per thread that allocated, up to
//! eight per core) for reuse, and returns to the system only what lies at the top of the main
//! heap. After a burst of frees in the middle of the arenas, thousands of sessions that ended
//! say, the process keeps its peak resident size for good. `malloc_trim(0)` walks every arena
//! and releases its free pages (`madvise(MADV_DONTNEED)`), which is what brings the resident
//! size back down. It locks each arena in turn while it walks it: call it from a blocking
//! thread, now and then, not on every free.
//!
//! A second call keeps large blocks out of the arenas in the first place
//! ([`map_large_blocks`]), so that what a burst leaves behind can be trimmed at all.
//!
//! The workspace forbids unsafe code; this crate holds its exceptions, two calls without
//! pointers or any other invariant to uphold.

/// Asks the allocator to give its free pages back to the system. Returns whether it released
/// any. Off glibc (musl, macOS, Windows) it does nothing and returns `false`: those allocators
/// have no such call.
pub fn release_free_memory() -> bool {
    imp::release()
}

/// Makes the allocator serve every block of `threshold` bytes or more with its own mapping,
/// returned to the system as soon as it is freed, instead of carving it from an arena.
/// Returns whether the allocator took the setting (`false` off glibc).
///
/// glibc starts at 128 KiB but raises the threshold to the size of any mapped block freed
/// (up to 32 MiB), so after one burst the large tables of a busy server (a map of 10,000
/// sessions, a long buffer) come from the arenas, where the small allocations made around
/// them keep their pages from ever being trimmed. Setting the threshold fixes it and stops
/// that adjustment.
pub fn map_large_blocks(threshold: usize) -> bool {
    imp::map_large_blocks(threshold)
}

/// Whether [`release_free_memory`] can do anything on this platform.
pub const SUPPORTED: bool = imp::SUPPORTED;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub(crate) const SUPPORTED: bool = true;

    #[allow(unsafe_code)]
    pub(crate) fn release() -> bool {
        // SAFETY: `malloc_trim` takes a byte count and no pointer; glibc serializes it with
        // every other allocator call on each arena's lock. Any thread may call it at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }

    #[allow(unsafe_code)]
    pub(crate) fn map_large_blocks(threshold: usize) -> bool {
        let Ok(threshold) = libc::c_int::try_from(threshold) else {
            return false;
        };
        // SAFETY: `mallopt` takes two integers and no pointer; glibc applies the setting under
        // its own lock, and any thread may call it at any time.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(crate) const SUPPORTED: bool = false;

    pub(crate) fn release() -> bool {
        false
    }

    pub(crate) fn map_large_blocks(_threshold: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_where_the_platform_allows() {
        // Many small blocks, most freed, a few kept alive among them: the pattern that leaves
        // free pages in the middle of a heap.
        let mut blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 1000]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter().step_by(1000).cloned().collect();
        blocks.clear();
        blocks.shrink_to_fit();
        let released = release_free_memory();
        assert!(
            released || !SUPPORTED,
            "nothing released after 20 MB of frees"
        );
        assert_eq!(kept.len(), 20);
    }

    #[test]
    fn the_threshold_is_taken_when_a_c_int_holds_it() {
        assert!(!map_large_blocks(usize::MAX), "beyond a C int");
        assert_eq!(map_large_blocks(128 * 1024), SUPPORTED);
        let big: Vec<u8> = vec![7; 1 << 20];
        assert_eq!(big.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 << 20);
    }
}
