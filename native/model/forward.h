// The base model's forward pass over a batch of tokens with explicit positions and an explicit
// attention mask over (cached + new) slots. Prefill, decode and tree verification are this one call.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_buffer.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace chimera {

// Host arrays; forward() moves them to backend memory.
struct Batch {
  const int32_t* tokens = nullptr;     // (T)
  const int32_t* positions = nullptr;  // (T) RoPE positions
  int T = 0;
  // (T, N + T) row-major, 1 = row may attend to that slot; nullptr = causal (row i sees slots <= N + i).
  const uint8_t* mask = nullptr;
  const int32_t* out_rows = nullptr;   // (R) rows whose logits / hidden states are returned
  int R = 0;
};

// Activation buffers, sized for batches of up to max_T tokens.
class Workspace {
 public:
  Workspace(Backend* backend, const ModelConfig& cfg, int max_T);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  int max_T() const { return max_T_; }

  float* x;       // (T, C) residual stream
  float* xb;      // (T, C) normed input of a sub-layer
  float* xb2;     // (T, C) sub-layer output
  float* q;       // (T, NH*HS)
  float* att;     // (T, NH*HS)
  float* hb;      // (T, HD)
  float* hb2;     // (T, HD)
  float* out_x;   // (T, C) rows gathered for output
  float* k_new;   // (T, KVD) keys / values of the batch before they are stored in the cache
  float* v_new;

  // ---- device backends ----
  // The batch in backend memory at fixed offsets: n_past, tokens, positions, out rows, mask; one upload
  // per batch from the host staging.
  BackendArray<uint8_t> batch_dev;
  std::vector<uint8_t> batch_host;
  // Recorded forward passes (CUDA graphs), by everything the recording fixes; a batch shape is
  // recorded the second time it is seen (the first run uploads the weights) and replayed after.
  using GraphKey = std::tuple<int, int, bool, const void*, const void*, const void*, const void*, const void*>;
  std::map<GraphKey, std::unique_ptr<OpGraph>> graphs;
  std::set<GraphKey> seen;

 private:
  Backend* backend_;
  int max_T_;
  void* block_ = nullptr;
};

// Runs the batch: writes K/V of the T tokens into cache slots [N, N+T) (N = kv.size()), grows the
// cache, and fills logits (R, V) and hidden (R, C) of the out rows (the final-normed states; either
// may be null), and the final-normed states of every row into rows [N, N + T) of hidden_all when
// non-null. logits, hidden and hidden_all are backend memory.
void forward(const Model& model, Backend& backend, Workspace& ws, KVCache& kv, const Batch& batch, float* logits,
             float* hidden, float* hidden_all = nullptr);

// Throws the error forward() would for this batch (at most max_T rows; ids, positions, rows, room).
void check_batch(const Model& model, int max_T, const KVCache& kv, const Batch& batch);

// One sequence's part of a multi-sequence forward: its cache, its batch, and where its outputs go
// (forward()'s logits, hidden and hidden_all).
struct SequenceForward {
  KVCache* kv = nullptr;
  Batch batch;
  float* logits = nullptr;
  float* hidden = nullptr;
  float* hidden_all = nullptr;
};

// Runs the batches of several sequences as one forward pass over all their rows (continuous
// batching): each sequence's outputs and cache equal what forward() gives it alone, bit for bit.
// ws must hold the rows of all of them; logits_scratch (R_total, V) gathers the output rows. Host-memory
// backends only.
void forward_sequences(const Model& model, Backend& backend, Workspace& ws, std::vector<float>& logits_scratch,
                       SequenceForward* seqs, int n_seqs);

}  // namespace chimera
