// Token tree validation and compilation.
#include "spec/token_tree.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "common/error.h"

namespace chimera {

namespace {
const TreePaths kChimera25 = {{0},       {1},       {2},       {3},          {0, 0},       {0, 1},      {0, 2},
                              {1, 0},    {1, 1},    {2, 0},    {2, 1},       {3, 0},       {0, 0, 0},   {0, 0, 1},
                              {0, 0, 2}, {0, 1, 0}, {0, 1, 1}, {0, 2, 0},    {0, 2, 1},    {1, 0, 0},   {0, 0, 0, 0},
                              {0, 0, 0, 1}, {0, 0, 0, 2}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}};

bool parse_chain(const std::string& name, int& n) {
  if (name.rfind("chain-", 0) != 0 || name.size() <= 6 || name.size() > 9) return false;
  n = 0;
  for (size_t i = 6; i < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + (name[i] - '0');
  }
  return n >= 1;
}
}  // namespace

bool is_builtin_tree(const std::string& name) {
  int n;
  return name == "chimera-25" || parse_chain(name, n);
}

TreePaths builtin_tree(const std::string& name) {
  if (name == "chimera-25") return kChimera25;
  int n;
  if (parse_chain(name, n)) {
    TreePaths p;
    for (int d = 1; d <= n; d++) p.push_back(std::vector<int>(d, 0));
    return p;
  }
  throw_error(ErrorCode::InvalidArg, "unknown tree '", name, "': use 'chimera-25', 'chain-N' or a list of paths");
}

std::string tree_paths_to_string(const TreePaths& paths) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < paths.size(); i++) {
    os << (i ? "," : "") << "[";
    for (size_t j = 0; j < paths[i].size(); j++) os << (j ? "," : "") << paths[i][j];
    os << "]";
  }
  os << "]";
  return os.str();
}

static std::string path_str(const std::vector<int>& p) { return tree_paths_to_string({p}).substr(1, std::string::npos); }

CompiledTree compile_tree(TreePaths paths, int max_depth, int max_top_k, const std::string& name) {
  CHIMERA_CHECK(!paths.empty(), ErrorCode::InvalidArg, "tree: no paths given");
  CHIMERA_CHECK(paths.size() <= 1024, ErrorCode::InvalidArg, "tree: ", paths.size(), " nodes (max 1024)");
  std::sort(paths.begin(), paths.end(), [](const std::vector<int>& a, const std::vector<int>& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  std::map<std::vector<int>, int> index;  // path -> node
  CompiledTree t;
  t.name = name;
  t.paths = paths;
  t.size = (int)paths.size() + 1;
  t.node_depth.assign(t.size, 0);
  t.node_parent.assign(t.size, -1);
  t.node_rank.assign(t.size, -1);
  t.children.assign(t.size, {});
  index[{}] = 0;
  for (size_t i = 0; i < paths.size(); i++) {
    const auto& p = paths[i];
    const int node = (int)i + 1;
    CHIMERA_CHECK(!p.empty(), ErrorCode::InvalidArg, "tree: empty path");
    CHIMERA_CHECK((int)p.size() <= max_depth, ErrorCode::InvalidArg, "tree: path ", path_str(p), " is deeper than the ",
                  max_depth, " draft heads");
    for (int k : p)
      CHIMERA_CHECK(k >= 0 && k < max_top_k, ErrorCode::InvalidArg, "tree: path ", path_str(p),
                    " has an index outside 0..", max_top_k - 1);
    CHIMERA_CHECK(!index.count(p), ErrorCode::InvalidArg, "tree: path ", path_str(p), " appears twice");
    std::vector<int> parent(p.begin(), p.end() - 1);
    auto it = index.find(parent);
    CHIMERA_CHECK(it != index.end(), ErrorCode::InvalidArg, "tree: path ", path_str(p), " has no parent path ",
                  path_str(parent), " (trees must be prefix-closed)");
    index[p] = node;
    t.node_depth[node] = (int)p.size();
    t.node_parent[node] = it->second;
    t.node_rank[node] = p.back();
    t.children[it->second].push_back(node);  // paths are sorted, so children come in rank order
    t.depth = std::max(t.depth, (int)p.size());
  }
  t.top_k.assign(t.depth, 0);
  for (int n = 1; n < t.size; n++)
    t.top_k[t.node_depth[n] - 1] = std::max(t.top_k[t.node_depth[n] - 1], t.node_rank[n] + 1);
  t.mask.assign((size_t)t.size * t.size, 0);
  for (int n = 0; n < t.size; n++)
    for (int a = n; a >= 0; a = t.node_parent[a]) t.mask[(size_t)n * t.size + a] = 1;
  return t;
}

CompiledTree compile_parents(const int* parent, int n, int max_depth, int max_top_k, const std::string& name,
                             std::vector<int>& order) {
  std::vector<std::vector<int>> path((size_t)n);
  std::vector<int> kids((size_t)n, 0);
  TreePaths paths;
  std::map<std::vector<int>, int> node_of;
  for (int u = 1; u < n; u++) {
    const int p = parent[u];
    CHIMERA_CHECK(p >= 0 && p < u, ErrorCode::Internal, "compile_parents: node ", u, " has parent ", p);
    path[(size_t)u] = path[(size_t)p];
    path[(size_t)u].push_back(kids[(size_t)p]++);
    paths.push_back(path[(size_t)u]);
    node_of[path[(size_t)u]] = u;
  }
  CompiledTree t = compile_tree(paths, max_depth, max_top_k, name);
  order.assign((size_t)t.size, 0);
  for (int i = 1; i < t.size; i++) order[(size_t)i] = node_of.at(t.paths[(size_t)i - 1]);
  return t;
}

}  // namespace chimera
