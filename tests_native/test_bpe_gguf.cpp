// BPE tokenizer training (bpe_trainer) and the GGUF writer (gguf_writer): vocabulary layout, round trips,
// determinism and input errors; then a tiny random model written as F32 / F16 / BF16 GGUF and read back
// with load_gguf (config, tokenizer and weights must survive).
#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "check.h"
#include "common/error.h"
#include "formats/gguf_writer.h"
#include "model/model.h"
#include "train/bpe_trainer.h"

using namespace chimera;
namespace fs = std::filesystem;

namespace {

// A few KB of simple English: random sentences from a small grammar, four per line.
std::string english_text(uint64_t seed, int sentences) {
  static const char* names[] = {"Tom", "Lily", "Max", "Anna", "Ben", "Sara", "Jack", "Mia"};
  static const char* adj[] = {"little", "big", "happy", "old", "red", "shiny", "small", "funny", "quiet",
                              "brave", "green", "sleepy"};
  static const char* noun[] = {"cat", "dog", "bird", "girl", "boy", "tree", "house", "garden", "river", "ball",
                               "apple", "stone", "teacher", "friend", "flower", "rabbit", "truck", "cake",
                               "window", "mountain"};
  static const char* verb[] = {"saw", "liked", "found", "wanted", "played with", "looked at", "helped",
                               "talked to", "followed", "painted", "carried", "visited", "shared", "watched"};
  static const char* tail[] = {".", " in the park.", " every day.", " and smiled.", " with the others.",
                               " near the house.", "!", " again.", " because it was fun.", ", and then they went home."};
  test::Rng rng(seed);
  std::string s;
  for (int i = 0; i < sentences; i++) {
    std::string sent = rng.below(3) == 0 ? std::string(names[rng.below(8)])
                                         : std::string("the ") + adj[rng.below(12)] + " " + noun[rng.below(20)];
    sent += std::string(" ") + verb[rng.below(14)] + (rng.below(2) ? " the " : " a ") + adj[rng.below(12)] + " " +
            noun[rng.below(20)] + tail[rng.below(10)];
    sent[0] = (char)std::toupper((unsigned char)sent[0]);
    s += sent;
    s += (i % 4 == 3) ? "\n" : " ";
  }
  return s;
}

int piece_id(const TokenizerData& d, const std::string& p) {
  for (size_t i = 0; i < d.pieces.size(); i++) {
    if (d.pieces[i] == p) return (int)i;
  }
  return -1;
}

bool same_tokenizer(const TokenizerData& a, const TokenizerData& b) {
  return a.pieces == b.pieces && a.scores == b.scores && a.types == b.types && a.bos == b.bos && a.eos == b.eos &&
         a.unk == b.unk && a.add_bos == b.add_bos && a.add_space_prefix == b.add_space_prefix;
}

void test_layout_and_round_trip(const std::string& text, const TokenizerData& d) {
  EXPECT((int)d.pieces.size() == 512);
  EXPECT(d.scores.size() == 512 && d.types.size() == 512);
  EXPECT(d.pieces[0] == "<unk>" && d.types[0] == TokenType::Unknown);
  EXPECT(d.pieces[1] == "<s>" && d.types[1] == TokenType::Control && d.bos == 1);
  EXPECT(d.pieces[2] == "</s>" && d.types[2] == TokenType::Control && d.eos == 2 && d.unk == 0);
  EXPECT(d.pieces[3] == "<0x00>" && d.pieces[3 + 0x0A] == "<0x0A>" && d.pieces[258] == "<0xFF>");
  for (int i = 3; i < 259; i++) EXPECT(d.types[i] == TokenType::Byte && d.scores[i] == 0.0f);
  for (int i = 259; i < 512; i++) {
    EXPECT(d.types[i] == TokenType::Normal);
    EXPECT(d.scores[i] == -(float)(i - 259));
  }
  EXPECT(d.add_bos && d.add_space_prefix && d.model == "llama" && d.merges.empty());
  // Unique pieces; spaces only at the start of a piece; line breaks only as pieces of their own.
  std::set<std::string> uniq(d.pieces.begin(), d.pieces.end());
  EXPECT(uniq.size() == d.pieces.size());
  for (int i = 259; i < 512; i++) {
    const std::string& p = d.pieces[i];
    EXPECT(p.find(' ', 1) == std::string::npos);
    EXPECT(p == "\n" || p.find('\n') == std::string::npos);
  }
  EXPECT(piece_id(d, " ") >= 259 && piece_id(d, "\n") >= 259);

  Tokenizer tok(d);
  const std::vector<int32_t> ids = tok.encode(text, true, true);
  EXPECT(ids.size() > 1 && ids[0] == 1);
  EXPECT(tok.decode(ids) == text);
  std::printf("trained 512 pieces on %zu bytes: %zu tokens (%.2f bytes/token)\n", text.size(), ids.size() - 1,
              (double)text.size() / (double)(ids.size() - 1));
  EXPECT(ids.size() * 3 < text.size());  // it really compresses
  for (int32_t id : ids) EXPECT(id < 3 || id >= 259);  // no byte fallback on the training text

  // Frequent words are single tokens.
  for (const char* w : {" the", " cat", " little", " garden"}) {
    const int id = piece_id(d, w);
    EXPECT(id >= 259);
    const std::vector<int32_t> e = tok.encode(std::string(w).substr(1), false, true);
    EXPECT(e.size() == 1 && e[0] == id);
  }
  // Unseen text with characters the training text never had: byte fallback, exact round trip.
  const std::string unseen = "Zo\xC3\xAB ate \xE5\xAF\xBF\xE5\x8F\xB8 \xE2\x80\x94 na\xC3\xAFve caf\xC3\xA9! \xF0\x9F\x98\x80\nQ?";
  const std::vector<int32_t> u = tok.encode(unseen, true, true);
  EXPECT(tok.decode(u) == unseen);
  bool bytes_used = false;
  for (int32_t id : u) bytes_used |= id >= 3 && id < 259;
  EXPECT(bytes_used);
  // Not at the start: no dummy prefix.
  const std::vector<int32_t> mid = tok.encode("the dog.", false, false);
  EXPECT(tok.decode(mid, 5) == "the dog.");
}

void test_small_exact() {
  // Words " ab" x3, " cd" x2. Characters by count: ' ' 5, a 3, b 3, c 2, d 2. Pair counts tie at 3
  // (" a" and "ab"): the lexicographically smaller (" ", "a") merges first, then (" a", "b"), then
  // the tie at 2 between (" ", "c") and ("c", "d").
  const TokenizerData d = train_bpe_tokenizer("ab ab ab cd cd", 268);
  const std::vector<std::string> want = {" ", "a", "b", "c", "d", " a", " ab", " c", " cd"};
  EXPECT(std::vector<std::string>(d.pieces.begin() + 259, d.pieces.end()) == want);
  Tokenizer tok(d);
  EXPECT(tok.encode("ab cd ab", false, true) == (std::vector<int32_t>{265, 267, 265}));
  // Nothing left to merge for a 269th piece.
  EXPECT_THROWS_CODE(train_bpe_tokenizer("ab ab ab cd cd", 269), ErrorCode::InvalidArg);
  // A merge whose result already is a piece reuses it: "abc" from ("ab","c") and later ("a","bc").
  const TokenizerData r = train_bpe_tokenizer("abc abc abc abc xbc xbc xbc xbc xbc ab ab", 259 + 6 + 4);
  std::set<std::string> uniq(r.pieces.begin(), r.pieces.end());
  EXPECT(uniq.size() == r.pieces.size());
  Tokenizer rt(r);
  EXPECT(rt.decode(rt.encode("abc xbc ab x", true, true)) == "abc xbc ab x");
}

void test_options_and_errors(const std::string& text) {
  EXPECT_THROWS_CODE(train_bpe_tokenizer("", 512), ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(train_bpe_tokenizer(text, 259), ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(train_bpe_tokenizer(text, 270), ErrorCode::InvalidArg);  // ~40 characters do not fit
  EXPECT_THROWS_CODE(train_bpe_tokenizer(text, 100000), ErrorCode::InvalidArg);  // text too small
  BpeTrainOptions bad;
  bad.min_char_count = 0;
  EXPECT_THROWS_CODE(train_bpe_tokenizer(text, 512, bad), ErrorCode::InvalidArg);
  bad = {};
  bad.max_piece_chars = 1;
  EXPECT_THROWS_CODE(train_bpe_tokenizer(text, 512, bad), ErrorCode::InvalidArg);
  try {
    train_bpe_tokenizer(text, 270);
  } catch (const Error& e) {
    EXPECT(std::string(e.what()).find("vocab_size 270 is too small") != std::string::npos);
  }

  // Rare characters are left to byte fallback; the text still round-trips.
  BpeTrainOptions o;
  o.min_char_count = 200;
  o.max_piece_chars = 4;
  const TokenizerData d = train_bpe_tokenizer(text, 330, o);
  EXPECT((int)d.pieces.size() == 330);
  EXPECT(piece_id(d, "Q") < 0);
  for (size_t i = 259; i < d.pieces.size(); i++) {
    size_t chars = 0;
    for (char c : d.pieces[i]) chars += ((unsigned char)c & 0xC0) != 0x80;
    EXPECT(chars <= 4);
  }
  Tokenizer tok(d);
  EXPECT(tok.decode(tok.encode(text, true, true)) == text);
  o = {};
  o.max_chars = 10;
  const TokenizerData m = train_bpe_tokenizer(text, 340, o);
  int single = 0;
  for (size_t i = 259; i < m.pieces.size(); i++) single += m.pieces[i].size() == 1;
  EXPECT(single <= 10 && piece_id(m, " ") >= 259);
  Tokenizer mt(m);
  EXPECT(mt.decode(mt.encode(text, true, true)) == text);
  // Line breaks as ordinary characters.
  o = {};
  o.isolate_newlines = false;
  const TokenizerData n = train_bpe_tokenizer(text, 512, o);
  bool joined = false;
  for (const std::string& p : n.pieces) joined |= p.size() > 1 && p.find('\n') != std::string::npos;
  EXPECT(joined);
  Tokenizer nt(n);
  EXPECT(nt.decode(nt.encode(text, true, true)) == text);
}

// ---- GGUF ----

struct TinyModel {
  ModelConfig cfg;
  ModelWeights w;
  std::vector<std::vector<float>> buffers;

  TensorView matrix(test::Rng& rng, int64_t rows, int64_t cols) {
    buffers.push_back(test::random_floats(rng, (size_t)(rows * cols), -0.5f, 0.5f));
    TensorView v;
    v.dtype = DType::F32;
    v.data = buffers.back().data();
    v.rows = rows;
    v.cols = cols;
    return v;
  }
  const float* vec(test::Rng& rng, int64_t n) {
    buffers.push_back(test::random_floats(rng, (size_t)n, 0.5f, 1.5f));
    return buffers.back().data();
  }

  TinyModel(int V, bool tied, uint64_t seed) {
    cfg.name = "bpe-gguf-test";
    cfg.C = 32;
    cfg.L = 2;
    cfg.NH = 4;
    cfg.NKV = 2;
    cfg.HS = 8;
    cfg.HD = 64;
    cfg.V = V;
    cfg.max_context = 128;
    cfg.rms_eps = 1e-5f;
    cfg.rope_theta = 10000.0f;
    cfg.rope_dims = 8;
    cfg.tied_output = tied;
    buffers.reserve(64);  // views point into the buffers: no reallocation
    test::Rng rng(seed);
    w.tok_embd = matrix(rng, V, 32);
    for (int l = 0; l < 2; l++) {
      LayerWeights lw;
      lw.attn_norm = vec(rng, 32);
      lw.wq = matrix(rng, 32, 32);
      lw.wk = matrix(rng, 16, 32);
      lw.wv = matrix(rng, 16, 32);
      lw.wo = matrix(rng, 32, 32);
      lw.ffn_norm = vec(rng, 32);
      lw.w_gate = matrix(rng, 64, 32);
      lw.w_up = matrix(rng, 64, 32);
      lw.w_down = matrix(rng, 32, 64);
      w.layers.push_back(lw);
    }
    w.output_norm = vec(rng, 32);
    w.output = tied ? w.tok_embd : matrix(rng, V, 32);
  }
};

float round_as(DType t, float x) {
  if (t == DType::F16) return fp16_to_f32(f32_to_fp16(x));
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

// The loaded matrix equals the source rounded to `t` (exactly: the writer rounds to nearest even).
void check_matrix(const char* label, const TensorView& got, const TensorView& src, DType t) {
  EXPECT(got.dtype == t && got.rows == src.rows && got.cols == src.cols);
  if (got.dtype != t || got.rows != src.rows || got.cols != src.cols) return;
  std::vector<float> a((size_t)(got.rows * got.cols)), ref(a.size());
  const float* s = static_cast<const float*>(src.data);
  for (int64_t r = 0; r < got.rows; r++) row_to_f32(t, got.row(r), a.data() + r * got.cols, (size_t)got.cols);
  if (dtype_is_quantized(t)) {
    // Block types: exactly the source quantised by row_from_f32 and decoded, and close to the source.
    std::vector<uint8_t> row(dtype_row_bytes(t, (size_t)got.cols));
    double diff = 0, norm = 0;
    for (int64_t r = 0; r < got.rows; r++) {
      row_from_f32(t, s + r * got.cols, row.data(), (size_t)got.cols);
      row_to_f32(t, row.data(), ref.data() + r * got.cols, (size_t)got.cols);
    }
    for (size_t i = 0; i < ref.size(); i++) {
      diff += ((double)a[i] - s[i]) * ((double)a[i] - s[i]);
      norm += (double)s[i] * s[i];
    }
    EXPECT(a == ref);
    EXPECT(std::sqrt(diff / norm) < (t == DType::Q8_0 ? 0.01 : 0.15));
    return;
  }
  for (size_t i = 0; i < ref.size(); i++) ref[i] = round_as(t, s[i]);
  EXPECT(a == ref);
  // And within the format's rounding of the F32 source.
  const float rtol = t == DType::F32 ? 0.0f : t == DType::F16 ? 1.0f / 2048 : 1.0f / 256;
  test::compare(label, a.data(), s, a.size(), 1e-7f, rtol);
}

void check_vector(const float* got, const float* src, int n) {
  EXPECT(got != nullptr && std::equal(got, got + n, src));
}

void round_trip_model(const test::TempDir& tmp, const TokenizerData& d, bool tied, DType t) {
  TinyModel m((int)d.pieces.size(), tied, 7 + (int)t);
  const std::string path = tmp.file(std::string("tiny_") + dtype_name(t) + ".gguf");
  const std::vector<GgufTensorOut> tensors = model_tensors_for_gguf(m.w, m.cfg, t);
  EXPECT(tensors.size() == (tied ? 1u : 2u) + 1u + 9u * 2u);
  write_gguf(path, m.cfg, d, tensors);
  EXPECT(!test::file_exists(path + ".tmp"));
  const std::unique_ptr<Model> g = load_gguf(path);
  const ModelConfig& c = g->config;
  EXPECT(c.name == m.cfg.name && c.architecture == "llama" && c.format == "gguf");
  EXPECT(c.C == 32 && c.L == 2 && c.NH == 4 && c.NKV == 2 && c.HS == 8 && c.HD == 64 && c.V == m.cfg.V);
  EXPECT(c.max_context == 128 && c.rms_eps == 1e-5f && c.rope_theta == 10000.0f && c.rope_dims == 8);
  EXPECT(c.rope_layout == RopeLayout::Interleaved && c.tied_output == tied);
  EXPECT(same_tokenizer(g->tokenizer.data(), d));
  const std::string probe = "The cat saw the big tree. Zo\xC3\xAB!";
  EXPECT(g->tokenizer.encode(probe, true, true) == Tokenizer(d).encode(probe, true, true));

  std::string label = std::string(dtype_name(t)) + (tied ? " tied" : " untied");
  check_matrix((label + " token_embd").c_str(), g->weights.tok_embd, m.w.tok_embd, t);
  for (int l = 0; l < 2; l++) {
    const LayerWeights& a = g->weights.layers[(size_t)l];
    const LayerWeights& b = m.w.layers[(size_t)l];
    const std::string p = label + " blk." + std::to_string(l) + ".";
    check_vector(a.attn_norm, b.attn_norm, 32);
    check_vector(a.ffn_norm, b.ffn_norm, 32);
    check_matrix((p + "attn_q").c_str(), a.wq, b.wq, t);
    check_matrix((p + "attn_k").c_str(), a.wk, b.wk, t);
    check_matrix((p + "attn_v").c_str(), a.wv, b.wv, t);
    check_matrix((p + "attn_output").c_str(), a.wo, b.wo, t);
    check_matrix((p + "ffn_gate").c_str(), a.w_gate, b.w_gate, t);
    check_matrix((p + "ffn_up").c_str(), a.w_up, b.w_up, t);
    check_matrix((p + "ffn_down").c_str(), a.w_down, b.w_down, t);
  }
  check_vector(g->weights.output_norm, m.w.output_norm, 32);
  if (!tied) check_matrix((label + " output").c_str(), g->weights.output, m.w.output, t);
  EXPECT(tied ? g->weights.output.data == g->weights.tok_embd.data : g->weights.output.data != g->weights.tok_embd.data);
}

void test_gguf_errors(const test::TempDir& tmp, const TokenizerData& d) {
  TinyModel m((int)d.pieces.size(), false, 3);
  const std::vector<GgufTensorOut> tensors = model_tensors_for_gguf(m.w, m.cfg);
  EXPECT_THROWS_CODE(write_gguf(tmp.file("no/such/dir/x.gguf"), m.cfg, d, tensors), ErrorCode::NotFound);
  ModelConfig c = m.cfg;
  c.V = 100;
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), c, d, tensors), ErrorCode::InvalidArg);
  c = m.cfg;
  c.rope_layout = RopeLayout::HalfSplit;
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), c, d, tensors), ErrorCode::Unsupported);
  c = m.cfg;
  c.NKV = 3;
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), c, d, tensors), ErrorCode::InvalidArg);
  std::vector<GgufTensorOut> dup = tensors;
  dup.push_back(tensors[0]);
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), m.cfg, d, dup), ErrorCode::InvalidArg);
  // Block types need whole blocks per row: this model's rows of 32 values cannot be Q4_K (256).
  std::vector<GgufTensorOut> q4k = tensors;
  q4k[0].dtype = DType::Q4_K;
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), m.cfg, d, q4k), ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(write_gguf(tmp.file("x.gguf"), m.cfg, d, model_tensors_for_gguf(m.w, m.cfg, DType::Q6_K)),
                     ErrorCode::InvalidArg);
  EXPECT(!test::file_exists(tmp.file("x.gguf")) && !test::file_exists(tmp.file("x.gguf.tmp")));
}

