// Static token trees for speculative verification (Medusa/Chimera "choices"). A tree is a list of
// paths of top-k indices: [[0],[1],[0,0]] means the root's children are head 0's top-1 and top-2
// guesses, and the top-1 child has head 1's top-1 guess as its child. Compiled once into the tables
// the decoding step indexes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chimera {

using TreePaths = std::vector<std::vector<int>>;

struct CompiledTree {
  std::string name;
  TreePaths paths;                      // sorted by (length, lexicographic)
  int size = 0;                         // nodes including the root (node 0)
  int depth = 0;                        // longest path (heads needed)
  std::vector<int> node_depth;          // (size) 0 for the root
  std::vector<int> node_parent;         // (size) -1 for the root
  std::vector<int> node_rank;           // (size) top-k index of the node within its head (root: -1)
  std::vector<std::vector<int>> children;  // (size) child nodes in tree order (by rank)
  std::vector<int> top_k;               // (depth) how many guesses head d must provide
  std::vector<uint8_t> mask;            // (size, size) 1 where row may attend column (self and ancestors)
};

// Built-in trees: "chimera-25" (the 25-node tree of the Chimera reference), "chain-N" (N >= 1).
bool is_builtin_tree(const std::string& name);
TreePaths builtin_tree(const std::string& name);

// Validates (non-empty, each index >= 0 and < max_top_k, depth <= max_depth, prefix-closed, no
// duplicates) and compiles. Throws E_INVALID_ARG with the offending path.
CompiledTree compile_tree(TreePaths paths, int max_depth, int max_top_k = 64, const std::string& name = "custom");

// A tree given by each node's parent (parent[0] = -1 for the root, every parent before its children,
// a node's children ranked in the order they appear), compiled; order[i] = the given node that compiled
// node i is (compile_tree numbers nodes by sorted path).
CompiledTree compile_parents(const int* parent, int n, int max_depth, int max_top_k, const std::string& name,
                             std::vector<int>& order);

std::string tree_paths_to_string(const TreePaths& paths);

}  // namespace chimera
