// Continuous batching without Node. forward_sequences over several sequences (a prompt chunk, decode
// rows and a tree with its mask and per-node positions) gives each the logits, hidden states and cache
// that forward() gives it alone, bit for bit. The scheduler, with sessions generating on threads of
// their own, runs shared passes (counted), and every session's greedy output equals running it alone,
// with and without a draft's tree steps.
#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "arch_gguf.h"
#include "check.h"
#include "greedy_request.h"
#include "common/error.h"
#include "generate/session.h"
#include "model/batch_scheduler.h"
#include "spec/draft_model.h"
#include "spec/speculative_config.h"

using namespace chimera;

namespace {

struct Seq {
  std::vector<int32_t> prefix;          // already in the cache
  std::vector<int32_t> tokens, positions, rows;
  std::vector<uint8_t> mask;            // (T, n_past + T) or empty: causal
};

bool same_floats(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

void check_forward_sequences(const ModelRuntime& rt) {
  const Model& m = rt.model();
  Backend& be = rt.backend();
  const int V = m.config.V, C = m.config.C, S = 64;
  std::vector<Seq> seqs(4);
  seqs[0].tokens = {1, 200, 201, 210, 220};  // a prompt chunk, causal, rows 3 and 4 out
  seqs[0].rows = {3, 4};
  seqs[1].prefix = {1, 230, 231, 232, 233, 234, 235};  // one decode row
  seqs[1].tokens = {236};
  seqs[1].rows = {0};
  seqs[2].prefix = {1, 240, 241};  // a 4-node tree: root, two children, a grandchild of the first
  seqs[2].tokens = {242, 243, 244, 245};
  const int depth[4] = {0, 1, 1, 2}, parent[4] = {-1, 0, 0, 1};
  seqs[2].rows = {0, 1, 2, 3};
  seqs[3].prefix = {1, 250};  // rows whose outputs nobody wants
  seqs[3].tokens = {251, 252};
  for (Seq& s : seqs) {
    const int n = (int)s.prefix.size(), T = (int)s.tokens.size();
    for (int i = 0; i < T; i++) s.positions.push_back(n + (&s == &seqs[2] ? depth[i] : i));
  }
  {
    Seq& s = seqs[2];
    const int n = (int)s.prefix.size(), T = (int)s.tokens.size();
    s.mask.assign((size_t)T * (n + T), 0);
    for (int i = 0; i < T; i++) {
      for (int j = 0; j < n; j++) s.mask[(size_t)i * (n + T) + j] = 1;
      for (int a = i; a >= 0; a = parent[a]) s.mask[(size_t)i * (n + T) + n + a] = 1;
    }
  }
  auto batch_of = [](Seq& s) {
    Batch b;
    b.tokens = s.tokens.data();
    b.positions = s.positions.data();
    b.T = (int)s.tokens.size();
    b.mask = s.mask.empty() ? nullptr : s.mask.data();
    b.out_rows = s.rows.data();
    b.R = (int)s.rows.size();
    return b;
  };
  // Alone: each sequence in its own cache and workspace.
  struct Out {
    std::unique_ptr<KVCache> kv;
    std::vector<float> logits, hidden, hidden_all;
  };
  auto prefill = [&](Out& o, const Seq& s) {
    o.kv = std::make_unique<KVCache>(&be, m.config.L, S, m.config.KVD());
    o.hidden_all.assign((size_t)S * C, 0.f);
    if (s.prefix.empty()) return;
    Workspace ws(&be, m.config, 64);
    std::vector<int32_t> pos(s.prefix.size());
    for (size_t i = 0; i < pos.size(); i++) pos[i] = (int)i;
    Batch b;
    b.tokens = s.prefix.data();
    b.positions = pos.data();
    b.T = (int)s.prefix.size();
    forward(m, be, ws, *o.kv, b, nullptr, nullptr, o.hidden_all.data());
  };
  // The sequence's prefix in its cache and room for its outputs; returns its batch.
  auto prepare = [&](Out& o, Seq& s) {
    prefill(o, s);
    const Batch b = batch_of(s);
    o.logits.assign((size_t)b.R * V, 0.f);
    o.hidden.assign((size_t)b.R * C, 0.f);
    return b;
  };
  std::vector<Out> alone(seqs.size()), together(seqs.size());
  for (size_t i = 0; i < seqs.size(); i++) {
    Out& o = alone[i];
    const Batch b = prepare(o, seqs[i]);
    Workspace ws(&be, m.config, 64);
    forward(m, be, ws, *o.kv, b, o.logits.data(), o.hidden.data(), o.hidden_all.data());
  }
  std::vector<SequenceForward> sf;
  for (size_t i = 0; i < seqs.size(); i++) {
    Out& o = together[i];
    const Batch b = prepare(o, seqs[i]);
    // sequence 3 asks for no outputs at all
    sf.push_back(SequenceForward{o.kv.get(), b, i == 3 ? nullptr : o.logits.data(), i == 3 ? nullptr : o.hidden.data(),
                                 i == 1 ? nullptr : o.hidden_all.data()});
  }
  Workspace ws(&be, m.config, 16);
  std::vector<float> scratch;
  forward_sequences(m, be, ws, scratch, sf.data(), (int)sf.size());
  for (size_t i = 0; i < seqs.size(); i++) {
    const Out &a = alone[i], &t = together[i];
    const int n = (int)(seqs[i].prefix.size() + seqs[i].tokens.size());
    EXPECT(t.kv->size() == n && a.kv->size() == n);
    bool kv_same = true;
    for (int l = 0; l < m.config.L; l++)
      kv_same = kv_same && same_floats(a.kv->k(l), t.kv->k(l), (size_t)n * m.config.KVD()) &&
                same_floats(a.kv->v(l), t.kv->v(l), (size_t)n * m.config.KVD());
    const bool outs = i == 3 || (same_floats(a.logits.data(), t.logits.data(), a.logits.size()) &&
                                 same_floats(a.hidden.data(), t.hidden.data(), a.hidden.size()));
    const bool all = i == 1 || same_floats(a.hidden_all.data(), t.hidden_all.data(), (size_t)n * C);
    std::printf("sequence %zu: cache %s, outputs %s, hidden states %s\n", i, kv_same ? "bit-equal" : "DIFFER",
                outs ? "bit-equal" : "DIFFER", all ? "bit-equal" : "DIFFER");
    EXPECT(kv_same && outs && all);
  }
  // A bad sequence is refused before anything runs.
  std::vector<int32_t> bad = {m.config.V + 5};
  std::vector<int32_t> bad_pos = {0}, bad_rows = {0};
  Batch bb;
  bb.tokens = bad.data();
  bb.positions = bad_pos.data();
  bb.T = 1;
  bb.out_rows = bad_rows.data();
  bb.R = 1;
  KVCache kv(&be, m.config.L, S, m.config.KVD());
  SequenceForward one{&kv, bb, nullptr, nullptr, nullptr};
  EXPECT_THROWS_CODE(forward_sequences(m, be, ws, scratch, &one, 1), ErrorCode::InvalidArg);
}

// n sessions generate at once on their own threads; each must equal its alone run. True when passes
// were shared.
bool run_concurrent(const std::shared_ptr<ModelRuntime>& rt, const SpeculativeConfig* spec, int n, const char* label,
                    const std::vector<std::string>& prompts, const std::vector<std::vector<int32_t>>& want) {
  const BatchStats before = rt->batcher().stats();
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < n; i++) sessions.push_back(std::make_unique<Session>(rt, 256, 4, spec));
  std::vector<GenerateResult> got(n);
  std::vector<std::thread> threads;
  std::atomic<bool> abort{false};
  std::atomic<int> started{0};
  for (int i = 0; i < n; i++)
    threads.emplace_back([&, i] {
      // All threads start generating together: on a loaded machine a thread started late could otherwise
      // find the others' (tiny model's) generations already over.
      started++;
      while (started.load() < n) std::this_thread::yield();
      got[i] = sessions[i]->generate(test::greedy_request(prompts[i % prompts.size()], 40), [](Chunk&&) {}, abort);
    });
  for (std::thread& t : threads) t.join();
  const BatchStats after = rt->batcher().stats();
  int same = 0, tree_steps = 0;
  for (int i = 0; i < n; i++) {
    same += got[i].tokens == want[i];
    tree_steps += got[i].spec.steps;
  }
  const int64_t batched = after.batched_passes - before.batched_passes;
  std::printf("%s, %d sessions at once: %d/%d identical to alone; %lld passes, %lld shared, up to %d sessions; "
              "%d tree steps\n",
              label, n, same, n, (long long)(after.passes - before.passes), (long long)batched, after.max_sequences,
              tree_steps);
  EXPECT(same == n);
  if (spec) EXPECT(tree_steps > 0);
  return batched > 0;
}

// n sessions at once, against each one alone.
void check_concurrent(const std::shared_ptr<ModelRuntime>& rt, const SpeculativeConfig* spec, int n,
                      const char* label) {
  const std::vector<std::string> prompts = {"ab a b", "b ab ab a", "a", "ba ba", "abba ab", "b", "aab", "bab b a"};
  std::vector<std::vector<int32_t>> want(n);
  {
    Session s(rt, 256, 4, spec);  // batch size 4: the longer prompts are prefilled in chunks
    std::atomic<bool> abort{false};
    for (int i = 0; i < n; i++) want[i] = s.generate(test::greedy_request(prompts[i % prompts.size()], 40), [](Chunk&&) {}, abort).tokens;
  }
  // A tiny model's pass takes microseconds, and a pass waits for the other members about as long: on
  // a loaded machine (other tests on both cores) the threads can miss each other for a whole run, and
  // take turns. Up to three runs; every run must equal the alone outputs, and one must share passes.
  for (int attempt = 0; attempt < 3; attempt++) {
    if (run_concurrent(rt, spec, n, label, prompts, want)) return;
  }
  EXPECT(!"no pass was shared in three runs");
}

}  // namespace

