// Host memory for the large buffers a model and its sessions allocate and free over a process's life
// (KV caches, workspaces, owned and repacked weights): 64-byte aligned, and from kMappedFrom bytes on
// taken straight from the OS (anonymous pages) and given back to it when freed.
//
// Through malloc, such buffers stayed in the process: glibc raises its mmap threshold to the size of
// each mapped block freed, so the next buffers of that size come from the heap, whose freed parts are
// rarely returned. A service that creates and disposes sessions then grew by tens of MB an hour (the
// soak test: 48 MB in a minute of churn, 13 MB with a fixed threshold) though nothing leaked. Mapped
// pages are also only backed when touched, so a large context costs memory as it fills.
#pragma once
#include <cstddef>

namespace chimera {

constexpr size_t kHostAlignment = 64;           // a cache line, and any SIMD load's width
constexpr size_t kMappedFrom = 256 * 1024;      // buffers this large map their own pages

// n bytes (n = 0: a valid minimal buffer), kHostAlignment-aligned; nullptr when out of memory. Pages
// mapped from the OS read as zero; smaller buffers are uninitialised.
void* host_alloc(size_t n);
// Frees what host_alloc returned (nullptr: nothing).
void host_free(void* p);
// Asks for the mapped pages of [p, p + n) to be backed by huge pages where the OS offers them (Linux
// transparent huge pages in madvise mode): for buffers written once and then streamed, like repacked
// weights, 512x fewer page faults while they are filled and fewer TLB misses while they are read.
// A hint only: nothing happens elsewhere or below kHugePageBytes.
constexpr size_t kHugePageBytes = 2 * 1024 * 1024;
void host_prefer_huge_pages(void* p, size_t n);

}  // namespace chimera
