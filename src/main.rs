//! The `sockscope` binary: all of it lives in the library; this only starts it.

fn main() -> std::process::ExitCode {
    allocator::give_back_large_blocks();
    sockscope::cli::run()
}

/// The one tuning of the C allocator, and the one `unsafe` of the program.
mod allocator {
    /// Blocks of this size and above are mapped on their own and unmapped
    /// when freed: glibc's first threshold, fixed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

    /// Makes glibc give a freed large block (a sample's records, a
    /// snapshot's views, a row sort's keys: megabytes each at 100,000
    /// sockets) back to the kernel at once. By default glibc raises its mmap
    /// threshold to the size of each large block freed (up to 32 MiB), so
    /// that from the second sample on those blocks come from the heap and
    /// their pages stay resident after they are freed: `benches/memory.sh`
    /// measured 911 (serve) and 1,263 (screen) bytes per socket at 100,000
    /// sockets with the dynamic threshold, 566 and 570 with it fixed. An
    /// operator's own `MALLOC_MMAP_THRESHOLD_` or glibc tunable wins.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "mallopt, a C call with no pointer")]
    pub fn give_back_large_blocks() {
        let chosen = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("mmap_threshold"));
        if !chosen {
            // SAFETY: mallopt takes two integers and only sets a parameter
            // of the allocator; it runs before any other thread exists. A
            // refusal (0) leaves glibc's default, which is only slower to
            // give memory back.
            let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        }
    }

    /// Other C libraries keep their own behaviour.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn give_back_large_blocks() {}
}
