// ctest: the model loaders. The real stories260K model in both its GGUF and llama2.c forms (same config,
// bit-identical weights, tokenizer basics), synthetic GGUFs in every computable dtype, and hostile
// inputs: truncations, corrupted counts / lengths / offsets / types and random byte flips, each of which
// must end in a chimera::Error and never in a crash (run under ASan/valgrind to prove no stray reads).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>

#include "check.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "gguf_builder.h"
#include "model/model.h"

using namespace chimera;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b, size_t n = SIZE_MAX) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)std::min(n, b.size()));
}

void put_le(std::vector<uint8_t>& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) b[at + i] = (uint8_t)(v >> (8 * i));
}

size_t find_text(const std::vector<uint8_t>& hay, const std::string& needle) {
  const auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  return it == hay.end() ? SIZE_MAX : (size_t)(it - hay.begin());
}

// `load` must throw a chimera::Error: with `code` when given, else any of the loader codes.
void expect_rejected(const std::string& label, const std::function<void()>& load, int code = -1) {
  try {
    load();
    std::fprintf(stderr, "%s: loaded, expected an error\n", label.c_str());
    test::failures()++;
  } catch (const Error& e) {
    if (std::getenv("CHIMERA_TEST_VERBOSE")) std::printf("%-32s -> %s: %s\n", label.c_str(), error_code_name(e.code()), e.what());
    const bool loader_code =
        e.code() == ErrorCode::Format || e.code() == ErrorCode::Unsupported || e.code() == ErrorCode::Tensor;
    if (code >= 0 ? (int)e.code() != code : !loader_code) {
      std::fprintf(stderr, "%s: wrong code %s: %s\n", label.c_str(), error_code_name(e.code()), e.what());
      test::failures()++;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: non-chimera exception: %s\n", label.c_str(), e.what());
    test::failures()++;
  }
}

bool same_bytes(const void* a, const void* b, size_t n) { return a && b && std::memcmp(a, b, n) == 0; }

}  // namespace

static void test_real_models(const std::string& gguf, const std::string& bin, const std::string& tok) {
  const auto g = load_gguf(gguf);
  const auto b = load_llama2c(bin, tok);
  for (const Model* m : {g.get(), b.get()}) {
    const ModelConfig& c = m->config;
    EXPECT(c.C == 64 && c.L == 5 && c.NH == 8 && c.NKV == 4 && c.HS == 8 && c.HD == 172 && c.V == 512);
    EXPECT(c.max_context == 512 && c.rope_dims == 8 && c.rope_layout == RopeLayout::Interleaved);
    EXPECT(std::fabs(c.rms_eps - 1e-5f) < 1e-9f && c.rope_theta == 10000.0f);
    EXPECT(c.tied_output && m->weights.output.data == m->weights.tok_embd.data);
    EXPECT(m->weight_bytes() == 260032u * 4);  // README: 264,128 floats minus the two 512x4 RoPE tables
    const TokenizerData& t = m->tokenizer.data();
    EXPECT(t.pieces.size() == 512 && t.bos == 1 && t.eos == 2 && t.unk == 0 && t.add_bos && t.add_space_prefix);
    EXPECT(t.pieces[0] == "<unk>" && t.types[0] == TokenType::Unknown);
    EXPECT(t.types[1] == TokenType::Control && t.types[2] == TokenType::Control);
    EXPECT(t.pieces[3] == "<0x00>" && t.types[3] == TokenType::Byte && t.pieces[258] == "<0xFF>");
    EXPECT(t.pieces[410] == " " && t.types[410] == TokenType::Normal && t.scores[410] == 259.0f - 410);
  }
  EXPECT(g->config.format == "gguf" && b->config.format == "llama2c");
  EXPECT(g->tokenizer.data().pieces[1] == "<s>" && b->tokenizer.data().pieces[1] == "\n<s>\n");
  EXPECT(g->tokenizer.data().scores == b->tokenizer.data().scores);
  // Both files carry the same float32 weights, so every view must hold identical bytes.
  const ModelWeights &gw = g->weights, &bw = b->weights;
  EXPECT(same_bytes(gw.tok_embd.data, bw.tok_embd.data, bw.tok_embd.bytes()));
  for (int l = 0; l < 5; l++) {
    const LayerWeights &x = gw.layers[l], &y = bw.layers[l];
    for (const auto& p : {std::make_pair(&x.wq, &y.wq), std::make_pair(&x.wk, &y.wk), std::make_pair(&x.wv, &y.wv),
                          std::make_pair(&x.wo, &y.wo), std::make_pair(&x.w_gate, &y.w_gate),
                          std::make_pair(&x.w_up, &y.w_up), std::make_pair(&x.w_down, &y.w_down)}) {
      EXPECT(p.first->rows == p.second->rows && same_bytes(p.first->data, p.second->data, p.second->bytes()));
    }
    EXPECT(same_bytes(x.attn_norm, y.attn_norm, 64 * 4) && same_bytes(x.ffn_norm, y.ffn_norm, 64 * 4));
  }
  EXPECT(same_bytes(gw.output_norm, bw.output_norm, 64 * 4));
  // validate_weights names the tensor and both shapes.
  ModelWeights broken = gw;
  broken.layers[3].wq.cols = 32;
  try {
    validate_weights(g->config, broken);
    EXPECT(false);
  } catch (const Error& e) {
    EXPECT(e.code() == ErrorCode::Tensor && std::string(e.what()).find("tensor blk.3.attn_q.weight: expected 64x64, "
                                                                       "file has 64x32") != std::string::npos);
  }
}

