//! The `visage` binary: parses the command line and hands over to the
//! libraries (`visage-service`, `visage-eval`, `visage-model`).
// No request path may panic on input: unwrap/expect only in tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use std::process::ExitCode;

/// jemalloc keeps freed pages for reuse: every inference allocates its
/// activations anew (megabytes a layer at 640x640), and glibc's malloc maps
/// and unmaps those, so each run faulted them in page by page again.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::main()
}
