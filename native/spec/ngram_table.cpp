// N-gram next-token statistics.
#include "spec/ngram_table.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/error.h"

namespace chimera {

namespace {
constexpr char kMagic[8] = {'C', 'H', 'N', 'G', 'R', 'A', 'M', '1'};
constexpr uint32_t kVersion = 1;

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;
}  // namespace

NgramTable::NgramTable(int max_n, int vocab_size) : max_n_(max_n), vocab_(vocab_size) {
  CHIMERA_CHECK(max_n >= 1 && max_n <= 8, ErrorCode::InvalidArg, "n-gram order must be in 1..8, got ", max_n);
}

uint64_t NgramTable::key(const int32_t* t, int n) {
  uint64_t h = 0x9E3779B97F4A7C15ull * (uint64_t)(n + 1);
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uint32_t)t[i] + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h;
}

void NgramTable::count(uint64_t k, int32_t next) {
  Entry& e = map_[k];
  e.total++;
  for (size_t i = 0; i < e.tokens.size(); i++)
    if (e.tokens[i] == next) {
      e.counts[i]++;
      // Keep the list sorted by count (most frequent first).
      for (size_t j = i; j > 0 && e.counts[j] > e.counts[j - 1]; j--) {
        std::swap(e.counts[j], e.counts[j - 1]);
        std::swap(e.tokens[j], e.tokens[j - 1]);
      }
      return;
    }
  if ((int)e.tokens.size() < kMaxNext) {
    e.tokens.push_back(next);
    e.counts.push_back(1);
  } else {
    e.tokens.back() = next;  // replaces the rarest
    e.counts.back() = 1;
  }
}

void NgramTable::add_last(const int32_t* t, size_t n) {
  if (n < 2) return;
  const int32_t next = t[n - 1];
  for (int order = 1; order <= max_n_ && (size_t)order < n; order++) count(key(t + n - 1 - order, order), next);
}

void NgramTable::add_sequence(const int32_t* t, size_t n) {
  for (size_t i = 2; i <= n; i++) add_last(t, i);
}

void NgramTable::next(const int32_t* t, size_t n, int k, std::vector<Next>& out) const {
  out.clear();
  for (int order = std::min<int>(max_n_, (int)n); order >= 1; order--) {
    const auto it = map_.find(key(t + n - order, order));
    if (it == map_.end() || it->second.total == 0) continue;
    const Entry& e = it->second;
    for (size_t i = 0; i < e.tokens.size() && (int)out.size() < k; i++)
      out.push_back({e.tokens[i], (float)e.counts[i] / (float)e.total, order});
    return;
  }
}

void NgramTable::save(const std::string& path) const {
  File f(std::fopen(path.c_str(), "wb"));
  CHIMERA_CHECK(f, ErrorCode::NotFound, "cannot write the lookup cache to ", path);
  auto put = [&](const void* p, size_t n) {
    CHIMERA_CHECK(std::fwrite(p, 1, n, f.get()) == n, ErrorCode::InvalidArg, "writing ", path, " failed");
  };
  const uint32_t head[3] = {kVersion, (uint32_t)max_n_, (uint32_t)vocab_};
  const uint64_t n = map_.size();
  put(kMagic, sizeof(kMagic));
  put(head, sizeof(head));
  put(&n, sizeof(n));
  for (const auto& [k, e] : map_) {
    const uint32_t m = (uint32_t)e.tokens.size();
    put(&k, sizeof(k));
    put(&e.total, sizeof(e.total));
    put(&m, sizeof(m));
    put(e.tokens.data(), sizeof(int32_t) * m);
    put(e.counts.data(), sizeof(uint32_t) * m);
  }
  CHIMERA_CHECK(std::fflush(f.get()) == 0, ErrorCode::InvalidArg, "writing ", path, " failed");
}

bool NgramTable::is_table_file(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  char magic[sizeof(kMagic)] = {};
  return f && std::fread(magic, 1, sizeof(magic), f.get()) == sizeof(magic) &&
         std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
}

NgramTable NgramTable::load(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  CHIMERA_CHECK(f, ErrorCode::NotFound, "cannot open the lookup cache ", path);
  auto get = [&](void* p, size_t n) {
    CHIMERA_CHECK(std::fread(p, 1, n, f.get()) == n, ErrorCode::Format, path, ": truncated lookup cache");
  };
  char magic[sizeof(kMagic)];
  get(magic, sizeof(magic));
  CHIMERA_CHECK(std::memcmp(magic, kMagic, sizeof(kMagic)) == 0, ErrorCode::Format, path,
                " is not a chimera lookup cache");
  uint32_t head[3];
  get(head, sizeof(head));
  CHIMERA_CHECK(head[0] == kVersion, ErrorCode::Unsupported, path, ": lookup cache version ", head[0],
                " (this build reads ", kVersion, ")");
  CHIMERA_CHECK(head[1] >= 1 && head[1] <= 8, ErrorCode::Format, path, ": n-gram order ", head[1]);
  NgramTable t((int)head[1], (int)head[2]);
  uint64_t n;
  get(&n, sizeof(n));
  for (uint64_t i = 0; i < n; i++) {
    uint64_t k;
    Entry e;
    uint32_t m;
    get(&k, sizeof(k));
    get(&e.total, sizeof(e.total));
    get(&m, sizeof(m));
    CHIMERA_CHECK(m <= (uint32_t)kMaxNext, ErrorCode::Format, path, ": a context lists ", m, " followers");
    e.tokens.resize(m);
    e.counts.resize(m);
    get(e.tokens.data(), sizeof(int32_t) * m);
    get(e.counts.data(), sizeof(uint32_t) * m);
    for (uint32_t j = 0; j < m; j++)
      CHIMERA_CHECK(e.tokens[j] >= 0 && (t.vocab_ <= 0 || e.tokens[j] < t.vocab_), ErrorCode::Format, path,
                    ": token id ", e.tokens[j], " out of range");
    t.map_.emplace(k, std::move(e));
  }
  return t;
}

}  // namespace chimera
