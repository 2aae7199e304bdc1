// SPDX-License-Identifier: MIT
#include "actors/memory.hpp"

#include <malloc.h>

namespace networkd {

namespace {

// glibc's own starting values; setting them explicitly turns off the
// dynamic raising (up to 32 MiB) that follows the first freed large chunk.
constexpr int mmap_threshold = 128 * 1024;
constexpr int trim_threshold = 128 * 1024;

} // namespace

void tune_malloc() {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, mmap_threshold);
  mallopt(M_TRIM_THRESHOLD, trim_threshold);
}

void release_free_memory() {
  malloc_trim(0);
}

} // namespace networkd
