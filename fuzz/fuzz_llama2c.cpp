// llama2.c checkpoint: load_llama2c on the fuzzed checkpoint with a valid tokenizer.bin beside it (the
// fixture vocabulary of 264 tokens, written at startup), then every weight read once.
#include "fuzz_common.h"

static std::string g_tokenizer;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_tokenizer = fuzz::scratch("tokenizer.bin");
  const std::vector<uint8_t> tok = fuzz::fixture_llama2c_tokenizer();
  fuzz::write_file(g_tokenizer, tok.data(), tok.size());
  // The fixture checkpoint must load with it, or the harness would test nothing past the header.
  const std::vector<uint8_t> ckpt = fuzz::fixture_llama2c();
  const std::string probe = fuzz::scratch("probe.bin");
  fuzz::write_file(probe, ckpt.data(), ckpt.size());
  fuzz::must_succeed("llama2.c fixture", [&] { chimera::load_llama2c(probe, g_tokenizer); });
  std::filesystem::remove(probe);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("model.bin");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    auto m = chimera::load_llama2c(path, g_tokenizer);
    chimera::check_tensor_values(*m);
    fuzz::exercise_tokenizer(m->tokenizer);
  });
}
