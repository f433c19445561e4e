// Hugging Face tokenizer.json: read_hf_tokenizer_json on the fuzzed file, the Tokenizer built from it
// (validation, lookup and merge tables), then an encode/decode.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("tokenizer.json");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    chimera::Tokenizer tok(chimera::read_hf_tokenizer_json(path));
    fuzz::exercise_tokenizer(tok);
  });
}
