// Speculation set-up: 'auto' expansion, built-in trees cut to the draft, compilation.
#include "spec/speculative_config.h"

#include "common/error.h"

namespace chimera {

const char* const kAutoTrees[4] = {"chain-1", "chain-2", "chain-3", "chimera-25"};

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
    // Plain decoding and these trees, chosen as decoding goes by measured tokens/s; trees that the cut
    // to the draft's heads makes equal to the previous one are dropped.
    spec.adaptive = true;
    for (const char* name : kAutoTrees) {
      CompiledTree t = builtin_cut_to(name, K);
      if (t.depth >= 1 && (spec.trees.empty() || t.size != spec.trees.back().size)) spec.trees.push_back(std::move(t));
    }
  } else {
    spec.trees.push_back(builtin_cut_to(tree.name, K));
  }
  return spec;
}

}  // namespace chimera
