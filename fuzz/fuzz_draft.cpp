// Chimera draft files: load_draft on the fuzzed file against a small valid base model (the fixture GGUF,
// written and loaded at startup), then the fit check every session runs (check_draft_fits_base) and every weight read once.
#include "fuzz_common.h"
#include "spec/draft_model.h"

static std::unique_ptr<chimera::Model> g_base;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string base = fuzz::scratch("base.gguf");
  const std::vector<uint8_t> bytes = fuzz::fixture_gguf();
  fuzz::write_file(base, bytes.data(), bytes.size());
  fuzz::must_succeed("base model fixture", [&] { g_base = chimera::load_gguf(base); });
  // A draft saved by the library for this base must load back.
  const std::string probe = fuzz::scratch("probe.safetensors");
  fuzz::must_succeed("draft fixture", [&] {
    chimera::save_draft(*chimera::create_draft(*g_base, chimera::DraftShape{2, 0, 0, {}}, 7), probe);
    chimera::check_draft_fits_base(*chimera::load_draft(probe, *g_base), *g_base);
  });
  std::filesystem::remove(probe);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("draft.safetensors");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    auto d = chimera::load_draft(path, *g_base);
    chimera::check_draft_fits_base(*d, *g_base);
    chimera::make_trainable(*d);  // reads every weight once (widened to F32)
    volatile size_t sink = d->weight_bytes();
    (void)sink;
  });
}
