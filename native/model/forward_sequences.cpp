// The forward pass over the rows of several sequences at once: what continuous batching runs. The
// weights are read once for every sequence's rows; attention stays per sequence.
#include <cstring>

#include "common/error.h"
#include "model/decoder_layer.h"
#include "model/forward.h"

namespace chimera {

void forward_sequences(const Model& model, Backend& be, Workspace& ws, std::vector<float>& logits_scratch,
                       SequenceForward* seqs, int n_seqs) {
  CHIMERA_CHECK(be.host_memory(), ErrorCode::Internal, "forward_sequences: host-memory backends only");
  const ModelConfig& cfg = model.config;
  const ModelWeights& w = model.weights;
  const int C = cfg.C, V = cfg.V;
  int T = 0, R = 0;
  for (int i = 0; i < n_seqs; i++) {
    check_batch(model, ws.max_T(), *seqs[i].kv, seqs[i].batch);
    T += seqs[i].batch.T;
    R += seqs[i].batch.R;
  }
  CHIMERA_CHECK(T <= ws.max_T(), ErrorCode::Internal, "forward_sequences: ", T, " rows exceed the workspace's ",
                ws.max_T());
  thread_local std::vector<int32_t> tokens, positions, out_rows;
  thread_local std::vector<LayerSequence> layer_seqs;
  tokens.clear();
  positions.clear();
  out_rows.clear();
  layer_seqs.resize((size_t)n_seqs);
  for (int i = 0; i < n_seqs; i++) {
    const Batch& b = seqs[i].batch;
    KVCache& kv = *seqs[i].kv;
    const int row0 = (int)tokens.size();
    for (int r = 0; r < b.R; r++) out_rows.push_back(row0 + b.out_rows[r]);
    tokens.insert(tokens.end(), b.tokens, b.tokens + b.T);
    positions.insert(positions.end(), b.positions, b.positions + b.T);
    layer_seqs[(size_t)i] = LayerSequence{row0, b.T, nullptr, nullptr, kv.size(), b.mask};
  }

  be.embed(ws.x, w.tok_embd, tokens.data(), T);
  const LayerShape shape = layer_shape(cfg);
  const LayerScratch scratch{ws.xb, ws.xb2, ws.q, ws.att, ws.hb, ws.hb2, ws.k_new, ws.v_new};
  for (int l = 0; l < cfg.L; l++) {
    for (int i = 0; i < n_seqs; i++) {
      layer_seqs[(size_t)i].k_cache = seqs[i].kv->k(l);
      layer_seqs[(size_t)i].v_cache = seqs[i].kv->v(l);
    }
    decoder_layer_forward_sequences(be, w.layers[l], shape, scratch, ws.x, T, positions.data(), layer_seqs.data(),
                                    n_seqs);
  }
  for (int i = 0; i < n_seqs; i++) {  // every row's final hidden state, at the sequence's slots
    const LayerSequence& q = layer_seqs[(size_t)i];
    if (seqs[i].hidden_all)
      be.rmsnorm(seqs[i].hidden_all + (size_t)q.n_past * C, ws.x + (size_t)q.row0 * C, w.output_norm, q.T, C,
                 cfg.rms_eps);
  }
  if (R > 0) {
    be.gather_rows(ws.out_x, ws.x, out_rows.data(), R, C);
    be.rmsnorm(ws.xb, ws.out_x, w.output_norm, R, C, cfg.rms_eps);  // (R, C)
    bool any_logits = false;
    for (int i = 0; i < n_seqs; i++) any_logits = any_logits || (seqs[i].logits && seqs[i].batch.R > 0);
    if (any_logits) {
      if (logits_scratch.size() < (size_t)R * V) logits_scratch.resize((size_t)R * V);
      be.matmul(logits_scratch.data(), ws.xb, w.output, R);  // (R, V)
    }
    for (int i = 0, r0 = 0; i < n_seqs; r0 += seqs[i].batch.R, i++) {
      const int Ri = seqs[i].batch.R;
      if (Ri == 0) continue;
      if (seqs[i].hidden) std::memcpy(seqs[i].hidden, ws.xb + (size_t)r0 * C, sizeof(float) * Ri * C);
      if (seqs[i].logits)
        std::memcpy(seqs[i].logits, logits_scratch.data() + (size_t)r0 * V, sizeof(float) * Ri * V);
    }
  }
  for (int i = 0; i < n_seqs; i++) seqs[i].kv->grow(seqs[i].batch.T);
}

}  // namespace chimera
