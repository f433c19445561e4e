// Draft model creation (paper initialisation), safetensors load/save and the base-model check.
#include "spec/draft_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "common/error.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "model/layer_tensors.h"
#include "model/weight_import.h"
#include "sampling/sampler.h"

namespace chimera {

namespace {

std::string head_name(int k) { return "heads." + std::to_string(k) + ".weight"; }

int round_up(int x, int m) { return (x + m - 1) / m * m; }

}  // namespace

DraftConfig draft_config_for(const Model& base, const DraftShape& shape) {
  const ModelConfig& b = base.config;
  CHIMERA_CHECK(shape.heads >= 1 && shape.heads <= 16, ErrorCode::InvalidArg, "heads must be in 1..16, got ",
                shape.heads);
  DraftConfig c;
  c.K = shape.heads;
  c.C = b.C;
  c.V = b.V;
  c.D = shape.width > 0 ? shape.width : b.C <= 256 ? b.C : std::max(256, b.C / 8);
  CHIMERA_CHECK(c.D >= 8 && c.D <= b.C, ErrorCode::InvalidArg, "the draft width must be in 8..", b.C,
                " (the base's width), got ", c.D);
  c.HS = std::min(b.HS, c.D);
  while (c.HS > 1 && c.D % c.HS) c.HS /= 2;
  CHIMERA_CHECK(c.HS >= 2 && c.HS % 2 == 0, ErrorCode::InvalidArg, "the draft width ", c.D,
                " has no even head size that divides it");
  c.NH = c.D / c.HS;
  c.NKV = std::max(1, c.NH * b.NKV / std::max(1, b.NH));
  while (c.NH % c.NKV) c.NKV--;
  c.HD = c.D == b.C ? b.HD : round_up(std::max(32, (int)((int64_t)c.D * b.HD / b.C)), 32);
  c.rope_dims = std::max(2, c.HS * b.rope_dims / std::max(1, b.HS)) / 2 * 2;
  c.rms_eps = b.rms_eps;
  c.rope_theta = b.rope_theta;
  c.rope_layout = b.rope_layout;
  c.base_layers = b.L;
  c.base_architecture = b.architecture;
  c.base_fingerprint = base_fingerprint(base);
  if (!shape.head_tokens.empty()) {
    c.head_tokens = shape.head_tokens;
    std::sort(c.head_tokens.begin(), c.head_tokens.end());
    c.head_tokens.erase(std::unique(c.head_tokens.begin(), c.head_tokens.end()), c.head_tokens.end());
  } else {
    const int vh = shape.head_vocab > 0 ? shape.head_vocab : std::min(b.V, std::max(8192, b.V / 4));
    CHIMERA_CHECK(vh >= 1 && vh <= b.V, ErrorCode::InvalidArg, "the head vocabulary must be in 1..", b.V, ", got ",
                  vh);
    for (int i = 0; i < vh; i++) c.head_tokens.push_back(i);
  }
  c.Vh = (int)c.head_tokens.size();
  CHIMERA_CHECK(c.head_tokens.front() >= 0 && c.head_tokens.back() < b.V, ErrorCode::InvalidArg,
                "head tokens must be vocabulary ids in 0..", b.V - 1);
  return c;
}

namespace {

// Matrix views of each weight in file order, with shapes; used by save and load.
struct NamedMatrix {
  std::string name;
  int64_t rows, cols;
  TensorView* view;
  const float** vec;  // for vectors (rows == 1)
};

// The layer's dimensions: a base layer of width D.
LayerDims draft_layer_dims(const DraftConfig& c) {
  return LayerDims{c.D, (int64_t)c.NH * c.HS, (int64_t)c.KVD(), c.HD};
}

std::vector<NamedMatrix> draft_tensors(DraftConfig& c, DraftWeights& w) {
  const int64_t C = c.C, D = c.D, D3 = 3 * (int64_t)c.D;
  std::vector<NamedMatrix> t = {
      {"trigram.embed_proj.weight", D, C, &w.embed_proj, nullptr},
      {"trigram.res.weight", D3, D3, &w.tri_res, nullptr},
      {"trigram.res.bias", 1, D3, nullptr, &w.tri_res_bias},
      {"trigram.proj.weight", D, D3, &w.tri_proj, nullptr},
      {"context.proj.weight", D, C, &w.context_proj, nullptr},
  };
  const LayerDims dims = draft_layer_dims(c);
  for (const LayerTensor& lt : kLayerTensors) {
    const std::string name = std::string("layer.") + lt.gguf + ".weight";
    if (lt.is_norm()) t.push_back({name, 1, D, nullptr, &(w.layer.*lt.norm)});
    else t.push_back({name, dims(lt.rows), dims(lt.cols), &(w.layer.*lt.matrix), nullptr});
  }
  w.heads.resize(c.K);
  for (int k = 0; k < c.K; k++) t.push_back({head_name(k), c.Vh, c.head_in(), &w.heads[k], nullptr});
  return t;
}

bool is_projection(const std::string& name) {
  return name == "trigram.embed_proj.weight" || name == "context.proj.weight";
}

std::string floats_to_string(const std::vector<float>& v) {
  std::ostringstream os;
  os.precision(9);
  for (size_t i = 0; i < v.size(); i++) os << (i ? "," : "") << v[i];
  return os.str();
}

std::vector<float> floats_from_string(const std::string& s, const std::string& what) {
  std::vector<float> out;
  std::istringstream is(s);
  std::string item;
  while (std::getline(is, item, ',')) {
    char* end = nullptr;
    const float f = std::strtof(item.c_str(), &end);
    CHIMERA_CHECK(end && *end == '\0' && !item.empty(), ErrorCode::Format, what, ": bad number '", item, "'");
    out.push_back(f);
  }
  return out;
}

}  // namespace

size_t DraftModel::weight_bytes() const {
  size_t n = weights.embed_proj.bytes() + weights.tri_res.bytes() + weights.tri_proj.bytes() +
             weights.context_proj.bytes();
  for (const LayerTensor& lt : kLayerTensors)
    if (!lt.is_norm()) n += (weights.layer.*lt.matrix).bytes();
  for (const auto& h : weights.heads) n += h.bytes();
  return n;
}

std::vector<DraftParam> make_trainable(DraftModel& d) {
  std::vector<DraftParam> out;
  for (NamedMatrix& m : draft_tensors(d.config, d.weights)) {
    const size_t n = (size_t)(m.rows * m.cols);
    float* p = d.storage.alloc_f32(n);
    if (m.vec) {
      std::memcpy(p, *m.vec, n * sizeof(float));
      *m.vec = p;
    } else {
      for (int64_t r = 0; r < m.rows; r++) row_to_f32(m.view->dtype, m.view->row(r), p + r * m.cols, (size_t)m.cols);
      *m.view = TensorView{DType::F32, p, m.rows, m.cols};
    }
    out.push_back(DraftParam{m.name, p, m.rows, m.cols, m.vec != nullptr});
  }
  return out;
}

void convert_draft_weights(DraftModel& d, DType dt) {
  std::vector<NamedMatrix> mats = draft_tensors(d.config, d.weights);
  // Everything moves to new storage, so the old buffers (or the file mapping) are released.
  WeightStorage fresh;
  std::vector<float> row;
  for (NamedMatrix& m : mats) {
    if (m.vec) {
      float* p = fresh.alloc_f32((size_t)m.cols);
      std::memcpy(p, *m.vec, sizeof(float) * (size_t)m.cols);
      *m.vec = p;
      continue;
    }
    // Block types need whole blocks per row (32 or 256 columns): other matrices become F16.
    const DType mt = m.cols % dtype_block_elems(dt) != 0 ? DType::F16 : dt;
    const size_t row_bytes = dtype_row_bytes(mt, (size_t)m.cols);
    uint8_t* p = static_cast<uint8_t*>(fresh.alloc_bytes(row_bytes * (size_t)m.rows));
    if (m.view->dtype == mt) {
      std::memcpy(p, m.view->data, row_bytes * (size_t)m.rows);
    } else {
      row.resize((size_t)m.cols);
      for (int64_t r = 0; r < m.rows; r++) {
        row_to_f32(m.view->dtype, m.view->row(r), row.data(), (size_t)m.cols);
        row_from_f32(mt, row.data(), p + (size_t)r * row_bytes, (size_t)m.cols);
      }
    }
    *m.view = TensorView{mt, p, m.rows, m.cols};
  }
  d.storage = std::move(fresh);
}

DType draft_matrix_dtype(const DraftModel& d) {
  return d.weights.heads.empty() ? DType::F32 : d.weights.heads[0].dtype;
}

std::vector<float> base_fingerprint(const Model& base) {
  std::vector<float> out;
  const TensorView* views[2] = {&base.weights.tok_embd, &base.weights.output};
  std::vector<float> row;
  for (const TensorView* t : views) {
    row.resize(t->cols);
    for (int i = 0; i < 16; i++) {
      const int64_t r = (int64_t)(((uint64_t)i * 2654435761u) % (uint64_t)t->rows);
      row_to_f32(t->dtype, t->row(r), row.data(), (size_t)t->cols);
      out.push_back(row[(size_t)((i * 40503u) % (uint64_t)t->cols)]);
    }
  }
  return out;
}

// The same base stored in another type (F16, Q8_0, down to 4-bit k-quants) moves each sampled weight by
// up to half a quantisation step, ~10% of the values' spread at 4 bits; another model's weights differ by
// about their whole spread. So the sampled values must agree to 25% in relative L2 norm.
static bool fingerprints_match(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return false;
    diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    norm += std::max((double)a[i] * a[i], (double)b[i] * b[i]);
  }
  return diff <= 0.0625 * norm + 1e-12;
}

