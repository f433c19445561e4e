// Finds user stop strings in streamed text without ever emitting part of a stop string: text that
// could still turn out to begin a stop string is held back until the next piece decides it.
#pragma once
#include <string>
#include <vector>

namespace chimera {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Feeds text; returns the text that is safe to emit now. After a stop string is found, `stopped()`
  // is true and the returned text ends right before it.
  std::string push(const std::string& text);
  // Returns held-back text at the end of generation.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace chimera
