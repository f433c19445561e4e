// Speculation set-up: 'auto' expansion, built-in trees cut to the draft, compilation.
#include "spec/speculative_config.h"

#include "common/error.h"
#include "spec/tree_fitter.h"

namespace chimera {

namespace {

CompiledTree builtin_cut_to(const std::string& name, int heads) {
  TreePaths cut;
  for (auto& p : builtin_tree(name))
    if ((int)p.size() <= heads) cut.push_back(p);
  return compile_tree(cut, heads, 64, name);
}

}  // namespace

SpeculativeConfig make_speculative_config(std::shared_ptr<const DraftModel> draft, const TreeChoice& tree,
                                          VerifyMode mode) {
  CHIMERA_CHECK(draft != nullptr, ErrorCode::InvalidArg, "speculation needs a draft");
  // The draft is checked against the base where it meets it: DraftState, which every session builds.
  SpeculativeConfig spec;
  spec.draft = std::move(draft);
  spec.mode = mode;
  const int K = spec.draft->config.K;
  if (tree.custom) {
    spec.trees.push_back(compile_tree(tree.paths, K, 64, "custom"));
  } else if (tree.name == "auto") {
    // A tree fitted to the measured costs and acceptance, against plain decoding; it starts as chain-1.
    spec.adaptive = true;
    spec.reserve_nodes = TreeFitter::kMaxNodes + 1;
    CompiledTree start = builtin_cut_to("chain-1", K);
    start.name = "auto";
    spec.trees.push_back(std::move(start));
  } else {
    spec.trees.push_back(builtin_cut_to(tree.name, K));
  }
  return spec;
}

}  // namespace chimera
