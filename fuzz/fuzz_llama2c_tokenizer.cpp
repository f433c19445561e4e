// llama2.c tokenizer.bin: load_llama2c on a valid fixture checkpoint (vocabulary 264, written at startup)
// with the fuzzed tokenizer.bin, so the reader and the Tokenizer built from it both run; then the
// tokenizer is used. The reader alone is also run for a vocabulary size taken from the input, so other
// sizes than the fixture's are covered.
#include "fuzz_common.h"

static std::string g_checkpoint;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_checkpoint = fuzz::scratch("model.bin");
  const std::vector<uint8_t> ckpt = fuzz::fixture_llama2c();
  fuzz::write_file(g_checkpoint, ckpt.data(), ckpt.size());
  const std::vector<uint8_t> tok = fuzz::fixture_llama2c_tokenizer();
  const std::string probe = fuzz::scratch("probe.bin");
  fuzz::write_file(probe, tok.data(), tok.size());
  fuzz::must_succeed("llama2.c fixture", [&] { chimera::load_llama2c(g_checkpoint, probe); });
  std::filesystem::remove(probe);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("tokenizer.bin");
  fuzz::write_file(path, data, size);
  fuzz::run_guarded([&] {
    auto m = chimera::load_llama2c(g_checkpoint, path);
    fuzz::exercise_tokenizer(m->tokenizer);
  });
  // Another vocabulary size: 1..1024, from the input's last bytes.
  const int vocab = size >= 2 ? 1 + ((data[size - 1] | (data[size - 2] << 8)) % 1024) : 1;
  return fuzz::run_guarded([&] {
    chimera::Tokenizer tok(chimera::read_llama2c_tokenizer(path, vocab));
    fuzz::exercise_tokenizer(tok);
  });
}