static void test_dispatch(const std::string& gguf, const std::string& bin, const std::string& tok, const test::TempDir& tmp) {
  LoadOptions opts;
  EXPECT(load_model(gguf, opts)->config.format == "gguf");
  EXPECT_THROWS_CODE(load_model(bin, opts), ErrorCode::InvalidArg);
  opts.tokenizer_path = tok;
  EXPECT(load_model(bin, opts)->config.format == "llama2c");
  EXPECT_THROWS_CODE(load_model(tmp.file("nope.gguf"), opts), ErrorCode::NotFound);
  EXPECT_THROWS_CODE(load_gguf(tmp.file("nope.gguf")), ErrorCode::NotFound);
  EXPECT_THROWS_CODE(load_llama2c(bin, tmp.file("nope.bin")), ErrorCode::NotFound);
  EXPECT_THROWS_CODE(load_hf_dir(tmp.path.string()), ErrorCode::NotFound);  // no config.json
  write_bytes(tmp.file("empty.gguf"), {});
  EXPECT_THROWS_CODE(load_gguf(tmp.file("empty.gguf")), ErrorCode::Format);
}

static void test_truncated_gguf(const std::string& gguf, const test::TempDir& tmp) {
  const std::vector<uint8_t> bytes = read_bytes(gguf);
  const std::string path = tmp.file("truncated.gguf");
  std::vector<size_t> cuts;
  for (size_t n = 1; n < 20000; n += 997) cuts.push_back(n);
  for (size_t n : {bytes.size() / 2, bytes.size() - 4096, bytes.size() - 100, bytes.size() - 1}) cuts.push_back(n);
  for (size_t n : cuts) {
    write_bytes(path, bytes, n);
    expect_rejected("gguf truncated to " + std::to_string(n), [&] { load_gguf(path); }, (int)ErrorCode::Format);
  }
}

// Offsets of fields in the real GGUF, found from the key and tensor-name strings around them.
struct GgufFields {
  size_t arch_len, tokens_count, tok_model_value, embd_ndims;
};

static GgufFields locate_fields(const std::vector<uint8_t>& b) {
  GgufFields f;
  const std::string arch = "general.architecture", tokens = "tokenizer.ggml.tokens", model = "tokenizer.ggml.model";
  f.arch_len = find_text(b, arch) + arch.size() + 4;                // after the type tag: u64 length
  f.tokens_count = find_text(b, tokens) + tokens.size() + 8;        // after type + element type: u64 count
  f.tok_model_value = find_text(b, model) + model.size() + 4 + 8;  // the string's bytes
  f.embd_ndims = find_text(b, "token_embd.weight") + 17;            // u32 n_dims, 2 x u64 ne, u32 type, u64 offset
  return f;
}

