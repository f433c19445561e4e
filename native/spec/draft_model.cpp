// Draft model creation (paper initialisation), safetensors load/save and the base-model check.
#include "spec/draft_model.h"

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

DraftConfig config_from_base(const Model& base, int heads) {
  const ModelConfig& b = base.config;
  DraftConfig c;
  c.K = heads;
  c.C = b.C; c.V = b.V; c.NH = b.NH; c.NKV = b.NKV; c.HS = b.HS; c.HD = b.HD;
  c.rms_eps = b.rms_eps; c.rope_theta = b.rope_theta; c.rope_dims = b.rope_dims; c.rope_layout = b.rope_layout;
  c.base_layers = b.L;
  c.base_fingerprint = base_fingerprint(base);
  return c;
}

// Matrix views of each weight in file order, with shapes; used by save and load.
struct NamedMatrix {
  std::string name;
  int64_t rows, cols;
  TensorView* view;
  const float** vec;  // for vectors (rows == 1)
};

std::vector<NamedMatrix> draft_tensors(DraftConfig& c, DraftWeights& w) {
  const int64_t C = c.C, C3 = 3 * c.C;
  std::vector<NamedMatrix> t = {
      {"trigram.res.weight", C3, C3, &w.tri_res, nullptr},
      {"trigram.res.bias", 1, C3, nullptr, &w.tri_res_bias},
      {"trigram.proj.weight", C, C3, &w.tri_proj, nullptr},
  };
  const LayerDims dims = layer_dims(c);
  for (const LayerTensor& lt : kLayerTensors) {
    const std::string name = std::string("layer.") + lt.gguf + ".weight";
    if (lt.is_norm()) t.push_back({name, 1, C, nullptr, &(w.layer.*lt.norm)});
    else t.push_back({name, dims(lt.rows), dims(lt.cols), &(w.layer.*lt.matrix), nullptr});
  }
  w.heads.resize(c.K);
  for (int k = 0; k < c.K; k++) t.push_back({head_name(k), c.V, 2 * C, &w.heads[k], nullptr});
  return t;
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
  size_t n = weights.tri_res.bytes() + weights.tri_proj.bytes();
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
    // Q8_0 needs whole 32-column blocks: other matrices become F16.
    const DType mt = dt == DType::Q8_0 && m.cols % kQ8BlockSize != 0 ? DType::F16 : dt;
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

static bool fingerprints_match(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    const float tol = 1e-3f + 0.02f * std::max(std::fabs(a[i]), std::fabs(b[i]));  // survives F16/BF16/Q8_0
    if (!(std::fabs(a[i] - b[i]) <= tol)) return false;
  }
  return true;
}

void check_draft_fits_base(const DraftModel& draft, const Model& base) {
  const DraftConfig& d = draft.config;
  const ModelConfig& b = base.config;
  const bool same_shape = d.C == b.C && d.V == b.V && d.NH == b.NH && d.NKV == b.NKV && d.HS == b.HS &&
                          d.HD == b.HD && d.base_layers == b.L && d.rope_dims == b.rope_dims &&
                          d.rope_layout == b.rope_layout;
  CHIMERA_CHECK(same_shape, ErrorCode::InvalidArg, "the draft was made for another base model: it has width ", d.C,
                ", vocabulary ", d.V, ", ", d.NH, "/", d.NKV, " heads, ", d.base_layers, " base layers; ", base.path,
                " has width ", b.C, ", vocabulary ", b.V, ", ", b.NH, "/", b.NKV, " heads, ", b.L,
                " layers. Load or create the draft with this model");
  CHIMERA_CHECK(fingerprints_match(d.base_fingerprint, base_fingerprint(base)), ErrorCode::InvalidArg,
                "the draft was made for another base model of the same shape (its weights differ from ", base.path,
                "). Load or create the draft with this model");
  const DraftWeights& w = draft.weights;
  CHIMERA_CHECK((int)w.heads.size() == d.K, ErrorCode::InvalidArg, "the draft has ", w.heads.size(),
                " head matrices for ", d.K, " heads");
  for (const TensorView& h : w.heads)
    CHIMERA_CHECK(h.rows == d.V && h.cols == 2 * (int64_t)d.C, ErrorCode::InvalidArg, "a draft head is ", h.rows, "x",
                  h.cols, ", expected ", d.V, "x", 2 * (int64_t)d.C);
}

