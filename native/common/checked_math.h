// Overflow-checked size arithmetic for the loaders. A file's counts and shapes are attacker-controlled,
// so every product or sum that becomes an offset or an allocation size goes through these.
#pragma once
#include <cstdint>

namespace chimera {

// a * b into *out; false when it does not fit in uint64_t.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}

// a + b into *out; false when it does not fit in uint64_t.
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  if (b > UINT64_MAX - a) return false;
  *out = a + b;
  return true;
}

// Rounds x up to a multiple of `align` (a power of two); false on overflow.
inline bool checked_align_up(uint64_t x, uint64_t align, uint64_t* out) {
  if (!checked_add(x, align - 1, out)) return false;
  *out &= ~(align - 1);
  return true;
}

inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace chimera