static void test_corrupted_gguf(const std::string& gguf, const test::TempDir& tmp) {
  const std::vector<uint8_t> orig = read_bytes(gguf);
  const GgufFields f = locate_fields(orig);
  EXPECT(f.embd_ndims < 20000 && orig[f.embd_ndims] == 2);
  const std::string path = tmp.file("corrupt.gguf");
  const auto check = [&](const std::string& label, size_t at, uint64_t v, int bytes, ErrorCode code) {
    std::vector<uint8_t> b = orig;
    put_le(b, at, v, bytes);
    write_bytes(path, b);
    expect_rejected(label, [&] { load_gguf(path); }, (int)code);
  };
  const size_t ne0 = f.embd_ndims + 4, type = f.embd_ndims + 20, offset = f.embd_ndims + 24;
  check("bad magic", 0, 0x46554746, 4, ErrorCode::Format);
  check("version 1", 4, 1, 4, ErrorCode::Unsupported);
  check("version 4", 4, 4, 4, ErrorCode::Unsupported);
  check("big-endian version", 4, 0x03000000, 4, ErrorCode::Unsupported);
  check("huge tensor count", 8, 0xFFFFFFFFFFFFull, 8, ErrorCode::Format);
  check("tensor count +1", 8, orig[8] + 1, 1, ErrorCode::Format);
  check("huge kv count", 16, 0xFFFFFFFFFFFFull, 8, ErrorCode::Format);
  check("huge first key length", 24, 0xFFFFFFFFFFFFull, 8, ErrorCode::Format);
  check("huge string length", f.arch_len, 0xFFFFFFFFFFFFull, 8, ErrorCode::Format);
  check("huge token count", f.tokens_count, 0xFFFFFFFFFFFFull, 8, ErrorCode::Format);
  check("token count +1", f.tokens_count, 513, 8, ErrorCode::Format);
  check("architecture llamb", f.arch_len + 8 + 4, 'b', 1, ErrorCode::Unsupported);
  check("tokenizer model xlama", f.tok_model_value, 'x', 1, ErrorCode::Unsupported);
  check("n_dims 9", f.embd_ndims, 9, 4, ErrorCode::Format);
  check("n_dims 0", f.embd_ndims, 0, 4, ErrorCode::Format);
  check("ne overflow", ne0, 0x4000000000000000ull, 8, ErrorCode::Format);
  check("ne zero", ne0, 0, 8, ErrorCode::Format);
  check("wrong shape", ne0, 32, 8, ErrorCode::Tensor);
  check("unknown type", type, 1000, 4, ErrorCode::Unsupported);
  check("Q5_0 type (not computed)", type, test::kGgmlQ5_0, 4, ErrorCode::Unsupported);
  check("offset beyond the end", offset, 0x7FFFFFFFFFFFFFE0ull, 8, ErrorCode::Format);
  check("offset at the end", offset, orig.size() / 32 * 32, 8, ErrorCode::Format);
  check("misaligned offset", offset, 4, 8, ErrorCode::Format);
}

// Random byte flips in the metadata and tensor infos: the load may succeed (a flipped score) or throw a
// chimera::Error of any code (the tokenizer has its own checks), but nothing else.
static void test_fuzzed_gguf(const std::string& gguf, const test::TempDir& tmp) {
  const std::vector<uint8_t> orig = read_bytes(gguf);
  const size_t meta_end = std::min<size_t>(orig.size(), locate_fields(orig).embd_ndims + 4096);
  const std::string path = tmp.file("fuzz.gguf");
  test::Rng rng(7);
  int rejected = 0;
  for (int iter = 0; iter < 300; iter++) {
    std::vector<uint8_t> b = orig;
    for (int k = 0, n = 1 + rng.below(4); k < n; k++) b[(size_t)rng.below((int)meta_end)] ^= (uint8_t)(1 + rng.below(255));
    write_bytes(path, b);
    try {
      load_gguf(path);
    } catch (const Error&) {
      rejected++;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz %d: non-chimera exception: %s\n", iter, e.what());
      test::failures()++;
    }
  }
  std::printf("fuzzed gguf: %d of 300 mutated files rejected, the rest loaded\n", rejected);
  EXPECT(rejected > 0);
}

