#include "adapters/system/system.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace shopcqrs::adapters::system {

domain::Timestamp SystemClock::Now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

domain::Uuid NewRandomUuid() {
  // Client-visible ids come from the kernel's CSPRNG (getrandom), not from a seeded PRNG: they
  // cannot be predicted from ids seen before.
  std::uint64_t words[2];
  auto* bytes = reinterpret_cast<unsigned char*>(words);
  std::size_t filled = 0;
  while (filled < sizeof words) {
    const ssize_t got = ::getrandom(bytes + filled, sizeof words - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    filled += static_cast<std::size_t>(got);
  }
  return domain::Uuid::V4FromRandom(words[0], words[1]);
}

domain::Uuid RandomIds::NewId() { return NewRandomUuid(); }

}  // namespace shopcqrs::adapters::system