int main() {
  test::TempDir tmp("chimera_test_batch_");
  try {
    for (uint32_t type : {test::kGgmlF32, test::kGgmlQ8_0}) {
      for (const char* arch : {"llama", "qwen3"}) {
        const std::string path = tmp.file(std::string(arch) + std::to_string(type) + ".gguf");
        const std::vector<uint8_t> bytes = test::make_arch_gguf(arch, type);
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
        RuntimeOptions o;
        o.threads = 2;
        auto rt = ModelRuntime::load(path, o);
        std::printf("%s %s\n", arch, type == test::kGgmlF32 ? "F32" : "Q8_0");
        check_forward_sequences(*rt);
        check_concurrent(rt, nullptr, 6, "plain");
        std::shared_ptr<const DraftModel> draft(create_draft(rt->model(), DraftShape{3, 0, 0, {}}, 7));
        TreeChoice choice;
        choice.name = "chimera-25";
        const SpeculativeConfig spec = make_speculative_config(draft, choice);
        check_concurrent(rt, &spec, 4, "chimera-25 draft");
      }
    }
    {  // bounds: one session per pass is plain serial decoding, still identical
      const std::string path = tmp.file("bounded.gguf");
      const std::vector<uint8_t> bytes = test::make_arch_gguf("llama", test::kGgmlF32);
      std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
      RuntimeOptions o;
      o.threads = 2;
      o.batch.max_sessions = 1;
      auto rt = ModelRuntime::load(path, o);
      std::vector<std::unique_ptr<Session>> s;
      std::vector<std::thread> th;
      std::atomic<bool> abort{false};
      for (int i = 0; i < 3; i++) s.push_back(std::make_unique<Session>(rt, 128));
      for (int i = 0; i < 3; i++) th.emplace_back([&, i] { s[i]->generate(test::greedy_request("ab", 20), [](Chunk&&) {}, abort); });
      for (auto& t : th) t.join();
      const BatchStats st = rt->batcher().stats();
      std::printf("max_sessions 1: %lld passes, %lld shared\n", (long long)st.passes, (long long)st.batched_passes);
      EXPECT(st.batched_passes == 0 && st.max_sequences == 1 && st.passes > 0);
      RuntimeOptions bad = o;
      bad.batch.max_rows = 0;
      EXPECT_THROWS_CODE(ModelRuntime::load(path, bad), ErrorCode::InvalidArg);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return test::finish("test_batched_forward");
}
