#include "adapters/system/system.h"

#include <random>

namespace shopcqrs::adapters::system {

domain::Timestamp SystemClock::Now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

domain::Uuid NewRandomUuid() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  const auto hi = rng();
  const auto lo = rng();
  return domain::Uuid::V4FromRandom(hi, lo);
}

domain::Uuid RandomIds::NewId() { return NewRandomUuid(); }

}  // namespace shopcqrs::adapters::system
