// Lookup candidates: the n-gram table counts followers and prefers the longest context, saves and
// loads exactly and refuses malformed files; the candidate tree copies the continuation of the latest
// earlier match, is best-first and prefix-closed, has no duplicate siblings, respects its bounds, and
// its acceptance model learns from outcomes.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "spec/lookup_source.h"
#include "spec/ngram_table.h"

using namespace chimera;

namespace {

void test_table() {
  NgramTable t(3, 100);
  // 1 2 3 follows as 4 twice and 5 once; after "9 3" only 7 follows.
  const std::vector<int32_t> seq{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 5, 9, 3, 7};
  t.add_sequence(seq.data(), seq.size());
  std::vector<NgramTable::Next> out;
  const std::vector<int32_t> ctx{1, 2, 3};
  t.next(ctx.data(), ctx.size(), 4, out);
  EXPECT(out.size() == 2 && out[0].token == 4 && out[1].token == 5 && out[0].order == 3);
  EXPECT(out.size() == 2 && out[0].share > 0.66f && out[0].share < 0.67f);
  // Context "9 3": order 2 has only 7 (order 1 "3" would also give 4 and 5).
  const std::vector<int32_t> ctx2{9, 3};
  t.next(ctx2.data(), ctx2.size(), 4, out);
  EXPECT(out.size() == 1 && out[0].token == 7 && out[0].order == 2);
  // An unseen long context falls back to the longest seen suffix.
  const std::vector<int32_t> ctx3{42, 43, 3};
  t.next(ctx3.data(), ctx3.size(), 4, out);
  EXPECT(!out.empty() && out[0].order == 1 && out[0].token == 4);

  // Save and load: the same answers; truncated and foreign files are E_FORMAT, a missing one E_NOT_FOUND.
  const auto dir = std::filesystem::temp_directory_path() / "chimera-test-lookup";
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "t.ngram").string();
  t.save(file);
  EXPECT(NgramTable::is_table_file(file));
  NgramTable u = NgramTable::load(file);
  EXPECT(u.max_n() == 3 && u.vocab_size() == 100 && u.contexts() == t.contexts());
  std::vector<NgramTable::Next> again;
  u.next(ctx.data(), ctx.size(), 4, again);
  t.next(ctx.data(), ctx.size(), 4, out);
  EXPECT(again.size() == out.size() && again[0].token == out[0].token && again[0].share == out[0].share);
  const auto bytes = std::filesystem::file_size(file);
  for (uintmax_t cut : {(uintmax_t)4, (uintmax_t)20, bytes / 2, bytes - 1}) {
    std::filesystem::copy_file(file, file + ".cut", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(file + ".cut", cut);
    EXPECT_THROWS_CODE(NgramTable::load(file + ".cut"), ErrorCode::Format);
  }
  {
    std::ofstream f(file + ".foreign", std::ios::binary);
    f << "not a lookup cache at all";
  }
  EXPECT(!NgramTable::is_table_file(file + ".foreign"));
  EXPECT_THROWS_CODE(NgramTable::load(file + ".foreign"), ErrorCode::Format);
  EXPECT_THROWS_CODE(NgramTable::load((dir / "missing.ngram").string()), ErrorCode::NotFound);
  std::filesystem::remove_all(dir);
}

// Checks the tree's invariants; returns whether it holds.
bool well_formed(const LookupTree& t, int max_nodes, int max_depth) {
  bool ok = t.size() >= 1 && t.size() <= max_nodes && t.parent[0] == -1 && t.depth[0] == 0;
  for (int u = 1; u < t.size(); u++) {
    ok = ok && t.parent[u] >= 0 && t.parent[u] < u;                   // parents first: every prefix is a tree
    ok = ok && t.depth[u] == t.depth[t.parent[u]] + 1 && t.depth[u] <= max_depth;
    ok = ok && t.p[u] <= t.p[t.parent[u]] + 1e-6f && t.origins[u] != 0;
    ok = ok && t.p[u] <= t.p[u - 1] + 1e-6f;                           // best first
    for (int v = 1; v < u; v++) ok = ok && !(t.parent[v] == t.parent[u] && t.token[v] == t.token[u]);
  }
  return ok;
}

void test_source() {
  LookupSource src(nullptr);
  // A passage, other text, then the passage's start again: prompt lookup copies its continuation.
  std::vector<int32_t> h{5, 6};
  const std::vector<int32_t> passage{10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  h.insert(h.end(), passage.begin(), passage.end());
  for (int32_t x : {30, 31, 32, 33}) h.push_back(x);
  h.insert(h.end(), passage.begin(), passage.begin() + 3);  // ... 10 11 12: next should be 13 14 15 ...
  src.sync(h);
  LookupTree t;
  src.build(h, 16, 5, t);
  EXPECT(well_formed(t, 16, 5));
  EXPECT(t.token[0] == 12);
  // The chain 13 14 15 16 17 is in the tree, proposed by prompt lookup.
  int u = 0;
  for (int32_t want : {13, 14, 15, 16, 17}) {
    int found = -1;
    for (int v = 1; v < t.size(); v++)
      if (t.parent[v] == u && t.token[v] == want) found = v;
    EXPECT(found > 0);
    if (found < 0) break;
    EXPECT(t.origins[found] & (1 << (int)LookupOrigin::Prompt));
    u = found;
  }
  // Bounds: at most 3 nodes, depth 1.
  src.build(h, 3, 1, t);
  EXPECT(well_formed(t, 3, 1) && t.size() <= 3);
  // A corpus table adds its own followers, marked as corpus.
  auto corpus = std::make_shared<NgramTable>(3);
  const std::vector<int32_t> c{12, 77, 78, 12, 77, 78};
  corpus->add_sequence(c.data(), c.size());
  LookupSource with_corpus(corpus);
  with_corpus.sync(h);
  with_corpus.build(h, 32, 5, t);
  EXPECT(well_formed(t, 32, 5));
  bool corpus_child = false;
  for (int v = 1; v < t.size(); v++)
    corpus_child = corpus_child || (t.parent[v] == 0 && t.token[v] == 77 && (t.origins[v] & (1 << (int)LookupOrigin::Corpus)));
  EXPECT(corpus_child);
  // A history that does not continue the synced one rebuilds: no trace of the old passage.
  const std::vector<int32_t> other{40, 41, 42, 40, 41};
  src.sync(other);
  src.build(other, 8, 4, t);
  EXPECT(well_formed(t, 8, 4));
  for (int v = 1; v < t.size(); v++) EXPECT(t.token[v] >= 40 && t.token[v] <= 42);

  // Learning: accepting prompt-lookup chains raises that bucket's modelled acceptance; rejecting them
  // lowers it.
  src.sync(h);
  src.build(h, 16, 5, t);
  int bucket = -1;
  for (int v = 1; v < t.size(); v++)
    if (t.parent[v] == 0 && (t.origins[v] & 1)) bucket = t.bucket[(size_t)v * kLookupOrigins];
  EXPECT(bucket >= 0);
  if (bucket >= 0) {
    const double before = src.acceptance(LookupOrigin::Prompt, bucket);
    std::vector<int> chain{0};
    for (int v = 1; v < t.size(); v++)
      if (t.parent[v] == chain.back() && (t.origins[v] & 1)) chain.push_back(v);
    for (int i = 0; i < 20; i++) src.observe(t, chain);
    const double after_hits = src.acceptance(LookupOrigin::Prompt, bucket);
    for (int i = 0; i < 300; i++) src.observe(t, {0});
    const double after_misses = src.acceptance(LookupOrigin::Prompt, bucket);
    std::printf("prompt-lookup acceptance (bucket %d): prior %.2f, after hits %.2f, after misses %.2f\n", bucket,
                before, after_hits, after_misses);
    EXPECT(after_hits > before + 0.2);
    EXPECT(after_misses < before);
  }
}

}  // namespace

int main() {
  try {
    test_table();
    test_source();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    test::failures()++;
  }
  return test::finish("test_lookup");
}
