// Minimal test helpers for the native ctest executables: checks that count failures, a seeded RNG,
// and an array comparison that reports the worst element against a stated tolerance.
#pragma once
#include <cmath>
#include <filesystem>
#include <random>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace test {

inline int& failures() {
  static int n = 0;
  return n;
}

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #cond); \
      ::test::failures()++;                                                  \
    }                                                                        \
  } while (0)

// Runs `body`, expecting it to throw chimera::Error with `code`.
#define EXPECT_THROWS_CODE(body, expected_code)                                               \
  do {                                                                                        \
    bool thrown_ = false;                                                                     \
    try {                                                                                     \
      body;                                                                                   \
    } catch (const chimera::Error& e_) {                                                      \
      thrown_ = true;                                                                         \
      if (e_.code() != (expected_code)) {                                                     \
        std::fprintf(stderr, "%s:%d: wrong error code %s: %s\n", __FILE__, __LINE__,          \
                     chimera::error_code_name(e_.code()), e_.what());                         \
        ::test::failures()++;                                                                 \
      }                                                                                       \
    }                                                                                         \
    if (!thrown_) {                                                                           \
      std::fprintf(stderr, "%s:%d: expected an error from %s\n", __FILE__, __LINE__, #body);  \
      ::test::failures()++;                                                                   \
    }                                                                                         \
  } while (0)

// xorshift64* — deterministic across platforms.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  float uniform(float lo = -1.f, float hi = 1.f) { return lo + (hi - lo) * (float)((next() >> 40) * (1.0 / 16777216.0)); }
  int below(int n) { return (int)(next() % (uint64_t)n); }
};

inline std::vector<float> random_floats(Rng& rng, size_t n, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Passes when |got - ref| <= atol + rtol * |ref| for every element; prints the worst element.
inline bool compare(const char* label, const float* got, const float* ref, size_t n, float atol, float rtol) {
  size_t worst = 0;
  double worst_excess = -1e30, worst_diff = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    const double diff = std::fabs((double)got[i] - (double)ref[i]);
    const double tol = atol + rtol * std::fabs((double)ref[i]);
    if (!(diff <= tol)) bad++;
    const double excess = std::isnan(diff) ? 1e30 : diff - tol;
    if (excess > worst_excess) { worst_excess = excess; worst = i; worst_diff = diff; }
  }
  std::printf("%-48s n=%-8zu worst |diff|=%.3g at %zu (got %.6g ref %.6g) tol=%.1e+%.1e*|ref| %s\n", label, n,
              worst_diff, worst, n ? got[worst] : 0.0, n ? ref[worst] : 0.0, atol, rtol, bad ? "FAIL" : "ok");
  if (bad) failures()++;
  return bad == 0;
}

inline std::string shared_dir() {
  const char* d = std::getenv("CHIMERA_SHARED_DIR");
  return d ? std::string(d) : std::string("../shared");
}

inline bool file_exists(const std::string& p) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return false;
  std::fclose(f);
  return true;
}

inline int finish(const char* name) {
  if (failures()) {
    std::fprintf(stderr, "%s: %d failure(s)\n", name, failures());
    return 1;
  }
  std::printf("%s: all checks passed\n", name);
  return 0;
}

// A fresh temporary directory, removed with everything in it when the object goes.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    path = std::filesystem::temp_directory_path() / (prefix + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

constexpr int kSkip = 77;  // ctest SKIP_RETURN_CODE

}  // namespace test
