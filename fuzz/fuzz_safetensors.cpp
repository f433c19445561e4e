// safetensors: SafetensorsFile (header length, JSON header, every tensor's range) on the fuzzed file; every
// tensor's bytes are then read once, so a range that escapes the mapping shows up under ASan.
#include "formats/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch("model.safetensors");
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    chimera::SafetensorsFile f(path);
    uint8_t acc = 0;
    for (const chimera::RawTensor& t : f.tensors()) {
      if (f.tensor(t.name) != &t) std::abort();  // the index must name every tensor
      for (uint64_t i = 0; i < t.bytes; i++) acc ^= t.data[i];
    }
    size_t meta = 0;
    for (const auto& kv : f.metadata()) meta += kv.first.size() + kv.second.size();
    volatile size_t sink = acc + meta;
    (void)sink;
  });
}