static void test_bad_llama2c(const std::string& bin, const std::string& tok, const test::TempDir& tmp) {
  const std::vector<uint8_t> orig = read_bytes(bin), tok_bytes = read_bytes(tok);
  const std::string path = tmp.file("bad.bin"), tpath = tmp.file("bad_tok.bin");
  for (size_t n : {(size_t)3, (size_t)27, (size_t)28, (size_t)1000, orig.size() / 2, orig.size() - 4, orig.size() - 1}) {
    write_bytes(path, orig, n);
    expect_rejected("bin truncated to " + std::to_string(n), [&] { load_llama2c(path, tok); }, (int)ErrorCode::Format);
  }
  std::vector<uint8_t> longer = orig;
  longer.resize(orig.size() + 4, 0);
  write_bytes(path, longer);
  expect_rejected("bin with extra bytes", [&] { load_llama2c(path, tok); }, (int)ErrorCode::Format);
  for (const auto& field : {std::make_pair(0, -64), std::make_pair(0, 0), std::make_pair(3, 7), std::make_pair(5, INT32_MIN),
                            std::make_pair(6, 0), std::make_pair(0, 0x7FFFFFFF), std::make_pair(2, 0x7FFFFFFF)}) {
    std::vector<uint8_t> b = orig;
    put_le(b, 4 * (size_t)field.first, (uint32_t)field.second, 4);
    write_bytes(path, b);
    expect_rejected("bin header field " + std::to_string(field.first) + " = " + std::to_string(field.second),
                    [&] { load_llama2c(path, tok); });
  }
  for (size_t n : {(size_t)2, (size_t)4, (size_t)100, tok_bytes.size() - 1}) {
    write_bytes(tpath, tok_bytes, n);
    expect_rejected("tokenizer truncated to " + std::to_string(n), [&] { load_llama2c(bin, tpath); },
                    (int)ErrorCode::Format);
  }
  std::vector<uint8_t> t = tok_bytes;
  put_le(t, 4 + 4, 0xFFFFFFF0u, 4);  // length of token 0 negative
  write_bytes(tpath, t);
  expect_rejected("tokenizer negative length", [&] { read_llama2c_tokenizer(tpath, 512); }, (int)ErrorCode::Format);
  put_le(t, 4 + 4, 5000, 4);
  write_bytes(tpath, t);
  expect_rejected("tokenizer long piece", [&] { read_llama2c_tokenizer(tpath, 512); }, (int)ErrorCode::Format);
  expect_rejected("tokenizer for another vocab", [&] { read_llama2c_tokenizer(tok, 500); }, (int)ErrorCode::Format);
  write_bytes(tpath, {'a', 'k', '4', '2', 1, 0, 0, 0});
  expect_rejected("export v1 header", [&] { load_llama2c(tpath, tok); }, (int)ErrorCode::Unsupported);
}

// ---- synthetic GGUFs: dtypes, tied output, alignment, version 2 ----

