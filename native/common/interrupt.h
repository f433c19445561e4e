// How a caller stops a long native job between batches of work: `flag` is polled, and `heartbeat`,
// when set, is called at the same points so the caller can check that anyone still waits for the
// result (the addon uses it to notice a terminated worker thread, see addon/env_teardown.h).
#pragma once
#include <atomic>
#include <functional>

namespace chimera {

struct Interrupt {
  const std::atomic<bool>* flag = nullptr;
  std::function<void()> heartbeat;

  // Calls the heartbeat, then tells whether the job must stop.
  bool requested() const {
    if (heartbeat) heartbeat();
    return flag != nullptr && flag->load(std::memory_order_relaxed);
  }
};

}  // namespace chimera
