// Model-level pieces shared by all loaders: owned weight storage, config and weight validation, and the
// format dispatch of load_model.
#include "model/model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/host_memory.h"
#include "common/mapped_file.h"
#include "model/layer_tensors.h"

namespace chimera {

void WeightStorage::prefault_mapped() const {
  if (mapped_bytes == 0) return;
  for (const auto& f : mapped_files) f->prefault();
}

void WeightStorage::drop_mapped_pages(const void* p, size_t n) const {
  for (const auto& f : mapped_files)
    if (f->drop_pages(p, n)) return;
}

void* WeightStorage::alloc_bytes(size_t n) {
  void* p = host_alloc(n);
  if (!p) throw_error(ErrorCode::OutOfMemory, "cannot allocate ", n, " bytes for model weights");
  std::memset(p, 0, n);
  holders.emplace_back(p, [](void* q) { host_free(q); });
  owned_bytes += n;
  return p;
}

float* WeightStorage::alloc_f32(size_t n) {
  CHIMERA_CHECK(n <= SIZE_MAX / sizeof(float), ErrorCode::OutOfMemory, "cannot allocate ", n, " floats");
  return static_cast<float*>(alloc_bytes(n * sizeof(float)));
}

// Counts every distinct tensor once (a tied classifier is the embedding), norms included.
size_t Model::weight_bytes() const {
  const size_t norm = (size_t)config.C * sizeof(float);
  size_t total = weights.tok_embd.bytes() + norm;
  for (const LayerWeights& l : weights.layers)
    for (const LayerTensor& lt : kLayerTensors) total += lt.is_norm() ? norm : (l.*lt.matrix).bytes();
  for (const LayerVector& lv : kLayerVectors)
    if (layer_vector_used(lv, config)) total += weights.layers.size() * layer_vector_size(lv, config) * sizeof(float);
  if (weights.output.data != weights.tok_embd.data) total += weights.output.bytes();
  return total;
}

bool is_known_architecture(const std::string& arch) {
  return arch == "llama" || arch == "qwen2" || arch == "qwen3" || arch == "phi3";
}

void validate_config(const ModelConfig& cfg) {
  // Upper bounds keep later size arithmetic (KV cache, activations) far from overflow.
  constexpr int kMaxDim = 1 << 24;
  const struct { const char* name; int v; } dims[] = {
      {"embedding width (C)", cfg.C},   {"layer count (L)", cfg.L},     {"head count (NH)", cfg.NH},
      {"key/value head count (NKV)", cfg.NKV}, {"head size (HS)", cfg.HS}, {"FFN width (HD)", cfg.HD},
      {"vocabulary size (V)", cfg.V},   {"context length", cfg.max_context}};
  for (const auto& d : dims) {
    CHIMERA_CHECK(d.v > 0 && d.v <= kMaxDim, ErrorCode::Format, "model config: ", d.name, " is ", d.v,
                  ", expected 1..", kMaxDim);
  }
  CHIMERA_CHECK(cfg.NH % cfg.NKV == 0, ErrorCode::Format, "model config: head count ", cfg.NH,
                " is not a multiple of the key/value head count ", cfg.NKV);
  CHIMERA_CHECK(cfg.HS % 2 == 0, ErrorCode::Unsupported, "model config: head size ", cfg.HS, " is odd");
  CHIMERA_CHECK(cfg.rope_freq_factors.empty() || cfg.rope_freq_factors.size() == (size_t)cfg.rope_dims / 2,
                ErrorCode::Format, "model config: ", cfg.rope_freq_factors.size(), " RoPE frequency factors for ",
                cfg.rope_dims / 2, " rotated pairs");
  CHIMERA_CHECK(cfg.rope_dims > 0 && cfg.rope_dims % 2 == 0 && cfg.rope_dims <= cfg.HS, ErrorCode::Format,
                "model config: RoPE dimension count ", cfg.rope_dims, " must be even and in 2..", cfg.HS,
                " (the head size)");
  CHIMERA_CHECK(std::isfinite(cfg.rms_eps) && cfg.rms_eps > 0, ErrorCode::Format, "model config: RMSNorm epsilon ",
                cfg.rms_eps, " must be a positive number");
  CHIMERA_CHECK(std::isfinite(cfg.rope_theta) && cfg.rope_theta > 0, ErrorCode::Format, "model config: RoPE base ",
                cfg.rope_theta, " must be a positive number");
}

namespace {

void check_view(const TensorView& t, const std::string& name, int64_t rows, int64_t cols) {
  CHIMERA_CHECK(t.data != nullptr, ErrorCode::Tensor, "tensor ", name, " was not loaded");
  CHIMERA_CHECK(t.rows == rows && t.cols == cols, ErrorCode::Tensor, "tensor ", name, ": expected ", rows, "x", cols,
                ", file has ", t.rows, "x", t.cols, " ", dtype_name(t.dtype));
}

void check_norm(const float* p, const std::string& name) {
  CHIMERA_CHECK(p != nullptr, ErrorCode::Tensor, "tensor ", name, " was not loaded");
}

}  // namespace

// Tensors are named as in GGUF, whatever the file format, so messages are uniform.
void validate_weights(const ModelConfig& cfg, const ModelWeights& w) {
  const int64_t C = cfg.C, V = cfg.V;
  const LayerDims dims = layer_dims(cfg);
  check_view(w.tok_embd, "token_embd.weight", V, C);
  CHIMERA_CHECK(w.layers.size() == (size_t)cfg.L, ErrorCode::Tensor, "model has ", w.layers.size(),
                " layers of weights, config says ", cfg.L);
  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights& lw = w.layers[l];
    for (const LayerTensor& lt : kLayerTensors) {
      const std::string name = "blk." + std::to_string(l) + "." + lt.gguf + ".weight";
      if (lt.is_norm()) check_norm(lw.*lt.norm, name);
      else check_view(lw.*lt.matrix, name, dims(lt.rows), dims(lt.cols));
    }
    for (const LayerVector& lv : kLayerVectors) {
      const std::string name = "blk." + std::to_string(l) + "." + lv.gguf;
      if (layer_vector_used(lv, cfg)) check_norm(lw.*lv.vec, name);
      else CHIMERA_CHECK(lw.*lv.vec == nullptr, ErrorCode::Tensor, "tensor ", name, " is set but the config has none");
    }
  }
  check_norm(w.output_norm, "output_norm.weight");
  check_view(w.output, "output.weight", V, C);
}

