// The one way to set up Chimera speculation for a session, shared by the addon, chimera_bench and the
// tests: the draft (checked against the base), the candidate trees and whether a policy chooses among
// them as decoding goes.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "spec/draft_model.h"
#include "spec/token_tree.h"
#include "spec/tree_verify.h"

namespace chimera {

// Chimera speculative decoding for a session: the draft and the tree it fills, or (adaptive) the
// candidate trees that a TreePolicy chooses between, plain decoding included.
struct SpeculativeConfig {
  std::shared_ptr<const DraftModel> draft;
  std::vector<CompiledTree> trees;
  // tree: 'auto': trees[0] is only the starting point of a tree fitted as decoding goes (tree_fitter.h),
  // of at most reserve_nodes rows, which a TreePolicy runs or not against plain decoding.
  bool adaptive = false;
  int reserve_nodes = 0;
  VerifyMode mode = VerifyMode::Exact;
};

// Which tree to fill: "auto" (default), a built-in name ("chimera-25", "chain-N"), or custom paths.
struct TreeChoice {
  std::string name = "auto";
  TreePaths paths;  // used when custom
  bool custom = false;
};

// Expands and compiles the choice. A built-in tree deeper than the draft is cut to its heads; custom
// paths deeper than the draft are E_INVALID_ARG. (A draft made for another base is refused when the
// session builds its DraftState.)
SpeculativeConfig make_speculative_config(std::shared_ptr<const DraftModel> draft, const TreeChoice& tree,
                                          VerifyMode mode = VerifyMode::Exact);

}  // namespace chimera
