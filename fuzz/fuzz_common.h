// Shared pieces of the libFuzzer harnesses (fuzz/fuzz_*.cpp):
//  - a per-process scratch directory (under $CHIMERA_FUZZ_TMP, else /dev/shm, else $TMPDIR or /tmp) where
//    each input is written so that the real path-based loaders (MappedFile::open / read_text_file) run;
//  - the "every failure is a chimera::Error" rule: run_guarded() returns on chimera::Error and lets
//    anything else (another exception type, a crash, a sanitizer report) reach libFuzzer as a finding;
//  - the valid side files a harness needs beside the fuzzed one (a base model, a tokenizer, an HF
//    directory), generated here at startup so that every harness binary is self-contained.
//
// The fixture model is tiny (C 16, 1 layer, 2/1 heads, FFN 32, context 32, 264 tokens) and its weights
// are a closed form of (tensor, row, column) (fixture_value). fuzz/make-seeds.js writes its seeds with
// the same shapes (and computes the draft's base fingerprint from the same closed form), so the seeds
// of the llama2.c, tokenizer.bin, config.json and draft harnesses load completely against these fixtures.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "formats/safetensors_writer.h"
#include "gguf_builder.h"  // tests_native: the C++ test helper that builds GGUF files
#include "model/model.h"
#include "model/weight_import.h"

namespace fuzz {

namespace fs = std::filesystem;

// ---- fixture shapes (keep in sync with FIXTURE in fuzz/make-seeds.js) ----
constexpr int kC = 16, kL = 1, kNH = 2, kNKV = 1, kHD = 32, kCtx = 32, kV = 264;
constexpr int kHS = kC / kNH, kKVD = kNKV * kHS;

// Weight value of element (r, c) of the tensor with `salt`; exact small integers / 100, so JavaScript
// reproduces it (make-seeds.js fixtureValue). Salt 1 = token embedding, 2 = output projection.
inline float fixture_value(uint32_t salt, int64_t r, int64_t c) {
  const int64_t k = (r * 31 + c * 17 + (int64_t)salt * 7) % 61;
  return (float)(k - 30) / 100.0f;
}

inline std::vector<float> fixture_matrix(uint32_t salt, int64_t rows, int64_t cols) {
  std::vector<float> v((size_t)(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) v[(size_t)(r * cols + c)] = fixture_value(salt, r, c);
  return v;
}

inline std::vector<float> fixture_norm(uint32_t salt) {
  std::vector<float> v(kC);
  for (int c = 0; c < kC; c++) v[c] = 1.0f + fixture_value(salt, 0, c) / 4;
  return v;
}

// <unk> <s> </s>, the 256 byte pieces, then a few text pieces; plain spaces (callers convert to U+2581).
inline std::vector<std::string> fixture_pieces() {
  std::vector<std::string> p = {"<unk>", "<s>", "</s>"};
  char buf[8];
  for (int i = 0; i < 256; i++) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", i);
    p.push_back(buf);
  }
  for (const char* s : {" ", "a", "b", " a", "ab"}) p.push_back(s);
  return p;  // kV pieces
}

inline int32_t fixture_type(size_t i) { return i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; }

inline std::string to_sp(std::string s) {
  std::string out;
  for (char ch : s) out += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
  return out;
}

// ---- scratch files ----

inline const std::string& scratch_dir() {
  // Never destroyed: the exit handler below runs after static destructors.
  static const std::string* const dir = [] {
    fs::path root;
    if (const char* e = std::getenv("CHIMERA_FUZZ_TMP"); e && *e) root = e;
    else if (::access("/dev/shm", W_OK) == 0) root = "/dev/shm";
    else if (const char* t = std::getenv("TMPDIR"); t && *t) root = t;
    else root = "/tmp";
    const fs::path d = root / ("chimera-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return new std::string(d.string());
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(*dir, ec);
    });
    return true;
  }();
  (void)cleanup;
  return *dir;
}

inline std::string scratch(const std::string& name) { return (fs::path(scratch_dir()) / name).string(); }

inline void write_file(const std::string& path, const void* data, size_t size) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), (std::streamsize)size);
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

inline void write_file(const std::string& path, const std::string& s) { write_file(path, s.data(), s.size()); }

// Runs `body`; a chimera::Error is the expected outcome for bad input. Anything else propagates.
// CHIMERA_FUZZ_VERBOSE=1 prints each refusal (to check that seeds load: fuzz_x -runs=0 corpus/x).
template <typename F>
int run_guarded(F&& body) {
  static const bool verbose = std::getenv("CHIMERA_FUZZ_VERBOSE") != nullptr;
  try {
    body();
    if (verbose) std::fprintf(stderr, "fuzz: accepted\n");
  } catch (const chimera::Error& e) {
    if (verbose) std::fprintf(stderr, "fuzz: %s: %s\n", chimera::error_code_name(e.code()), e.what());
  }
  return 0;
}

