// GGUF: the full model loader (load_model's format dispatch -> load_gguf -> GgufFile, config, tokenizer,
// weight import and validation) on the fuzzed file, then every weight read once (check_tensor_values,
// as --check-tensors does) and the tokenizer used. Seeds: fuzz/corpus/gguf (make-seeds.js).
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("model.gguf");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    auto m = chimera::load_model(path, chimera::LoadOptions{});
    chimera::check_tensor_values(*m);
    fuzz::exercise_tokenizer(m->tokenizer);
  });
}
