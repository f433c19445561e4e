// The LLaMA forward pass, top to bottom: embed -> L x (attention block, SwiGLU block) -> final norm
// -> output projection, for the rows asked for. Every op goes through the Backend table.
#include "forward.h"

#include <cstring>

#include "decoder_layer.h"
#include "error.h"

namespace chimera {

Workspace::Workspace(Backend* backend, const ModelConfig& cfg, int max_T) : backend_(backend), max_T_(max_T) {
  const size_t C = cfg.C, QD = (size_t)cfg.NH * cfg.HS, HD = cfg.HD, T = max_T;
  const size_t floats = T * (4 * C + 2 * QD + 2 * HD);
  float* p = static_cast<float*>(backend_->alloc(floats * sizeof(float)));
  block_ = p;
  x = p; p += T * C;
  xb = p; p += T * C;
  xb2 = p; p += T * C;
  out_x = p; p += T * C;
  q = p; p += T * QD;
  att = p; p += T * QD;
  hb = p; p += T * HD;
  hb2 = p;
}

Workspace::~Workspace() { backend_->free(block_); }

static void check_batch(const Model& model, const Workspace& ws, const KVCache& kv, const Batch& b) {
  const ModelConfig& cfg = model.config;
  CHIMERA_CHECK(b.T > 0 && b.T <= ws.max_T(), ErrorCode::InvalidArg, "batch of ", b.T, " tokens (max ", ws.max_T(), ")");
  CHIMERA_CHECK(kv.size() + b.T <= kv.capacity(), ErrorCode::ContextFull, "context full: ", kv.size(), " + ", b.T,
                " tokens exceed the context size ", kv.capacity());
  for (int i = 0; i < b.T; i++) {
    CHIMERA_CHECK(b.tokens[i] >= 0 && b.tokens[i] < cfg.V, ErrorCode::InvalidArg, "token id ", b.tokens[i],
                  " out of range [0, ", cfg.V, ")");
    CHIMERA_CHECK(b.positions[i] >= 0, ErrorCode::InvalidArg, "negative position");
  }
  for (int r = 0; r < b.R; r++)
    CHIMERA_CHECK(b.out_rows[r] >= 0 && b.out_rows[r] < b.T, ErrorCode::InvalidArg, "output row out of range");
}

void forward(const Model& model, Backend& be, Workspace& ws, KVCache& kv, const Batch& b, float* logits,
             float* hidden, float* hidden_all) {
  check_batch(model, ws, kv, b);
  const ModelConfig& cfg = model.config;
  const ModelWeights& w = model.weights;
  const int T = b.T, N = kv.size(), C = cfg.C;

  // Index arrays and mask in backend memory: one upload per batch on a device backend.
  const int32_t *tokens = b.tokens, *positions = b.positions, *out_rows = b.out_rows;
  const uint8_t* mask = b.mask;
  if (!be.host_memory()) {
    const size_t ints = (size_t)(2 * T + b.R), mask_bytes = b.mask ? (size_t)T * (N + T) : 0;
    ws.batch_host.resize(ints * sizeof(int32_t) + mask_bytes);
    uint8_t* h = ws.batch_host.data();
    std::memcpy(h, b.tokens, sizeof(int32_t) * T);
    std::memcpy(h + sizeof(int32_t) * T, b.positions, sizeof(int32_t) * T);
    if (b.R) std::memcpy(h + sizeof(int32_t) * 2 * T, b.out_rows, sizeof(int32_t) * b.R);
    if (mask_bytes) std::memcpy(h + ints * sizeof(int32_t), b.mask, mask_bytes);
    ws.batch_dev.ensure(&be, ws.batch_host.size());
    be.copy_to_device(ws.batch_dev.data(), h, ws.batch_host.size());
    tokens = reinterpret_cast<const int32_t*>(ws.batch_dev.data());
    positions = tokens + T;
    out_rows = tokens + 2 * T;
    mask = mask_bytes ? ws.batch_dev.data() + ints * sizeof(int32_t) : nullptr;
  }

  be.embed(ws.x, w.tok_embd, tokens, T);  // x (T, C)
  const LayerShape shape = layer_shape(cfg);
  const LayerScratch scratch{ws.xb, ws.xb2, ws.q, ws.att, ws.hb, ws.hb2};
  for (int l = 0; l < cfg.L; l++)
    decoder_layer_forward(be, w.layers[l], shape, scratch, ws.x, T, positions, kv.k(l), kv.v(l), N, mask);
  kv.grow(T);
  if (hidden_all) be.rmsnorm(hidden_all, ws.x, w.output_norm, T, C, cfg.rms_eps);  // (T, C)
  if (b.R == 0) return;

  // Gather the requested rows, final norm, output projection.
  be.gather_rows(ws.out_x, ws.x, out_rows, b.R, C);
  float* normed = hidden ? hidden : ws.xb;  // (R, C)
  be.rmsnorm(normed, ws.out_x, w.output_norm, b.R, C, cfg.rms_eps);
  if (logits) be.matmul(logits, normed, w.output, b.R);  // (R, V)
}

}  // namespace chimera
