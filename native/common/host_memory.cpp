// Large host buffers from the OS, small ones from the heap, behind one header.
#include "common/host_memory.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#ifdef _WIN32
#include <malloc.h>
#else
#include <sys/mman.h>
#endif

namespace chimera {

namespace {
// Every buffer is preceded by one aligned header that records how it was obtained.
struct Header {
  size_t total;  // bytes obtained, header included
  bool mapped;
};
static_assert(sizeof(Header) <= kHostAlignment, "the header fits one alignment unit");
}  // namespace

void* host_alloc(size_t n) {
  if (n > SIZE_MAX - 2 * kHostAlignment) return nullptr;
  const size_t body = n == 0 ? kHostAlignment : (n + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  const size_t total = kHostAlignment + body;
  void* base = nullptr;
  bool mapped = false;
#ifdef _WIN32
  base = _aligned_malloc(total, kHostAlignment);
#else
  if (total >= kMappedFrom) {
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) base = m, mapped = true;  // page-aligned, so kHostAlignment-aligned
  }
  if (!base && posix_memalign(&base, kHostAlignment, total) != 0) base = nullptr;
#endif
  if (!base) return nullptr;
  Header h{total, mapped};
  std::memcpy(base, &h, sizeof h);
  return static_cast<uint8_t*>(base) + kHostAlignment;
}

void host_free(void* p) {
  if (!p) return;
  uint8_t* base = static_cast<uint8_t*>(p) - kHostAlignment;
  Header h;
  std::memcpy(&h, base, sizeof h);
#ifdef _WIN32
  _aligned_free(base);
#else
  if (h.mapped) munmap(base, h.total);
  else std::free(base);
#endif
}

void host_prefer_huge_pages(void* p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (!p || n < kHugePageBytes) return;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n) / kHugePageBytes * kHugePageBytes;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);  // advice: a refusal changes nothing
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace chimera