void check_draft_fits_base(const DraftModel& draft, const Model& base) {
  const DraftConfig& d = draft.config;
  const ModelConfig& b = base.config;
  CHIMERA_CHECK(d.base_architecture == b.architecture, ErrorCode::InvalidArg, "the draft was made for a ",
                d.base_architecture, " base model; ", base.path, " is ", b.architecture,
                ". Load or create the draft with this model");
  const bool same_shape = d.C == b.C && d.V == b.V && d.base_layers == b.L;
  CHIMERA_CHECK(same_shape, ErrorCode::InvalidArg, "the draft was made for another base model: it has width ", d.C,
                ", vocabulary ", d.V, ", ", d.base_layers, " base layers; ", base.path, " has width ", b.C,
                ", vocabulary ", b.V, ", ", b.L, " layers. Load or create the draft with this model");
  CHIMERA_CHECK(fingerprints_match(d.base_fingerprint, base_fingerprint(base)), ErrorCode::InvalidArg,
                "the draft was made for another base model of the same shape (its weights differ from ", base.path,
                "). Load or create the draft with this model");
  const DraftWeights& w = draft.weights;
  CHIMERA_CHECK((int)w.heads.size() == d.K, ErrorCode::InvalidArg, "the draft has ", w.heads.size(),
                " head matrices for ", d.K, " heads");
  for (const TensorView& h : w.heads)
    CHIMERA_CHECK(h.rows == d.Vh && h.cols == d.head_in(), ErrorCode::InvalidArg, "a draft head is ", h.rows, "x",
                  h.cols, ", expected ", d.Vh, "x", d.head_in());
  CHIMERA_CHECK((int)d.head_tokens.size() == d.Vh && d.Vh >= 1, ErrorCode::InvalidArg, "the draft has ",
                d.head_tokens.size(), " head tokens for ", d.Vh, " head rows");
  for (int i = 0; i < d.Vh; i++)
    CHIMERA_CHECK(d.head_tokens[i] >= 0 && d.head_tokens[i] < d.V && (i == 0 || d.head_tokens[i] > d.head_tokens[i - 1]),
                  ErrorCode::InvalidArg, "the draft's head tokens must be increasing vocabulary ids below ", d.V);
  CHIMERA_CHECK(d.D >= 2 && d.HS >= 2 && d.NKV >= 1 && d.NH % d.NKV == 0 && d.NH * d.HS == d.D && d.HD >= 1 &&
                    d.rope_dims >= 0 && d.rope_dims <= d.HS && d.rope_dims % 2 == 0,
                ErrorCode::InvalidArg, "the draft's layer shape is inconsistent (width ", d.D, ", ", d.NH, "/", d.NKV,
                " heads of ", d.HS, ")");
}

