// The one way to set up Chimera speculation for a session, shared by the addon, chimera_bench and the
// tests: the draft (checked against the base), the candidate trees and whether a policy chooses among
// them as decoding goes.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "spec/draft_model.h"
#include "spec/ngram_table.h"
#include "spec/token_tree.h"
#include "spec/tree_verify.h"

namespace chimera {

// Lookup decoding (lookup_source.h): candidates from the session's tokens and an optional corpus table.
struct LookupConfig {
  std::shared_ptr<const NgramTable> corpus;  // may be null
  int max_nodes = 32;                        // rows a lookup step may verify, the root included
  int max_depth = 8;
  bool always = false;  // verify every candidate tree, even where plain decoding models faster
};

// Speculative decoding for a session: a Chimera draft and the tree it fills, or (adaptive) the
// candidate trees that a TreePolicy chooses between, plain decoding included; or lookup without a
// draft.
struct SpeculativeConfig {
  std::shared_ptr<const DraftModel> draft;
  std::vector<CompiledTree> trees;
  // tree: 'auto': trees[0] is only the starting point of a tree fitted as decoding goes (tree_fitter.h),
  // of at most reserve_nodes rows, which a TreePolicy runs or not against plain decoding.
  bool adaptive = false;
  int reserve_nodes = 0;
  VerifyMode mode = VerifyMode::Exact;
  std::shared_ptr<const LookupConfig> lookup;  // lookup decoding (without a draft)
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
