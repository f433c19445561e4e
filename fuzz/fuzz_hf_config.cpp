// Hugging Face config.json: load_model on a model directory holding the fuzzed config.json beside a valid
// model.safetensors, tokenizer.json and tokenizer_config.json of the fixture model (written at startup).
#include "fuzz_common.h"

static std::string g_dir;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_dir = fuzz::scratch("hf");
  fuzz::write_fixture_hf_dir(g_dir);
  const std::string config =
      R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "intermediate_size": 32,)"
      R"( "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 1, "vocab_size": 264,)"
      R"( "max_position_embeddings": 32, "rms_norm_eps": 1e-05, "hidden_act": "silu"})";
  fuzz::write_file(g_dir + "/config.json", config);
  fuzz::must_succeed("HF fixture directory", [&] { chimera::load_model(g_dir, chimera::LoadOptions{}); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = g_dir + "/config.json";
  fuzz::write_file(path, data, size);
  return fuzz::run_guarded([&] {
    auto m = chimera::load_model(g_dir, chimera::LoadOptions{});
    chimera::check_tensor_values(*m);
    fuzz::exercise_tokenizer(m->tokenizer);
  });
}