// Uses what a loaded model's tokenizer built from the file: encode and decode a fixed text.
inline void exercise_tokenizer(const chimera::Tokenizer& tok) {
  static const std::string text = "Hello, world! ab a\n\xE2\x96\x81 <s> \xC3\xA9\xF0\x9F\x98\x80 \xFF";
  const std::vector<int32_t> ids = tok.encode(text, true, true);
  // Special parsing splits at control and added tokens first (the byte-level path always at added ones).
  const std::vector<int32_t> special = tok.encode(text + "<|eot_id|><|im_end|>", false, true, true);
  volatile size_t sink = tok.decode(ids).size() + tok.decode(special).size();
  (void)sink;
}

// ---- fixture writers ----

// The fixture model as GGUF (test::GgufBuilder), untied, F32.
inline std::vector<uint8_t> fixture_gguf() {
  test::GgufBuilder g;
  const std::vector<std::string> pieces = fixture_pieces();
  g.kv_string("general.architecture", "llama");
  g.kv_string("general.name", "fuzz-fixture");
  g.kv_u32("llama.context_length", kCtx);
  g.kv_u32("llama.embedding_length", kC);
  g.kv_u32("llama.block_count", kL);
  g.kv_u32("llama.feed_forward_length", kHD);
  g.kv_u32("llama.attention.head_count", kNH);
  g.kv_u32("llama.attention.head_count_kv", kNKV);
  g.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.kv_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> sp;
  std::vector<int32_t> types;
  std::vector<float> scores;
  for (size_t i = 0; i < pieces.size(); i++) {
    sp.push_back(to_sp(pieces[i]));
    types.push_back(fixture_type(i));
    scores.push_back(i < 259 ? 0.0f : -(float)(i - 259));
  }
  g.kv_strings("tokenizer.ggml.tokens", sp);
  g.kv_f32s("tokenizer.ggml.scores", scores);
  g.kv_i32s("tokenizer.ggml.token_type", types);
  g.kv_u32("tokenizer.ggml.bos_token_id", 1);
  g.kv_u32("tokenizer.ggml.eos_token_id", 2);
  const auto mat = [&](const std::string& name, uint32_t salt, uint64_t rows, uint64_t cols) {
    g.tensor(name, {cols, rows}, test::kGgmlF32, test::encode_floats(test::kGgmlF32, fixture_matrix(salt, rows, cols)));
  };
  const auto norm = [&](const std::string& name, uint32_t salt) {
    g.tensor(name, {(uint64_t)kC}, test::kGgmlF32, test::encode_floats(test::kGgmlF32, fixture_norm(salt)));
  };
  mat("token_embd.weight", 1, kV, kC);
  for (int l = 0; l < kL; l++) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const uint32_t s = 10 + 10 * l;
    norm(p + "attn_norm.weight", s);
    mat(p + "attn_q.weight", s + 1, kC, kC);
    mat(p + "attn_k.weight", s + 2, kKVD, kC);
    mat(p + "attn_v.weight", s + 3, kKVD, kC);
    mat(p + "attn_output.weight", s + 4, kC, kC);
    norm(p + "ffn_norm.weight", s + 5);
    mat(p + "ffn_gate.weight", s + 6, kHD, kC);
    mat(p + "ffn_up.weight", s + 7, kHD, kC);
    mat(p + "ffn_down.weight", s + 8, kC, kHD);
  }
  norm("output_norm.weight", 3);
  mat("output.weight", 2, kV, kC);
  return g.build();
}

inline void put_i32(std::vector<uint8_t>& b, int32_t v) {
  for (int i = 0; i < 4; i++) b.push_back((uint8_t)((uint32_t)v >> (8 * i)));
}
inline void put_f32s(std::vector<uint8_t>& b, const std::vector<float>& v) {
  const size_t at = b.size();
  b.resize(at + v.size() * 4);
  std::memcpy(b.data() + at, v.data(), v.size() * 4);  // little-endian hosts only (as the loaders' users)
}

// A llama2.c version-0 checkpoint of the fixture model (untied: negative vocabulary in the header).
inline std::vector<uint8_t> fixture_llama2c() {
  std::vector<uint8_t> b;
  for (int32_t v : {kC, kHD, kL, kNH, kNKV, -kV, kCtx}) put_i32(b, v);
  put_f32s(b, fixture_matrix(1, kV, kC));
  const auto per_layer = [&](uint32_t off, auto make) {
    for (int l = 0; l < kL; l++) put_f32s(b, make(10 + 10 * l + off));
  };
  per_layer(0, [](uint32_t s) { return fixture_norm(s); });
  per_layer(1, [](uint32_t s) { return fixture_matrix(s, kC, kC); });
  per_layer(2, [](uint32_t s) { return fixture_matrix(s, kKVD, kC); });
  per_layer(3, [](uint32_t s) { return fixture_matrix(s, kKVD, kC); });
  per_layer(4, [](uint32_t s) { return fixture_matrix(s, kC, kC); });
  per_layer(5, [](uint32_t s) { return fixture_norm(s); });
  per_layer(6, [](uint32_t s) { return fixture_matrix(s, kHD, kC); });  // w1 (gate)
  per_layer(8, [](uint32_t s) { return fixture_matrix(s, kC, kHD); });  // w2 (down)
  per_layer(7, [](uint32_t s) { return fixture_matrix(s, kHD, kC); });  // w3 (up)
  put_f32s(b, fixture_norm(3));
  put_f32s(b, std::vector<float>((size_t)2 * kCtx * (kHS / 2), 0.5f));  // obsolete RoPE tables
  put_f32s(b, fixture_matrix(2, kV, kC));
  return b;
}

