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
//! The workspace forbids unsafe code; this crate holds its one exception, a call without
//! pointers or any other invariant to uphold.

/// Asks the allocator to give its free pages back to the system. Returns whether it released
/// any. Off glibc (musl, macOS, Windows) it does nothing and returns `false`: those allocators
/// have no such call.
pub fn release_free_memory() -> bool {
    imp::release()
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
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(crate) const SUPPORTED: bool = false;

    pub(crate) fn release() -> bool {
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
}
