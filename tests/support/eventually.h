#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace shopcqrs::test_support {

// Polls `condition` every `poll` until it holds or `timeout` has passed; returns its last value.
inline bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

}  // namespace shopcqrs::test_support
