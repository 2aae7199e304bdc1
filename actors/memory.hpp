// SPDX-License-Identifier: MIT
// How networkd uses glibc malloc: settings made once at start-up, and giving
// freed memory back to the kernel after a burst of allocations.
#pragma once

namespace networkd {

/// Sets glibc malloc up for a daemon with ~40 mostly idle threads and a few
/// large short-lived buffers (etcd range responses, table builds): one arena
/// (per-thread caches keep the query path off its lock), and fixed mmap and
/// trim thresholds, so that a large buffer is unmapped when freed instead of
/// raising the thresholds and staying in the heap. Call first thing in main,
/// before any thread starts.
void tune_malloc();

/// Gives free heap pages back to the kernel (also those inside the heap,
/// not only at its top). Costs a walk over the free lists: call it after a
/// burst of frees, such as replacing the DNS table, not per query.
void release_free_memory();

} // namespace networkd
