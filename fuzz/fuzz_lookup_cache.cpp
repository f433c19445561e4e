// Lookup cache files (createSession({ lookup: { corpus } }), model.loadLookupCache): NgramTable::load on
// the fuzzed file, lookups of every order on it, then a save and reload that must answer the same.
#include "fuzz_common.h"
#include "spec/ngram_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("cache.ngram");
  static const std::string again = fuzz::scratch("again.ngram");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    const chimera::NgramTable t = chimera::NgramTable::load(path);
    std::vector<chimera::NgramTable::Next> out, out2;
    const int32_t ctx[8] = {7, 9, 263, 0, 1, 2, 3, 4};
    for (size_t n = 1; n <= 8; n++) t.next(ctx, n, chimera::NgramTable::kMaxNext, out);
    t.save(again);
    const chimera::NgramTable u = chimera::NgramTable::load(again);
    for (size_t n = 1; n <= 8; n++) {
      t.next(ctx, n, 4, out);
      u.next(ctx, n, 4, out2);
      if (out.size() != out2.size()) __builtin_trap();
      for (size_t i = 0; i < out.size(); i++)
        if (out[i].token != out2[i].token || out[i].share != out2[i].share) __builtin_trap();
    }
  });
}
