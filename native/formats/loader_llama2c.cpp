// llama2.c "legacy" (version 0) checkpoints and their tokenizer.bin. The checkpoint is a 7-int header
// followed by flat F32 arrays with the layer as the outermost dimension of each tensor type; the weights
// are used in place from the mapping.
#include <cstring>
#include <filesystem>

#include "common/checked_math.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "model/model.h"
#include "tokenizer/piece_text.h"

namespace chimera {

namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

Llama2cHeader read_header(ByteReader& r, const std::string& path) {
  const uint8_t* p = r.take(4);
  // Newer llama2.c exports (version 1, 2) start with the magic "ak42"; only the legacy layout is read.
  CHIMERA_CHECK(std::memcmp(p, "24ka", 4) != 0 && std::memcmp(p, "ak42", 4) != 0, ErrorCode::Unsupported, path,
                ": llama2.c export versions 1 and 2 (\"ak42\" header) are not supported; export with --version 0");
  r.seek(0);
  Llama2cHeader h;
  h.dim = r.i32();
  h.hidden_dim = r.i32();
  h.n_layers = r.i32();
  h.n_heads = r.i32();
  h.n_kv_heads = r.i32();
  h.vocab_size = r.i32();
  h.seq_len = r.i32();
  CHIMERA_CHECK(h.dim > 0 && h.hidden_dim > 0 && h.n_layers > 0 && h.n_heads > 0 && h.n_kv_heads > 0 &&
                    h.vocab_size != 0 && h.vocab_size != INT32_MIN && h.seq_len > 0,
                ErrorCode::Format, path, ": not a llama2.c checkpoint (header dim=", h.dim, " hidden=", h.hidden_dim,
                " layers=", h.n_layers, " heads=", h.n_heads, " kv_heads=", h.n_kv_heads, " vocab=", h.vocab_size,
                " seq_len=", h.seq_len, ")");
  CHIMERA_CHECK(h.dim % h.n_heads == 0, ErrorCode::Format, path, ": dim ", h.dim, " is not a multiple of n_heads ",
                h.n_heads);
  return h;
}

// Element offset bookkeeping over the flat float array that follows the header.
class Sections {
 public:
  // Reserves `count` floats and returns the float index where they start.
  uint64_t take(uint64_t a, uint64_t b = 1, uint64_t c = 1) {
    uint64_t n = 0;
    ok_ = ok_ && checked_mul(a, b, &n) && checked_mul(n, c, &n);
    const uint64_t at = next_;
    ok_ = ok_ && checked_add(next_, n, &next_);
    return at;
  }
  bool ok() const { return ok_; }
  uint64_t total() const { return next_; }

 private:
  uint64_t next_ = 0;
  bool ok_ = true;
};

ModelConfig config_from(const Llama2cHeader& h, const std::string& path) {
  ModelConfig cfg;
  cfg.architecture = "llama";
  cfg.name = std::filesystem::path(path).stem().string();
  cfg.format = "llama2c";
  cfg.C = h.dim;
  cfg.HD = h.hidden_dim;
  cfg.L = h.n_layers;
  cfg.NH = h.n_heads;
  cfg.NKV = h.n_kv_heads;
  cfg.V = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  cfg.max_context = h.seq_len;
  cfg.HS = h.dim / h.n_heads;
  cfg.rope_dims = cfg.HS;
  cfg.rms_eps = 1e-5f;
  cfg.rope_theta = 10000.0f;
  cfg.rope_layout = RopeLayout::Interleaved;
  cfg.tied_output = h.vocab_size > 0;
  return cfg;
}

TensorView f32_matrix(const float* base, uint64_t at, int64_t rows, int64_t cols) {
  TensorView t;
  t.dtype = DType::F32;
  t.data = base + at;
  t.rows = rows;
  t.cols = cols;
  return t;
}

const float* owned_norm(WeightStorage& st, const float* src, int64_t n) {
  float* out = st.alloc_f32((size_t)n);
  std::memcpy(out, src, (size_t)n * sizeof(float));
  return out;
}

}  // namespace