namespace {

void check_finite(const float* v, size_t n, const std::string& name, int64_t row) {
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(v[i]))
      throw_error(ErrorCode::Numeric, "tensor ", name, " holds a non-finite value (", v[i], ") at row ", row,
                  ", column ", i, ": the file is corrupt or its data is not the type it claims");
}

void check_matrix(const TensorView& t, const std::string& name) {
  std::vector<float> row((size_t)t.cols);
  for (int64_t r = 0; r < t.rows; r++) {
    row_to_f32(t.dtype, t.row(r), row.data(), row.size());
    check_finite(row.data(), row.size(), name, r);
  }
}

}  // namespace

void check_tensor_values(const Model& m) {
  const ModelWeights& w = m.weights;
  const size_t C = (size_t)m.config.C;
  check_matrix(w.tok_embd, "token_embd.weight");
  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights& lw = w.layers[l];
    for (const LayerTensor& lt : kLayerTensors) {
      const std::string name = "blk." + std::to_string(l) + "." + lt.gguf + ".weight";
      if (lt.is_norm()) check_finite(lw.*lt.norm, C, name, 0);
      else check_matrix(lw.*lt.matrix, name);
    }
    for (const LayerVector& lv : kLayerVectors)
      if (layer_vector_used(lv, m.config))
        check_finite(lw.*lv.vec, (size_t)layer_vector_size(lv, m.config), "blk." + std::to_string(l) + "." + lv.gguf, 0);
  }
  check_finite(w.output_norm, C, "output_norm.weight", 0);
  if (w.output.data != w.tok_embd.data) check_matrix(w.output, "output.weight");
}

static bool starts_with_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

namespace {
std::unique_ptr<Model> load_by_format(const std::string& path, const LoadOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  CHIMERA_CHECK(!ec && fs::exists(st), ErrorCode::NotFound, "model path ", path, " does not exist");
  if (fs::is_directory(st)) return load_hf_dir(path);
  // Checked before any open: opening a FIFO for reading blocks until a writer comes.
  CHIMERA_CHECK(fs::is_regular_file(st), ErrorCode::NotFound, "model path ", path,
                " is not a regular file (a FIFO, socket or device cannot be loaded)");
  if (starts_with_gguf_magic(path)) return load_gguf(path);
  // A llama2.c checkpoint starts with a 28-byte header; anything shorter is no model at all.
  const auto size = fs::file_size(path, ec);
  CHIMERA_CHECK(!ec && size >= 28, ErrorCode::Format, path, " is only ", size,
                " bytes: too short to be a GGUF file or a llama2.c checkpoint (truncated?)");
  const std::string ext = fs::path(path).extension().string();
  CHIMERA_CHECK(ext != ".safetensors" && ext != ".json", ErrorCode::InvalidArg, path,
                " is part of a Hugging Face checkpoint: pass the model directory (the one with config.json)");
  CHIMERA_CHECK(!opts.tokenizer_path.empty(), ErrorCode::InvalidArg, path,
                " is not a GGUF file, so it is read as a llama2.c checkpoint, and llama2.c checkpoints need a "
                "tokenizer file (tokenizer option / --tokenizer)");
  return load_llama2c(path, opts.tokenizer_path);
}
}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& opts) {
  std::unique_ptr<Model> m = load_by_format(path, opts);
  m->storage.prefault_mapped();
  return m;
}

}  // namespace chimera