// The shared stories260K GGUF, re-written by write_gguf, loads back with the same tokenizer, encodings
// and weights (skipped when the asset is absent).
void test_rewrite_stories(const test::TempDir& tmp) {
  const std::string src = test::shared_dir() + "/models/stories260K/stories260K.gguf";
  if (!test::file_exists(src)) {
    std::printf("stories260K.gguf not found: skipping the re-write check\n");
    return;
  }
  const std::unique_ptr<Model> a = load_gguf(src);
  const std::string path = tmp.file("stories.gguf");
  write_gguf(path, a->config, a->tokenizer.data(), model_tensors_for_gguf(a->weights, a->config));
  const std::unique_ptr<Model> b = load_gguf(path);
  EXPECT(same_tokenizer(a->tokenizer.data(), b->tokenizer.data()));
  EXPECT(b->config.C == a->config.C && b->config.L == a->config.L && b->config.HD == a->config.HD &&
         b->config.NKV == a->config.NKV && b->config.tied_output == a->config.tied_output);
  for (const char* p : {"Once upon a time", "Lily and Tom", "The cat"}) {
    EXPECT(a->tokenizer.encode(p, true, true) == b->tokenizer.encode(p, true, true));
  }
  EXPECT(std::memcmp(a->weights.tok_embd.data, b->weights.tok_embd.data, a->weights.tok_embd.bytes()) == 0);
  EXPECT(std::memcmp(a->weights.layers[4].w_down.data, b->weights.layers[4].w_down.data,
                     a->weights.layers[4].w_down.bytes()) == 0);
}

}  // namespace

int main() {
  try {
    const std::string text = english_text(42, 120);
    const TokenizerData d = train_bpe_tokenizer(text, 512);
    test_layout_and_round_trip(text, d);
    EXPECT(same_tokenizer(train_bpe_tokenizer(text, 512), d));  // deterministic
    test_small_exact();
    test_options_and_errors(text);

    test::TempDir tmp("chimera_test_bpe_gguf_");
    round_trip_model(tmp, d, false, DType::F32);
    round_trip_model(tmp, d, true, DType::F16);
    round_trip_model(tmp, d, false, DType::BF16);
    round_trip_model(tmp, d, false, DType::Q8_0);
    round_trip_model(tmp, d, true, DType::Q4_0);
    test_gguf_errors(tmp, d);
    test_rewrite_stories(tmp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    test::failures()++;
  }
  return test::finish("test_bpe_gguf");
}
