// Every architecture (tests_native/arch_gguf.h) through the native stack, without Node: the loader reads
// each one's optional parts, phi3's fused matrices become views of the right rows, and speculative
// greedy (an untrained draft, tree verification with its tree mask and positions) equals plain greedy.
// Where a GPU exists, the CUDA backend runs each too: its logits against the CPU's for every prompt row,
// and its speculative greedy against its plain greedy.
#include <atomic>
#include <fstream>

#include "arch_gguf.h"
#include "backend/gpu_backend.h"
#include "check.h"
#include "greedy_request.h"
#include "common/error.h"
#include "generate/session.h"
#include "spec/draft_model.h"
#include "spec/speculative_config.h"

using namespace chimera;

namespace {

const char* const kArchs[] = {"llama3", "qwen2", "qwen3", "phi3"};

GenerateResult run(Session& s, const std::string& text, int max_tokens) {
  std::atomic<bool> abort{false};
  return s.generate(test::greedy_request(text, max_tokens), [](Chunk&&) {}, abort);
}

void check_config(const std::string& arch, const Model& m) {
  const ModelConfig& c = m.config;
  const test::ArchShape s = test::arch_shape(arch);
  EXPECT(c.architecture == (arch == "llama3" ? "llama" : arch));
  EXPECT(c.HS == s.HS && c.C == s.C && c.NH == s.NH);
  EXPECT(c.attn_bias == (arch == "qwen2") && c.qk_norm == (arch == "qwen3"));
  EXPECT(c.fused_qkv == (arch == "phi3") && c.fused_gate_up == (arch == "phi3"));
  EXPECT(c.rope_freq_factors.size() == (arch == "llama3" ? (size_t)s.HS / 2 : 0));
  EXPECT(c.rope_layout == (arch == "llama3" ? RopeLayout::Interleaved : RopeLayout::HalfSplit));
  EXPECT(c.tied_output == (arch == "qwen2"));
  const LayerWeights& l = m.weights.layers[1];
  EXPECT((l.bq != nullptr) == (arch == "qwen2") && (l.q_norm != nullptr) == (arch == "qwen3"));
  if (arch == "phi3") {  // Q, K, V: consecutive rows of one matrix; gate then up likewise
    const auto* q = static_cast<const uint8_t*>(l.wq.data);
    EXPECT(l.wk.data == q + l.wq.bytes() && l.wv.data == q + l.wq.bytes() + l.wk.bytes());
    EXPECT(l.w_up.data == static_cast<const uint8_t*>(l.w_gate.data) + l.w_gate.bytes());
    EXPECT(l.wq.rows == s.NH * s.HS && l.wk.rows == s.NKV * s.HS && l.w_gate.rows == s.HD);
  }
}

// Speculative greedy == plain greedy on `rt`, with tree steps actually run.
void check_speculative(const std::shared_ptr<ModelRuntime>& rt, const std::string& label) {
  std::shared_ptr<const DraftModel> draft(create_draft(rt->model(), DraftShape{3, 0, 0, {}}, 7));
  TreeChoice choice;
  choice.name = "chimera-25";
  const SpeculativeConfig spec = make_speculative_config(draft, choice);
  Session plain(rt, 256), s(rt, 256, 64, &spec);
  for (const char* prompt : {"ab a b", "b ab ab a"}) {
    const GenerateResult want = run(plain, prompt, 40);
    const GenerateResult got = run(s, prompt, 40);
    const bool same = got.tokens == want.tokens;
    std::printf("%s speculative greedy \"%s\": %s, %d tree steps\n", label.c_str(), prompt,
                same ? "identical" : "DIFFER", (int)got.spec.steps);
    EXPECT(same && got.spec.steps > 0);
  }
}

void check_gpu(const std::string& path, const std::shared_ptr<ModelRuntime>& cpu, const std::string& label,
               bool f32) {
  RuntimeOptions o;
  o.threads = 2;
  o.gpu = GpuMode::Cuda;
  auto gpu = ModelRuntime::load(path, o);
  Session sc(cpu, 128), sg(gpu, 128);
  const std::vector<int32_t> prompt = {1, 259, 260, 262, 263, 261, 260};
  std::vector<float> lc, lg;
  sc.evaluate(prompt, (int)prompt.size(), &lc, nullptr);
  sg.evaluate(prompt, (int)prompt.size(), &lg, nullptr);
  // F16 and Q8_0 matrices multiply on tensor cores with x rounded to F16 (cuda/README.md).
  const float tol = f32 ? 1e-4f : 3e-2f;
  test::compare((label + " logits, CUDA vs CPU").c_str(), lg.data(), lc.data(), lc.size(), tol, tol);
  check_speculative(gpu, label + " cuda");
}

}  // namespace

int main() {
  test::TempDir tmp("chimera_test_arch_");
  std::string why;
  const bool gpu = gpu_available(0, &why);
  if (!gpu) std::printf("CUDA checks skipped (%s)\n", why.c_str());
  try {
    for (const char* arch : kArchs) {
      for (uint32_t type : {test::kGgmlF32, test::kGgmlF16, test::kGgmlQ8_0}) {
        const std::string label = std::string(arch) + (type == test::kGgmlF32 ? " F32" : type == test::kGgmlF16 ? " F16" : " Q8_0");
        const std::string path = tmp.file(label.substr(0, label.find(' ')) + std::to_string(type) + ".gguf");
        const std::vector<uint8_t> bytes = test::make_arch_gguf(arch, type);
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
        RuntimeOptions o;
        o.threads = 2;
        auto cpu = ModelRuntime::load(path, o);
        check_config(arch, cpu->model());
        check_speculative(cpu, label + " cpu");
        if (gpu) check_gpu(path, cpu, label, type == test::kGgmlF32);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "test_arch_models: %s: %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  return test::finish("test_arch_models");
}