// tokenizer.bin for the fixture vocabulary.
inline std::vector<uint8_t> fixture_llama2c_tokenizer() {
  const std::vector<std::string> pieces = fixture_pieces();
  std::vector<uint8_t> b;
  put_i32(b, 6);
  for (size_t i = 0; i < pieces.size(); i++) {
    put_f32s(b, {i < 259 ? 0.0f : -(float)(i - 259)});
    put_i32(b, (int32_t)pieces[i].size());
    b.insert(b.end(), pieces[i].begin(), pieces[i].end());
  }
  return b;
}

// A SentencePiece-style BPE tokenizer.json for the fixture vocabulary, one vocabulary entry a line as the
// tokenizers library writes it. Written as text (the pieces need no escaping), so the harnesses depend on
// the JSON reader only, not on the writer's API.
inline std::string fixture_tokenizer_json() {
  const std::vector<std::string> pieces = fixture_pieces();
  const std::string sp = to_sp(" ");
  std::string vocab, added;
  for (size_t i = 0; i < pieces.size(); i++) {
    vocab += (i ? ",\n      \"" : "\n      \"") + to_sp(pieces[i]) + "\": " + std::to_string(i);
    if (i < 3) {
      added += (i ? ", " : "") + std::string("{\"id\": ") + std::to_string(i) + ", \"content\": \"" + pieces[i] +
               "\", \"special\": true}";
    }
  }
  return "{\"version\": \"1.0\", \"added_tokens\": [" + added +
         "], \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" + sp +
         "\"}]}, \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"vocab\": {" + vocab +
         "}, \"merges\": [[\"" + sp + "\", \"a\"], \"a b\"]}}";
}

// model.safetensors (HF names, F32), tokenizer.json and tokenizer_config.json of the fixture model in
// `dir`; config.json is the fuzzed file.
inline void write_fixture_hf_dir(const std::string& dir) {
  fs::create_directories(dir);
  const chimera::WeightNames n = chimera::hf_weight_names();
  std::vector<std::vector<float>> keep;
  std::vector<chimera::TensorToWrite> tensors;
  const auto add = [&](const std::string& name, std::vector<float> v, std::vector<int64_t> shape) {
    keep.push_back(std::move(v));
    chimera::TensorToWrite t;
    t.name = name;
    t.dtype = chimera::DType::F32;
    t.shape = std::move(shape);
    t.data = keep.back().data();
    tensors.push_back(std::move(t));
  };
  keep.reserve(64);  // pointers into `keep` must stay valid
  add(n.tok_embd, fixture_matrix(1, kV, kC), {kV, kC});
  for (int l = 0; l < kL; l++) {
    const std::string p = n.layer_prefix + std::to_string(l);
    const uint32_t s = 10 + 10 * l;
    const int64_t rows[9] = {0, kC, kKVD, kKVD, kC, 0, kHD, kHD, kC};
    const int64_t cols[9] = {kC, kC, kC, kC, kC, kC, kC, kC, kHD};
    for (int i = 0; i < 9; i++) {
      if (rows[i] == 0) add(p + n.layer_suffix[i], fixture_norm(s + (uint32_t)i), {kC});
      else add(p + n.layer_suffix[i], fixture_matrix(s + (uint32_t)i, rows[i], cols[i]), {rows[i], cols[i]});
    }
  }
  add(n.output_norm, fixture_norm(3), {kC});
  add(n.output, fixture_matrix(2, kV, kC), {kV, kC});
  chimera::write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file((fs::path(dir) / "tokenizer.json").string(), fixture_tokenizer_json());
  write_file((fs::path(dir) / "tokenizer_config.json").string(),
             std::string("{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": \"<s>\",\n"
                         "  \"eos_token\": {\"content\": \"</s>\", \"special\": true},\n  \"unk_token\": \"<unk>\",\n"
                         "  \"legacy\": true,\n  \"model_max_length\": 32,\n  \"tokenizer_class\": \"LlamaTokenizer\"\n}\n"));
}

// Aborts (a harness setup bug, not a finding in the parser) unless `body` succeeds.
template <typename F>
void must_succeed(const char* what, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: fixture check failed (%s): %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace fuzz
