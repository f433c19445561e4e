// Lookup candidates: prompt lookup, session and corpus n-grams, in one best-first tree.
#include "spec/lookup_source.h"

#include <algorithm>
#include <queue>

namespace chimera {

namespace {

constexpr double kPriorWeight = 2.0;
constexpr double kDecay = 0.995;    // per observed step: a change of text is followed
constexpr float kMinP = 1e-3f;      // candidates below this modelled chance are not added
constexpr int kFollowers = 4;       // n-gram followers considered per node and table

uint64_t gram_key(const int32_t* t, int n) {
  uint64_t h = 0xD6E8FEB86659FD93ull * (uint64_t)(n + 7);
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uint32_t)t[i];
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  return h;
}

// Priors until counts exist: a match of L tokens is copied on with a chance rising with L; an
// n-gram follower's chance is a little under its share of the followers.
double prior(int origin, int bucket) {
  if (origin == (int)LookupOrigin::Prompt) return 0.25 + 0.08 * bucket;
  return 0.8 * (bucket + 0.5) / LookupSource::kBuckets;
}

int share_bucket(float share) { return std::min(LookupSource::kBuckets - 1, (int)(share * LookupSource::kBuckets)); }

}  // namespace

const char* lookup_origin_name(LookupOrigin o) {
  switch (o) {
    case LookupOrigin::Prompt: return "prompt";
    case LookupOrigin::Session: return "session";
    case LookupOrigin::Corpus: return "corpus";
  }
  return "?";
}

void LookupTree::clear() {
  token.clear();
  parent.clear();
  depth.clear();
  p.clear();
  origins.clear();
  bucket.clear();
}

LookupSource::LookupSource(std::shared_ptr<const NgramTable> corpus, int session_order)
    : corpus_(std::move(corpus)), session_(session_order) {}

double LookupSource::acceptance(LookupOrigin o, int bucket) const {
  const int i = (int)o;
  return (hits_[i][bucket] + kPriorWeight * prior(i, bucket)) / (trials_[i][bucket] + kPriorWeight);
}

void LookupSource::add_position(size_t end) {
  for (int L = 1; L <= kMaxMatch && (size_t)L <= end; L++) {
    Positions& p = grams_[gram_key(history_.data() + end - L, L)];
    p.previous = p.last;
    p.last = (int)end;
  }
}

void LookupSource::reset_from(const std::vector<int32_t>& history) {
  history_.clear();
  grams_.clear();
  session_ = NgramTable(session_.max_n());
  for (int32_t t : history) {
    history_.push_back(t);
    add_position(history_.size());
    session_.add_last(history_.data(), history_.size());
  }
}

void LookupSource::sync(const std::vector<int32_t>& history) {
  // Extends what is covered when history continues it (checked on the last tokens covered).
  bool continues = history_.size() <= history.size();
  for (size_t i = history_.size() > 16 ? history_.size() - 16 : 0; continues && i < history_.size(); i++)
    continues = history_[i] == history[i];
  if (!continues) return reset_from(history);
  for (size_t i = history_.size(); i < history.size(); i++) {
    history_.push_back(history[i]);
    add_position(history_.size());
    session_.add_last(history_.data(), history_.size());
  }
}