namespace {

constexpr int kC = 32, kL = 2, kNH = 4, kNKV = 2, kHD = 64;


struct TinyGguf {
  std::vector<uint8_t> bytes;
  std::vector<float> embd;  // (V, C) source values
};

TinyGguf make_tiny_gguf(uint32_t type, bool tied, uint64_t alignment, uint32_t version) {
  test::GgufBuilder g;
  g.version = version;
  g.alignment = alignment;
  const std::vector<std::string> pieces = test::tiny_sentencepiece_pieces();
  const int V = (int)pieces.size();
  g.kv_string("general.architecture", "llama");
  if (alignment != 32) g.kv_u32("general.alignment", (uint32_t)alignment);
  g.kv_u32("llama.embedding_length", kC);
  g.kv_u32("llama.block_count", kL);
  g.kv_u32("llama.feed_forward_length", kHD);
  g.kv_u32("llama.attention.head_count", kNH);
  g.kv_u32("llama.attention.head_count_kv", kNKV);
  g.kv_u32("llama.context_length", 128);
  g.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  g.kv_string("tokenizer.ggml.model", "llama");
  g.kv_strings("tokenizer.ggml.tokens", pieces);
  std::vector<int32_t> types(V, 1);
  types[0] = 2, types[1] = types[2] = 3;
  for (int i = 3; i < 259; i++) types[i] = 6;
  g.kv_i32s("tokenizer.ggml.token_type", types);
  g.kv_f32s("tokenizer.ggml.scores", std::vector<float>(V, 0.0f));
  g.kv_bool("tokenizer.ggml.add_space_prefix", false);
  test::Rng rng(3);
  TinyGguf out;
  const auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols, std::vector<float>* keep = nullptr) {
    std::vector<float> v = test::random_floats(rng, rows * cols, -0.5f, 0.5f);
    g.tensor(name, {cols, rows}, type, test::encode_floats(type, v));
    if (keep) *keep = v;
  };
  const auto norm = [&](const std::string& name) {
    g.tensor(name, {kC}, test::kGgmlF32, test::encode_floats(test::kGgmlF32, test::random_floats(rng, kC, 0.5f, 1.5f)));
  };
  matrix("token_embd.weight", V, kC, &out.embd);
  for (int l = 0; l < kL; l++) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    matrix(p + "attn_q.weight", kC, kC);
    matrix(p + "attn_k.weight", kC / kNH * kNKV, kC);
    matrix(p + "attn_v.weight", kC / kNH * kNKV, kC);
    matrix(p + "attn_output.weight", kC, kC);
    norm(p + "ffn_norm.weight");
    matrix(p + "ffn_gate.weight", kHD, kC);
    matrix(p + "ffn_up.weight", kHD, kC);
    matrix(p + "ffn_down.weight", kC, kHD);
  }
  norm("output_norm.weight");
  if (!tied) matrix("output.weight", V, kC);
  out.bytes = g.build();
  return out;
}

}  // namespace

static void test_synthetic_gguf(const test::TempDir& tmp) {
  const std::string path = tmp.file("tiny.gguf");
  struct Case { uint32_t type; DType dtype; float tol; bool tied; uint64_t align; uint32_t version; };
  const Case cases[] = {{test::kGgmlF32, DType::F32, 0, false, 32, 3},     {test::kGgmlF16, DType::F16, 2e-4f, true, 32, 3},
                        {test::kGgmlBF16, DType::BF16, 2e-3f, false, 64, 2}, {test::kGgmlQ8_0, DType::Q8_0, 3e-3f, true, 32, 3},
                        {test::kGgmlF32, DType::F32, 0, true, 1, 3}};
  for (const Case& c : cases) {
    const TinyGguf t = make_tiny_gguf(c.type, c.tied, c.align, c.version);
    write_bytes(path, t.bytes);
    const auto m = load_gguf(path);
    const ModelWeights& w = m->weights;
    EXPECT(m->config.C == kC && m->config.HD == kHD && m->config.V == 264 && m->config.tied_output == c.tied);
    EXPECT(w.tok_embd.dtype == c.dtype && w.layers[1].w_down.dtype == c.dtype && (w.output.data == w.tok_embd.data) == c.tied);
    EXPECT(!m->tokenizer.data().add_space_prefix && m->tokenizer.data().pieces[259] == " ");
    std::vector<float> row(kC);
    float worst = 0;
    for (int r = 0; r < 264; r++) {
      row_to_f32(w.tok_embd.dtype, w.tok_embd.row(r), row.data(), kC);
      for (int i = 0; i < kC; i++) worst = std::fmax(worst, std::fabs(row[i] - t.embd[(size_t)r * kC + i]));
    }
    std::printf("synthetic gguf %-5s align %-3d v%u tied=%d: embedding max |err| %.2e (tol %.1e), owned %zu B\n",
                dtype_name(c.dtype), (int)c.align, c.version, c.tied, worst, c.tol, m->storage.owned_bytes);
    EXPECT(worst <= c.tol);
    // Alignment 1 puts F32 data at odd addresses: it must be copied, everything else stays mapped.
    const size_t norms_bytes = (2 * kL + 1) * kC * 4;
    EXPECT(c.align == 1 ? m->storage.owned_bytes > norms_bytes : m->storage.owned_bytes == norms_bytes);
  }
  // Bad alignment key, and a GGUF without tokenizer.
  test::GgufBuilder g;
  g.kv_string("general.architecture", "llama");
  g.kv_u32("general.alignment", 24);
  write_bytes(path, g.build());
  EXPECT_THROWS_CODE(load_gguf(path), ErrorCode::Format);
  test::GgufBuilder h;
  h.kv_string("general.architecture", "gpt2");
  write_bytes(path, h.build());
  EXPECT_THROWS_CODE(load_gguf(path), ErrorCode::Unsupported);
}