std::unique_ptr<DraftModel> create_draft(const Model& base, const DraftShape& shape, uint64_t seed) {
  auto d = std::make_unique<DraftModel>();
  d->config = draft_config_for(base, shape);
  const DraftConfig& c = d->config;
  Rng rng(seed ^ 0xC41EE7A5ull);
  auto normal = [&](float std) {  // Box-Muller
    const double u1 = rng.uniform() + 1e-12, u2 = rng.uniform();
    return (float)(std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  for (NamedMatrix& m : draft_tensors(d->config, d->weights)) {
    float* p = d->storage.alloc_f32((size_t)(m.rows * m.cols));
    const std::string& n = m.name;
    if (n == "trigram.res.weight") {
      // zero: R starts as the identity plus SiLU(b_r)
    } else if (n == "trigram.res.bias" || n == "trigram.proj.weight") {
      const float bound = 1.0f / std::sqrt((float)(3 * c.D));  // PyTorch Linear default
      for (int64_t i = 0; i < m.rows * m.cols; i++) p[i] = (float)((rng.uniform() * 2 - 1) * bound);
    } else if (is_projection(n)) {
      if (c.D == c.C) {
        for (int64_t i = 0; i < m.rows; i++) p[i * m.cols + i] = 1.0f;
      } else {  // a random projection that keeps norms about the same
        const float std = 1.0f / std::sqrt((float)c.D);
        for (int64_t i = 0; i < m.rows * m.cols; i++) p[i] = normal(std);
      }
    } else if (m.vec) {
      for (int64_t i = 0; i < m.cols; i++) p[i] = 1.0f;  // RMSNorm gains
    } else if (n.rfind("heads.", 0) == 0) {
      const TensorView& out = base.weights.output;  // [W_out, W_out] over the head tokens
      for (int64_t r = 0; r < m.rows; r++) {
        float* row = p + r * m.cols;
        row_to_f32(out.dtype, out.row(c.head_tokens[(size_t)r]), row, (size_t)c.C);
        if (c.D == c.C) std::memcpy(row + c.C, row, sizeof(float) * c.C);
      }
    } else {
      for (int64_t i = 0; i < m.rows * m.cols; i++) p[i] = normal(0.02f);
    }
    if (m.vec) *m.vec = p;
    else *m.view = TensorView{DType::F32, p, m.rows, m.cols};
  }
  return d;
}

void save_draft(const DraftModel& draft, const std::string& path, DType matrix_dtype) {
  CHIMERA_CHECK(matrix_dtype == DType::F32 || matrix_dtype == DType::F16 || matrix_dtype == DType::BF16,
                ErrorCode::InvalidArg, "drafts are saved as F32, F16 or BF16");
  DraftModel& d = const_cast<DraftModel&>(draft);  // draft_tensors hands out pointers; nothing is modified
  DraftConfig cfg = d.config;
  DraftWeights w = d.weights;
  std::vector<TensorToWrite> out;
  std::vector<std::vector<uint8_t>> converted;  // matrices stored in another type than in memory
  std::vector<float> row;
  for (NamedMatrix& m : draft_tensors(cfg, w)) {
    TensorToWrite t;
    t.name = m.name;
    t.shape = m.rows == 1 && m.vec ? std::vector<int64_t>{m.cols} : std::vector<int64_t>{m.rows, m.cols};
    if (m.vec) {
      t.dtype = DType::F32;
      t.data = *m.vec;
    } else {
      if (m.view->dtype == matrix_dtype) {
        t.dtype = m.view->dtype;
        t.data = m.view->data;
      } else {  // any stored type (Q8_0 included) decoded and written as matrix_dtype
        const size_t row_bytes = dtype_row_bytes(matrix_dtype, (size_t)m.cols);
        converted.emplace_back(row_bytes * (size_t)m.rows);
        std::vector<uint8_t>& bytes = converted.back();
        row.resize((size_t)m.cols);
        for (int64_t r = 0; r < m.rows; r++) {
          row_to_f32(m.view->dtype, m.view->row(r), row.data(), (size_t)m.cols);
          row_from_f32(matrix_dtype, row.data(), bytes.data() + (size_t)r * row_bytes, (size_t)m.cols);
        }
        t.dtype = matrix_dtype;
        t.data = bytes.data();
      }
    }
    out.push_back(t);
  }
  const DraftConfig& c = draft.config;
  TensorToWrite tokens;
  tokens.name = "heads.tokens";
  tokens.shape = {c.Vh};
  tokens.data = c.head_tokens.data();
  tokens.int32 = true;
  out.push_back(tokens);
  std::vector<std::pair<std::string, std::string>> meta = {
      {"format", "chimera-draft"},
      {"format_version", std::to_string(kDraftFormatVersion)},
      {"heads", std::to_string(c.K)},
      {"hidden_size", std::to_string(c.C)},
      {"vocab_size", std::to_string(c.V)},
      {"base_layers", std::to_string(c.base_layers)},
      {"base_architecture", c.base_architecture},
      {"base_fingerprint", floats_to_string(c.base_fingerprint)},
      {"draft_width", std::to_string(c.D)},
      {"draft_head_count", std::to_string(c.NH)},
      {"draft_head_count_kv", std::to_string(c.NKV)},
      {"draft_head_size", std::to_string(c.HS)},
      {"draft_rope_dimension_count", std::to_string(c.rope_dims)},
      {"draft_feed_forward_length", std::to_string(c.HD)},
      {"draft_rms_eps", floats_to_string({c.rms_eps})},
      {"head_vocab_size", std::to_string(c.Vh)},
  };
  write_safetensors(path, out, meta);
}

std::vector<std::pair<std::string, std::string>> read_draft_metadata(const std::string& path) {
  SafetensorsFile f(path);
  const auto& meta = f.metadata();
  bool is_draft = false;
  for (const auto& kv : meta)
    if (kv.first == "format" && kv.second == "chimera-draft") is_draft = true;
  CHIMERA_CHECK(is_draft, ErrorCode::Format, path, " is not a chimera draft (no __metadata__ format=chimera-draft)");
  return meta;
}

std::unique_ptr<DraftModel> load_draft(const std::string& path, const Model& base) {
  auto file = std::make_shared<SafetensorsFile>(path);
  std::map<std::string, std::string> meta;
  for (const auto& kv : read_draft_metadata(path)) meta[kv.first] = kv.second;
  auto num = [&](const char* key) {
    auto it = meta.find(key);
    CHIMERA_CHECK(it != meta.end(), ErrorCode::Format, path, ": metadata lacks '", key, "'");
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    CHIMERA_CHECK(end && *end == '\0' && v >= 0 && v < (1L << 30), ErrorCode::Format, path, ": bad ", key);
    return (int)v;
  };
  const int version = num("format_version");
  CHIMERA_CHECK(version == 1 || version == kDraftFormatVersion, ErrorCode::Unsupported, path,
                ": draft format version ", meta["format_version"], " (this library reads 1 and ", kDraftFormatVersion,
                ")");
  const ModelConfig& b = base.config;
  const std::string base_arch = meta.count("base_architecture") ? meta["base_architecture"] : "llama";
  CHIMERA_CHECK(base_arch == b.architecture, ErrorCode::InvalidArg, path, " was made for a ", base_arch,
                " base model, but ", base.path, " is ", b.architecture,
                "; train a draft for this model with `chimera train-draft`");
  const int K = num("heads");
  CHIMERA_CHECK(K >= 1 && K <= 16, ErrorCode::Format, path, ": ", K, " heads (1..16)");
  const std::vector<float> fp = floats_from_string(meta["base_fingerprint"], path + " base_fingerprint");
  const bool same_base = num("hidden_size") == b.C && num("vocab_size") == b.V && num("base_layers") == b.L &&
                         (version > 1 || (num("head_count") == b.NH && num("head_count_kv") == b.NKV &&
                                          num("feed_forward_length") == b.HD));
  CHIMERA_CHECK(same_base && fingerprints_match(fp, base_fingerprint(base)), ErrorCode::InvalidArg, path,
                " was made for another base model (its shape or weights differ from ", base.path,
                "); train a draft for this model with `chimera train-draft`");
  auto d = std::make_unique<DraftModel>();
  DraftConfig& c = d->config;
  if (version == 1) {  // the paper's shape: the base's own layer, identity projections, every token
    c = draft_config_for(base, DraftShape{K, b.C, b.V, {}});
    c.NH = b.NH; c.NKV = b.NKV; c.HS = b.HS; c.HD = b.HD; c.rope_dims = b.rope_dims;
  } else {
    const RawTensor* tokens = file->tensor("heads.tokens");
    CHIMERA_CHECK(tokens && tokens->type_name == "I32" && tokens->shape.size() == 1 &&
                      tokens->shape[0] == num("head_vocab_size") && tokens->shape[0] >= 1 &&
                      tokens->bytes == (uint64_t)tokens->shape[0] * sizeof(int32_t),
                  ErrorCode::Format, path, ": heads.tokens must be I32 of head_vocab_size elements");
    std::vector<int32_t> ids((size_t)tokens->shape[0]);
    std::memcpy(ids.data(), tokens->data, tokens->bytes);
    for (size_t i = 0; i < ids.size(); i++)
      CHIMERA_CHECK(ids[i] >= 0 && ids[i] < b.V && (i == 0 || ids[i] > ids[i - 1]), ErrorCode::Format, path,
                    ": heads.tokens must be increasing vocabulary ids below ", b.V);
    c = draft_config_for(base, DraftShape{K, b.C, 0, ids});
    c.D = num("draft_width");
    c.NH = num("draft_head_count");
    c.NKV = num("draft_head_count_kv");
    c.HS = num("draft_head_size");
    c.rope_dims = num("draft_rope_dimension_count");
    c.HD = num("draft_feed_forward_length");
    if (meta.count("draft_rms_eps")) {  // the layer's own epsilon (else the base's)
      const std::vector<float> eps = floats_from_string(meta["draft_rms_eps"], path + " draft_rms_eps");
      CHIMERA_CHECK(eps.size() == 1 && eps[0] > 0 && eps[0] < 1, ErrorCode::Format, path, ": bad draft_rms_eps");
      c.rms_eps = eps[0];
    }
    CHIMERA_CHECK(c.D >= 2 && c.D <= 65536 && c.HS >= 2 && c.NKV >= 1 && c.NH >= 1 && c.NH % c.NKV == 0 &&
                      (int64_t)c.NH * c.HS == c.D && c.HD >= 1 && c.HD <= (1 << 20) && c.rope_dims <= c.HS &&
                      c.rope_dims % 2 == 0,
                  ErrorCode::Format, path, ": inconsistent draft layer shape");
  }
  d->storage.holders.push_back(file);
  for (NamedMatrix& m : draft_tensors(d->config, d->weights)) {
    if (version == 1 && is_projection(m.name)) {  // identity
      float* p = d->storage.alloc_f32((size_t)(m.rows * m.cols));
      for (int64_t i = 0; i < m.rows; i++) p[i * m.cols + i] = 1.0f;
      *m.view = TensorView{DType::F32, p, m.rows, m.cols};
      continue;
    }
    const RawTensor* t = file->tensor(m.name);
    CHIMERA_CHECK(t, ErrorCode::Tensor, path, ": tensor ", m.name, " is missing");
    if (m.vec) *m.vec = import_vector_f32(d->storage, *t, m.cols);
    else *m.view = import_matrix(d->storage, *t, m.rows, m.cols);
  }
  // Weights used from the mapping are faulted in now, as the base model's are: else the first tree
  // steps pay for it (a 194 MB draft: tens of page-faulting milliseconds per step, on the cores the
  // batch's passes share), and the costs measured then price trees out.
  d->storage.mapped_files.push_back(file->file());
  d->storage.prefault_mapped();
  return d;
}

}  // namespace chimera
