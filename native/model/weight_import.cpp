// RawTensor -> TensorView: shape and dtype checks, zero-copy when the mapping is usable as is, and the
// common assembly of ModelWeights from a name lookup.
#include "model/weight_import.h"

#include <cstring>

#include "common/error.h"
#include "model/layer_tensors.h"

namespace chimera {

std::string shape_string(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "a scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); i++) {
    if (i) s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

static void check_supported(const RawTensor& t) {
  CHIMERA_CHECK(t.supported, ErrorCode::Unsupported, "tensor ", t.name, " has element type ", t.type_name,
                ", which chimera cannot compute with; use a model file in F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K "
                "(llama-quantize types Q4_0, Q4_K_M/S, Q5_K_M/S, Q6_K, Q8_0 where every tensor is one of these)");
}

// Kernels read F32 and 16-bit elements with plain loads, so those need natural alignment; quantised
// blocks (18 to 210 bytes) are always read bytewise.
static size_t required_alignment(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    default: return 1;
  }
}

TensorView import_matrix(WeightStorage& storage, const RawTensor& t, int64_t rows, int64_t cols) {
  check_supported(t);
  CHIMERA_CHECK(t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols, ErrorCode::Tensor, "tensor ",
                t.name, ": expected ", rows, "x", cols, " (rows x cols), file has ", shape_string(t.shape), " ",
                t.type_name);
  CHIMERA_CHECK(cols % dtype_block_elems(t.dtype) == 0, ErrorCode::Tensor, "tensor ", t.name, ": ", t.type_name,
                " needs a column count that is a multiple of ", dtype_block_elems(t.dtype), ", file has ", cols);
  TensorView v;
  v.dtype = t.dtype;
  v.rows = rows;
  v.cols = cols;
  CHIMERA_CHECK(v.bytes() == t.bytes, ErrorCode::Tensor, "tensor ", t.name, ": holds ", t.bytes, " bytes, but ",
                rows, "x", cols, " ", t.type_name, " needs ", v.bytes());
  if ((uintptr_t)t.data % required_alignment(t.dtype) == 0) {
    v.data = t.data;
    storage.mapped_bytes += v.bytes();
    return v;
  }
  void* copy = storage.alloc_bytes(v.bytes());
  std::memcpy(copy, t.data, v.bytes());
  v.data = copy;
  return v;
}

const float* import_vector_f32(WeightStorage& storage, const RawTensor& t, int64_t n) {
  check_supported(t);
  CHIMERA_CHECK(t.shape.size() == 1 && t.shape[0] == n, ErrorCode::Tensor, "tensor ", t.name, ": expected a vector of ",
                n, ", file has ", shape_string(t.shape), " ", t.type_name);
  CHIMERA_CHECK(n % dtype_block_elems(t.dtype) == 0, ErrorCode::Tensor, "tensor ", t.name, ": a ", t.type_name,
                " vector needs a multiple of ", dtype_block_elems(t.dtype), " elements, file has ", n);
  const size_t bytes = dtype_row_bytes(t.dtype, (size_t)n);
  CHIMERA_CHECK(bytes == t.bytes, ErrorCode::Tensor, "tensor ", t.name, ": holds ", t.bytes, " bytes, expected ", bytes);
  // row_to_f32 reads whole elements, so misaligned data is first copied somewhere aligned.
  std::vector<uint32_t> aligned;
  const void* src = t.data;
  if ((uintptr_t)t.data % required_alignment(t.dtype) != 0) {
    aligned.resize(bytes / 4 + 1);
    std::memcpy(aligned.data(), t.data, bytes);
    src = aligned.data();
  }
  float* out = storage.alloc_f32((size_t)n);
  row_to_f32(t.dtype, src, out, (size_t)n);
  return out;
}

namespace {

// The names of a file format: the model-level tensors, and each layer tensor's name from the table.
WeightNames names_of(const char* tok_embd, const char* output_norm, const char* output, const char* layer_prefix,
                     const char* LayerTensor::*layer_name) {
  WeightNames n{tok_embd, output_norm, output, layer_prefix, {}, {}, {}, {}};
  for (int i = 0; i < kLayerTensorCount; i++)
    n.layer_suffix[i] = std::string(".") + kLayerTensors[i].*layer_name + ".weight";
  return n;
}

template <typename Table>
void vector_names(WeightNames& n, const char* Table::*name) {
  for (int i = 0; i < kLayerVectorCount; i++) n.vector_suffix[i] = std::string(".") + kLayerVectors[i].*name;
}

}  // namespace

// llama.cpp names phi3's fused gate|up matrix ffn_up (twice the rows of a plain one).
WeightNames gguf_weight_names() {
  WeightNames n = names_of("token_embd.weight", "output_norm.weight", "output.weight", "blk.", &LayerTensor::gguf);
  vector_names(n, &LayerVector::gguf);
  n.fused_qkv = ".attn_qkv.weight";
  n.fused_gate_up = ".ffn_up.weight";
  return n;
}

WeightNames hf_weight_names() {
  WeightNames n = names_of("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.",
                           &LayerTensor::hf);
  vector_names(n, &LayerVector::hf);
  n.fused_qkv = ".self_attn.qkv_proj.weight";
  n.fused_gate_up = ".mlp.gate_up_proj.weight";
  return n;
}

TensorView row_slice(const TensorView& t, int64_t r0, int64_t n) {
  TensorView v = t;
  v.data = t.row(r0);
  v.rows = n;
  return v;
}

namespace {

const RawTensor& need(const TensorLookup& lookup, const std::string& name, const std::string& file) {
  const RawTensor* t = lookup(name);
  CHIMERA_CHECK(t != nullptr, ErrorCode::Tensor, "tensor ", name, " is missing from ", file,
                " (is it a complete LLaMA checkpoint?)");
  return *t;
}

// Converters often write the tied classifier as an explicit copy; recognising it keeps one copy hot.
bool same_tensor(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.rows == b.rows && a.cols == b.cols &&
         (a.data == b.data || std::memcmp(a.data, b.data, a.bytes()) == 0);
}

}  // namespace

namespace {

// One layer's tensors: the nine of kLayerTensors (from fused matrices where the config says so), then
// the optional vectors the config asks for.
void import_layer(const ModelConfig& cfg, const WeightNames& names, const TensorLookup& lookup, int l,
                  const std::string& file, WeightStorage& storage, LayerWeights& lw) {
  const LayerDims dims = layer_dims(cfg);
  const std::string p = names.layer_prefix + std::to_string(l);
  for (int i = 0; i < kLayerTensorCount; i++) {
    const LayerTensor& lt = kLayerTensors[i];
    if (cfg.fused_qkv && (i == kAttnQ || i == kAttnK || i == kAttnV)) {
      if (i != kAttnQ) continue;
      const TensorView qkv = import_matrix(storage, need(lookup, p + names.fused_qkv, file), dims.QD + 2 * dims.KVD,
                                           dims.C);  // (QD + 2 KVD, C)
      lw.wq = row_slice(qkv, 0, dims.QD);
      lw.wk = row_slice(qkv, dims.QD, dims.KVD);
      lw.wv = row_slice(qkv, dims.QD + dims.KVD, dims.KVD);
      continue;
    }
    if (cfg.fused_gate_up && (i == kFfnGate || i == kFfnUp)) {
      if (i != kFfnGate) continue;
      const TensorView gu = import_matrix(storage, need(lookup, p + names.fused_gate_up, file), 2 * dims.HD, dims.C);
      lw.w_gate = row_slice(gu, 0, dims.HD);  // (HD, C) each, gate first (llama.cpp's swiglu of halves)
      lw.w_up = row_slice(gu, dims.HD, dims.HD);
      continue;
    }
    const RawTensor& t = need(lookup, p + names.layer_suffix[i], file);
    if (lt.is_norm()) lw.*lt.norm = import_vector_f32(storage, t, dims.C);
    else lw.*lt.matrix = import_matrix(storage, t, dims(lt.rows), dims(lt.cols));
  }
  for (int i = 0; i < kLayerVectorCount; i++) {
    const LayerVector& lv = kLayerVectors[i];
    const std::string name = p + names.vector_suffix[i];
    if (layer_vector_used(lv, cfg)) {
      lw.*lv.vec = import_vector_f32(storage, need(lookup, name, file), layer_vector_size(lv, cfg));
    } else {
      CHIMERA_CHECK(lookup(name) == nullptr, ErrorCode::Unsupported, file, " has tensor ", name,
                    ", which a ", cfg.architecture, " model does not use; refusing rather than ignoring it");
    }
  }
  // An output-projection bias would be silently dropped: no architecture here has one.
  CHIMERA_CHECK(lookup(p + ".attn_output.bias") == nullptr && lookup(p + ".self_attn.o_proj.bias") == nullptr,
                ErrorCode::Unsupported, file, ": layer ", l, " has an attention output bias, which is not supported");
}

}  // namespace

void import_weights(ModelConfig& cfg, const WeightNames& names, const TensorLookup& lookup, bool force_tied,
                    const std::string& file, WeightStorage& storage, ModelWeights& w) {
  const int64_t C = cfg.C, V = cfg.V;
  w.tok_embd = import_matrix(storage, need(lookup, names.tok_embd, file), V, C);  // (V, C)
  // The layer count is a claim of the metadata: the file's last layer must exist before anything is
  // sized by it, and layers are added one at a time as their tensors are found.
  need(lookup, names.layer_prefix + std::to_string(cfg.L - 1) + names.layer_suffix[0], file);
  w.layers.clear();
  for (int l = 0; l < cfg.L; l++) {
    w.layers.emplace_back();
    import_layer(cfg, names, lookup, l, file, storage, w.layers.back());
  }
  w.output_norm = import_vector_f32(storage, need(lookup, names.output_norm, file), C);  // (C)
  const RawTensor* out = force_tied ? nullptr : lookup(names.output);
  w.output = w.tok_embd;
  cfg.tied_output = true;
  if (out != nullptr) {
    const size_t mapped_before = storage.mapped_bytes;
    const TensorView o = import_matrix(storage, *out, V, C);  // (V, C)
    if (same_tensor(o, w.tok_embd)) {
      storage.mapped_bytes = mapped_before;  // an owned copy, if one was made, stays in owned_bytes
    } else {
      w.output = o;
      cfg.tied_output = false;
    }
  }
}

}  // namespace chimera