static void test_validate_config() {
  ModelConfig c;
  c.C = 64, c.L = 2, c.NH = 8, c.NKV = 4, c.HS = 8, c.HD = 128, c.V = 300, c.max_context = 256, c.rope_dims = 8;
  validate_config(c);
  ModelConfig bad = c;
  bad.NKV = 3;
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Format);
  bad = c, bad.HS = 7;  // odd head size (one that differs from C / NH is fine: qwen3)
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Unsupported);
  bad = c, bad.rope_freq_factors = {1.f, 2.f};  // rope_dims / 2 = 4 pairs
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Format);
  bad = c, bad.rope_dims = 7;
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Format);
  bad = c, bad.rms_eps = 0;
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Format);
  bad = c, bad.V = 0;
  EXPECT_THROWS_CODE(validate_config(bad), ErrorCode::Format);
}

// MappedFile::drop_pages: a range inside the mapping (unaligned ends, whole pages inside) is dropped and
// reads back unchanged; ranges outside it are refused.
void test_drop_pages(test::TempDir& tmp) {
  const std::string path = tmp.file("pages.bin");
  std::vector<uint8_t> bytes((size_t)3 * 1024 * 1024 + 123);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = (uint8_t)(i * 131 + (i >> 12));
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  }
  const auto f = MappedFile::open(path);
  f->prefault();
  EXPECT(f->drop_pages(f->data() + 1000, 2 * 1024 * 1024 + 77));
  EXPECT(f->drop_pages(f->data(), f->size()));
  EXPECT(std::memcmp(f->data(), bytes.data(), bytes.size()) == 0);
  EXPECT(!f->drop_pages(f->data() + 1, f->size()));
  EXPECT(!f->drop_pages(bytes.data(), 16));
  EXPECT(!f->drop_pages(nullptr, 0));
}

int main() {
  test::TempDir tmp("chimera_test_loaders_");
  test_drop_pages(tmp);
  test_validate_config();
  test_synthetic_gguf(tmp);
  const std::string dir = test::shared_dir() + "/models/stories260K/";
  const std::string gguf = dir + "stories260K.gguf", bin = dir + "stories260K.bin", tok = dir + "tok512.bin";
  if (test::file_exists(gguf) && test::file_exists(bin) && test::file_exists(tok)) {
    test_real_models(gguf, bin, tok);
    test_dispatch(gguf, bin, tok, tmp);
    test_truncated_gguf(gguf, tmp);
    test_corrupted_gguf(gguf, tmp);
    test_fuzzed_gguf(gguf, tmp);
    test_bad_llama2c(bin, tok, tmp);
  } else {
    std::printf("SKIP real-model checks: %s lacks stories260K (set CHIMERA_SHARED_DIR)\n", dir.c_str());
  }
  return test::finish("test_loaders");
}
