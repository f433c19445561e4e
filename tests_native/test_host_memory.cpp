// host_alloc / host_free: alignment, sizes on both sides of the mapping threshold, zeroed mapped pages.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"
#include "common/host_memory.h"

using namespace chimera;

int main() {
  const std::vector<size_t> sizes{0, 1, 63, 64, 65, 4096, kMappedFrom - 2 * kHostAlignment, kMappedFrom - 1,
                                  kMappedFrom, kMappedFrom + 1, 3 * 1024 * 1024 + 7, 5 * kHugePageBytes + 3};
  for (size_t n : sizes) {
    uint8_t* p = static_cast<uint8_t*>(host_alloc(n));
    EXPECT(p != nullptr);
    if (!p) continue;
    EXPECT(reinterpret_cast<uintptr_t>(p) % kHostAlignment == 0);
    if (n >= kMappedFrom) {  // fresh pages from the OS read as zero
      bool zero = true;
      for (size_t i = 0; i < n; i++) zero = zero && p[i] == 0;
      EXPECT(zero);
    }
    host_prefer_huge_pages(p, n);  // a hint: any size, aligned or not, leaves the buffer as it was
    std::memset(p, 0xA5, n);  // the whole buffer is writable (ASan checks the bounds of heap ones)
    bool kept = true;
    for (size_t i = 0; i < n; i++) kept = kept && p[i] == 0xA5;
    EXPECT(kept);
    host_free(p);
  }
  host_free(nullptr);
  host_prefer_huge_pages(nullptr, 1 << 22);
  // Many buffers alive at once, freed out of order.
  std::vector<void*> live;
  for (int i = 0; i < 64; i++) live.push_back(host_alloc((size_t)(i % 8 + 1) * 100 * 1024));
  for (size_t i = 0; i < live.size(); i += 2) host_free(live[i]);
  for (size_t i = 1; i < live.size(); i += 2) host_free(live[i]);
  EXPECT(host_alloc(SIZE_MAX - 8) == nullptr);  // refused, not wrapped around
  return test::finish("test_host_memory");
}
