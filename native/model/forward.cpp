// The LLaMA forward pass, top to bottom: embed -> L x (attention block, SwiGLU block) -> final norm
// -> output projection, for the rows asked for. Every op goes through the Backend table.
#include "model/forward.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "common/error.h"
#include "model/decoder_layer.h"

namespace chimera {

Workspace::Workspace(Backend* backend, const ModelConfig& cfg, int max_T) : backend_(backend), max_T_(max_T) {
  const size_t C = cfg.C, QD = (size_t)cfg.NH * cfg.HS, HD = cfg.HD, T = max_T, KVD = cfg.KVD();
  const size_t floats = T * (4 * C + 2 * QD + 2 * HD + 2 * KVD);
  float* p = static_cast<float*>(backend_->alloc(floats * sizeof(float)));
  block_ = p;
  x = p; p += T * C;
  xb = p; p += T * C;
  xb2 = p; p += T * C;
  out_x = p; p += T * C;
  q = p; p += T * QD;
  att = p; p += T * QD;
  hb = p; p += T * HD;
  hb2 = p; p += T * HD;
  k_new = p; p += T * KVD;
  v_new = p;
}

Workspace::~Workspace() { backend_->free(block_); }

void check_batch(const Model& model, int max_T, const KVCache& kv, const Batch& b) {
  const ModelConfig& cfg = model.config;
  CHIMERA_CHECK(b.T > 0 && b.T <= max_T, ErrorCode::InvalidArg, "batch of ", b.T, " tokens (max ", max_T, ")");
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

namespace {

// Offsets in Workspace::batch_dev (bytes): n_past, then tokens, positions and out rows (max_T each),
// then the mask (max_T x (capacity + max_T)).
struct BatchLayout {
  size_t tokens, positions, rows, mask, total;
  BatchLayout(int max_T, int capacity) {
    tokens = 64;
    positions = tokens + sizeof(int32_t) * max_T;
    rows = positions + sizeof(int32_t) * max_T;
    mask = (rows + sizeof(int32_t) * max_T + 63) / 64 * 64;
    total = mask + (size_t)max_T * (capacity + max_T);
  }
};

// A batch's index arrays and mask where the backend's ops read them.
struct StagedBatch {
  const int32_t *tokens, *positions, *out_rows;
  const uint8_t* mask;
  DeviceSlots slots_dev;
  const DeviceSlots* slots = nullptr;  // set on a device backend
};

// On a host backend the batch is used as is. On a device backend its arrays and mask are uploaded in
// one copy, and the cache length goes device-side too (DeviceSlots), so that the forward's ops can be
// recorded once and replayed for every batch of the same shape.
StagedBatch stage_batch(Backend& be, Workspace& ws, const KVCache& kv, const Batch& b) {
  StagedBatch s{b.tokens, b.positions, b.out_rows, b.mask, {}, nullptr};
  if (be.host_memory()) return s;
  const int T = b.T, N = kv.size();
  const BatchLayout L(ws.max_T(), kv.capacity());
  if (ws.batch_dev.size() < L.total) {
    ws.graphs.clear();  // recordings point into the old buffer
    ws.seen.clear();
    ws.batch_dev.reset(&be, L.total);
  }
  const size_t mask_bytes = b.mask ? (size_t)T * (N + T) : 0;
  const size_t upload = b.mask ? L.mask + mask_bytes : L.rows + sizeof(int32_t) * b.R;
  ws.batch_host.resize(std::max(upload, L.mask));
  uint8_t* h = ws.batch_host.data();
  const int32_t n_past = N;
  std::memcpy(h, &n_past, sizeof(n_past));
  std::memcpy(h + L.tokens, b.tokens, sizeof(int32_t) * T);
  std::memcpy(h + L.positions, b.positions, sizeof(int32_t) * T);
  if (b.R) std::memcpy(h + L.rows, b.out_rows, sizeof(int32_t) * b.R);
  if (mask_bytes) std::memcpy(h + L.mask, b.mask, mask_bytes);
  be.copy_to_device(ws.batch_dev.data(), h, upload);
  uint8_t* d = ws.batch_dev.data();
  s.slots_dev.n_past = reinterpret_cast<const int32_t*>(d);
  s.slots_dev.max_slots = kv.capacity();
  s.slots = &s.slots_dev;
  s.tokens = reinterpret_cast<const int32_t*>(d + L.tokens);
  s.positions = reinterpret_cast<const int32_t*>(d + L.positions);
  s.out_rows = reinterpret_cast<const int32_t*>(d + L.rows);
  s.mask = b.mask ? d + L.mask : nullptr;
  return s;
}

// Runs `ops` through a recorded graph of this batch shape when the backend records (a shape is recorded
// the second time it is seen, then replayed), else directly.
void run_recorded(Backend& be, Workspace& ws, const Workspace::GraphKey& key, const std::function<void()>& ops) {
  auto it = ws.graphs.find(key);
  if (it == ws.graphs.end() && ws.seen.count(key)) {
    if (ws.graphs.size() >= 32) ws.graphs.clear();  // batch shapes that come and go
    std::unique_ptr<OpGraph> g = be.record(ops);
    if (g) it = ws.graphs.emplace(key, std::move(g)).first;
  }
  if (it != ws.graphs.end()) {
    it->second->replay();
    return;
  }
  if (ws.seen.size() >= 256) ws.seen.clear();
  ws.seen.insert(key);
  ops();
}

}  // namespace

void forward(const Model& model, Backend& be, Workspace& ws, KVCache& kv, const Batch& b, float* logits,
             float* hidden, float* hidden_all) {
  check_batch(model, ws.max_T(), kv, b);
  const ModelConfig& cfg = model.config;
  const ModelWeights& w = model.weights;
  const int T = b.T, R = b.R, N = kv.size(), C = cfg.C;
  const StagedBatch in = stage_batch(be, ws, kv, b);

  auto ops = [&] {
    be.embed(ws.x, w.tok_embd, in.tokens, T);  // x (T, C)
    const LayerShape shape = layer_shape(cfg);
    const LayerScratch scratch{ws.xb, ws.xb2, ws.q, ws.att, ws.hb, ws.hb2, ws.k_new, ws.v_new};
    for (int l = 0; l < cfg.L; l++)
      decoder_layer_forward(be, w.layers[l], shape, scratch, ws.x, T, in.positions, kv.k(l), kv.v(l), N, in.mask,
                            false, in.slots);
    if (hidden_all) {  // every row's final hidden state, stored at row N on (the draft's keys)
      if (in.slots) {
        be.rmsnorm(ws.xb, ws.x, w.output_norm, T, C, cfg.rms_eps);
        be.store_rows(hidden_all, ws.xb, T, C, N, in.slots);
      } else {
        be.rmsnorm(hidden_all + (size_t)N * C, ws.x, w.output_norm, T, C, cfg.rms_eps);
      }
    }
    if (R == 0) return;
    be.gather_rows(ws.out_x, ws.x, in.out_rows, R, C);  // the rows asked for
    float* normed = hidden ? hidden : ws.xb;              // (R, C)
    be.rmsnorm(normed, ws.out_x, w.output_norm, R, C, cfg.rms_eps);
    if (logits) be.matmul(logits, normed, w.output, R);  // (R, V)
  };

  if (in.slots) run_recorded(be, ws, {T, R, b.mask != nullptr, logits, hidden, hidden_all, kv.k(0), kv.v(0)}, ops);
  else ops();
  kv.grow(T);
}

}  // namespace chimera