std::unique_ptr<Model> load_llama2c(const std::string& path, const std::string& tokenizer_path) {
  auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);
  const Llama2cHeader h = read_header(r, path);
  auto m = std::make_unique<Model>();
  m->path = path;
  m->config = config_from(h, path);
  const ModelConfig& cfg = m->config;
  validate_config(cfg);
  const uint64_t C = cfg.C, HD = cfg.HD, L = cfg.L, V = cfg.V, KVD = (uint64_t)cfg.KVD();
  Sections s;  // in file order
  const uint64_t emb = s.take(V, C), att_norm = s.take(L, C), wq = s.take(L, C, C), wk = s.take(L, KVD, C),
                 wv = s.take(L, KVD, C), wo = s.take(L, C, C), ffn_norm = s.take(L, C), w1 = s.take(L, HD, C),
                 w2 = s.take(L, C, HD), w3 = s.take(L, HD, C), out_norm = s.take(C);
  s.take(2, (uint64_t)h.seq_len, (uint64_t)(cfg.HS / 2));  // obsolete RoPE tables (cos, sin)
  const uint64_t cls = cfg.tied_output ? emb : s.take(V, C);
  uint64_t expected = 0;
  CHIMERA_CHECK(s.ok() && checked_mul(s.total(), 4, &expected) && checked_add(expected, 28, &expected),
                ErrorCode::Format, path, ": the header describes an impossibly large model");
  CHIMERA_CHECK(file->size() >= expected, ErrorCode::Format, path, ": truncated: the header needs ", expected,
                " bytes, the file has ", file->size());
  CHIMERA_CHECK(file->size() == expected, ErrorCode::Format, path, ": ", file->size() - expected,
                " unexpected bytes after the weights (expected exactly ", expected,
                "); is this a llama2.c version-0 checkpoint?");

  const float* base = reinterpret_cast<const float*>(file->data() + 28);  // page-aligned mapping + 28
  ModelWeights& w = m->weights;
  WeightStorage& st = m->storage;
  st.mapped_files.push_back(file);
  w.tok_embd = f32_matrix(base, emb, cfg.V, cfg.C);  // (V, C)
  w.layers.resize((size_t)L);
  for (uint64_t l = 0; l < L; l++) {
    LayerWeights& lw = w.layers[(size_t)l];
    lw.attn_norm = owned_norm(st, base + att_norm + l * C, cfg.C);
    lw.wq = f32_matrix(base, wq + l * C * C, cfg.C, cfg.C);          // (NH*HS, C)
    lw.wk = f32_matrix(base, wk + l * KVD * C, cfg.KVD(), cfg.C);    // (KVD, C)
    lw.wv = f32_matrix(base, wv + l * KVD * C, cfg.KVD(), cfg.C);    // (KVD, C)
    lw.wo = f32_matrix(base, wo + l * C * C, cfg.C, cfg.C);          // (C, NH*HS)
    lw.ffn_norm = owned_norm(st, base + ffn_norm + l * C, cfg.C);
    lw.w_gate = f32_matrix(base, w1 + l * HD * C, cfg.HD, cfg.C);    // (HD, C)
    lw.w_down = f32_matrix(base, w2 + l * C * HD, cfg.C, cfg.HD);    // (C, HD)
    lw.w_up = f32_matrix(base, w3 + l * HD * C, cfg.HD, cfg.C);      // (HD, C)
  }
  w.output_norm = owned_norm(st, base + out_norm, cfg.C);
  w.output = f32_matrix(base, cls, cfg.V, cfg.C);  // (V, C)
  st.mapped_bytes += 4 * (V * C * (cfg.tied_output ? 1 : 2) + L * (2 * C * C + 2 * KVD * C + 3 * HD * C));
  validate_weights(cfg, w);
  m->tokenizer = Tokenizer(read_llama2c_tokenizer(tokenizer_path, cfg.V));
  return m;
}

TokenizerData read_llama2c_tokenizer(const std::string& path, int vocab_size) {
  constexpr int32_t kMaxPieceBytes = 1024;
  CHIMERA_CHECK(vocab_size > 0, ErrorCode::InvalidArg, "tokenizer vocabulary size must be positive, got ", vocab_size);
  auto file = MappedFile::open(path);
  ByteReader r(file->data(), file->size(), path);
  const int32_t max_len = r.i32();
  CHIMERA_CHECK(max_len >= 0 && max_len <= kMaxPieceBytes, ErrorCode::Format, path,
                ": not a llama2.c tokenizer (max_token_length ", max_len, ")");
  TokenizerData d;
  d.pieces.reserve((size_t)vocab_size);
  for (int i = 0; i < vocab_size; i++) {
    d.scores.push_back(r.f32());
    const int32_t len = r.i32();
    if (len < 0 || len > kMaxPieceBytes) {
      r.fail("token " + std::to_string(i) + " has length " + std::to_string(len) + " (0.." +
             std::to_string(kMaxPieceBytes) + " allowed)");
    }
    const uint8_t* p = r.take((size_t)len);
    d.pieces.emplace_back(reinterpret_cast<const char*>(p), (size_t)len);
  }
  CHIMERA_CHECK(r.remaining() == 0, ErrorCode::Format, path, ": ", r.remaining(), " bytes left after ", vocab_size,
                " tokens; is this the tokenizer for a model with a different vocabulary size?");
  d.types.assign((size_t)vocab_size, TokenType::Normal);
  for (int i = 0; i < vocab_size; i++) {
    if (is_byte_piece(d.pieces[(size_t)i])) d.types[(size_t)i] = TokenType::Byte;
  }
  if (d.pieces[0] == "<unk>") d.types[0] = TokenType::Unknown;
  // The export wraps BOS/EOS in newlines ("\n<s>\n"); they are control tokens whatever their text.
  if (vocab_size > 1) d.types[1] = TokenType::Control;
  if (vocab_size > 2) d.types[2] = TokenType::Control;
  d.unk = 0;
  d.bos = vocab_size > 1 ? 1 : -1;
  d.eos = vocab_size > 2 ? 2 : -1;
  d.add_bos = true;
  d.add_space_prefix = true;
  d.model = "llama";
  return d;
}

}  // namespace chimera