void LookupSource::build(const std::vector<int32_t>& history, int max_nodes, int max_depth, LookupTree& out) {
  out.clear();
  const int n = (int)history.size();
  out.token.push_back(history.back());
  out.parent.push_back(-1);
  out.depth.push_back(0);
  out.p.push_back(1.f);
  out.origins.push_back(0);
  out.bucket.insert(out.bucket.end(), kLookupOrigins, 0);
  if (max_nodes <= 1 || max_depth <= 0 || n < 1) return;

  // Prompt lookup: the longest suffix seen before; its continuation is one chain.
  std::vector<int32_t> chain;
  int match_bucket = 0;
  for (int L = std::min(kMaxMatch, n - 1); L >= 1 && chain.empty(); L--) {
    const auto it = grams_.find(gram_key(history.data() + n - L, L));
    if (it == grams_.end()) continue;
    const int end = it->second.last == n ? it->second.previous : it->second.last;
    if (end < 0 || end >= n) continue;
    for (int i = end; i < n && (int)chain.size() < max_depth; i++) chain.push_back(history[i]);
    match_bucket = std::min(L, kBuckets) - 1;
  }

  struct Cand {
    float p;
    int parent;
    int32_t token;
    int origin, bucket;
    int chain_next;  // for a prompt-lookup candidate: the chain index after it
    bool operator<(const Cand& o) const { return p < o.p; }
  };
  std::priority_queue<Cand> q;
  std::vector<int> chain_at;  // (nodes) the chain index that continues from the node, or -1
  chain_at.push_back(-1);
  std::vector<std::vector<int>> children(1);
  const double a_prompt = acceptance(LookupOrigin::Prompt, match_bucket);

  // Pushes node u's followers: the chain's next token if u is on it, and each table's top followers.
  auto expand = [&](int u) {
    if (out.depth[u] >= max_depth) return;
    const float pu = out.p[u];
    const int c = chain_at[u];
    if (c >= 0 && c < (int)chain.size())
      q.push({(float)(pu * a_prompt), u, chain[c], (int)LookupOrigin::Prompt, match_bucket, c + 1});
    // The node's context: the history, then its path.
    ctx_.assign(history.end() - std::min(n, 8), history.end());
    const size_t base = ctx_.size();
    for (int a = u; a > 0; a = out.parent[a]) ctx_.insert(ctx_.begin() + base, out.token[a]);
    for (int src = (int)LookupOrigin::Session; src <= (int)LookupOrigin::Corpus; src++) {
      const NgramTable* t = src == (int)LookupOrigin::Session ? &session_ : corpus_.get();
      if (!t) continue;
      t->next(ctx_.data(), ctx_.size(), kFollowers, next_);
      for (const NgramTable::Next& f : next_) {
        const int b = share_bucket(f.share);
        q.push({(float)(pu * acceptance((LookupOrigin)src, b)), u, f.token, src, b, -1});
      }
    }
  };
  if (!chain.empty()) chain_at[0] = 0;
  expand(0);
  while ((int)out.token.size() < max_nodes && !q.empty()) {
    const Cand c = q.top();
    q.pop();
    if (!(c.p >= kMinP)) break;
    int u = -1;
    for (int ch : children[(size_t)c.parent])
      if (out.token[ch] == c.token) u = ch;
    if (u >= 0) {  // another source agrees with a node already in the tree
      if (!(out.origins[u] & (1 << c.origin))) {
        out.origins[u] |= (uint8_t)(1 << c.origin);
        out.bucket[(size_t)u * kLookupOrigins + c.origin] = (uint8_t)c.bucket;
      }
      if (c.chain_next >= 0 && chain_at[u] < 0) {
        chain_at[u] = c.chain_next;
        if (c.chain_next < (int)chain.size() && out.depth[u] < max_depth)
          q.push({(float)(out.p[u] * a_prompt), u, chain[c.chain_next], (int)LookupOrigin::Prompt, match_bucket,
                  c.chain_next + 1});
      }
      continue;
    }
    u = (int)out.token.size();
    out.token.push_back(c.token);
    out.parent.push_back(c.parent);
    out.depth.push_back(out.depth[c.parent] + 1);
    out.p.push_back(c.p);
    out.origins.push_back((uint8_t)(1 << c.origin));
    out.bucket.insert(out.bucket.end(), kLookupOrigins, 0);
    out.bucket[(size_t)u * kLookupOrigins + c.origin] = (uint8_t)c.bucket;
    children[(size_t)c.parent].push_back(u);
    children.emplace_back();
    chain_at.push_back(c.chain_next);
    expand(u);
  }
}

void LookupSource::observe(const LookupTree& tree, const std::vector<int>& path) {
  for (auto& row : hits_)
    for (double& h : row) h *= kDecay;
  for (auto& row : trials_)
    for (double& t : row) t *= kDecay;
  std::vector<uint8_t> accepted((size_t)tree.size(), 0);
  for (int u : path)
    if (u >= 0 && u < tree.size()) accepted[(size_t)u] = 1;
  for (int u = 1; u < tree.size(); u++) {
    if (!accepted[(size_t)tree.parent[u]]) continue;  // never had its chance
    for (int o = 0; o < kLookupOrigins; o++) {
      if (!(tree.origins[u] & (1 << o))) continue;
      const int b = tree.bucket[(size_t)u * kLookupOrigins + o];
      trials_[o][b] += 1;
      if (accepted[(size_t)u]) hits_[o][b] += 1;
    }
  }
}

}  // namespace chimera