std::unique_ptr<DraftModel> create_draft(const Model& base, int heads, uint64_t seed) {
  CHIMERA_CHECK(heads >= 1 && heads <= 16, ErrorCode::InvalidArg, "heads must be in 1..16, got ", heads);
  auto d = std::make_unique<DraftModel>();
  d->config = config_from_base(base, heads);
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
      const float bound = 1.0f / std::sqrt((float)(3 * d->config.C));  // PyTorch Linear default
      for (int64_t i = 0; i < m.rows * m.cols; i++) p[i] = (float)((rng.uniform() * 2 - 1) * bound);
    } else if (m.vec) {
      for (int64_t i = 0; i < m.cols; i++) p[i] = 1.0f;  // RMSNorm gains
    } else if (n.rfind("heads.", 0) == 0) {
      const TensorView& out = base.weights.output;  // [W_out, W_out]
      for (int64_t r = 0; r < m.rows; r++) {
        row_to_f32(out.dtype, out.row(r), p + r * m.cols, (size_t)d->config.C);
        std::memcpy(p + r * m.cols + d->config.C, p + r * m.cols, sizeof(float) * d->config.C);
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
  std::vector<std::pair<std::string, std::string>> meta = {
      {"format", "chimera-draft"},
      {"format_version", std::to_string(kDraftFormatVersion)},
      {"heads", std::to_string(c.K)},
      {"hidden_size", std::to_string(c.C)},
      {"vocab_size", std::to_string(c.V)},
      {"head_count", std::to_string(c.NH)},
      {"head_count_kv", std::to_string(c.NKV)},
      {"feed_forward_length", std::to_string(c.HD)},
      {"base_layers", std::to_string(c.base_layers)},
      {"base_fingerprint", floats_to_string(c.base_fingerprint)},
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
    CHIMERA_CHECK(end && *end == '\0' && v > 0 && v < (1L << 30), ErrorCode::Format, path, ": bad ", key);
    return (int)v;
  };
  CHIMERA_CHECK(num("format_version") == kDraftFormatVersion, ErrorCode::Unsupported, path, ": draft format version ",
                meta["format_version"], " (this library reads ", kDraftFormatVersion, ")");
  auto d = std::make_unique<DraftModel>();
  d->config = config_from_base(base, num("heads"));
  DraftConfig& c = d->config;
  CHIMERA_CHECK(c.K <= 16, ErrorCode::Format, path, ": ", c.K, " heads (max 16)");
  const bool same_shape = num("hidden_size") == c.C && num("vocab_size") == c.V && num("head_count") == c.NH &&
                          num("head_count_kv") == c.NKV && num("feed_forward_length") == c.HD &&
                          num("base_layers") == c.base_layers;
  const std::vector<float> fp = floats_from_string(meta["base_fingerprint"], path + " base_fingerprint");
  CHIMERA_CHECK(same_shape && fingerprints_match(fp, c.base_fingerprint), ErrorCode::InvalidArg, path,
                " was made for another base model (its shape or weights differ from ", base.path,
                "); train a draft for this model with `chimera train-draft`");
  d->storage.holders.push_back(file);
  for (NamedMatrix& m : draft_tensors(d->config, d->weights)) {
    const RawTensor* t = file->tensor(m.name);
    CHIMERA_CHECK(t, ErrorCode::Tensor, path, ": tensor ", m.name, " is missing");
    if (m.vec) *m.vec = import_vector_f32(d->storage, *t, m.cols);
    else *m.view = import_matrix(d->storage, *t, m.rows, m.cols);
  }
  return d;
}

}  // namespace chimera
