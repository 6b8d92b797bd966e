#include "cqrs/dead_letters.h"

#include <algorithm>

namespace shopcqrs::cqrs {

namespace {

bool Matches(std::string_view wanted, std::string_view key) {
  if (!wanted.empty() && wanted.back() == '*') {
    wanted.remove_suffix(1);
    return key.starts_with(wanted);
  }
  return wanted == key;
}

}  // namespace

std::int64_t PassedUpTo(const std::vector<PassedVersion>& pass, std::string_view type,
                        std::string_view id, std::int64_t have) {
  for (bool moved = true; moved;) {
    moved = std::ranges::any_of(pass, [&](const PassedVersion& p) {
      return p.version == have + 1 && p.aggregate.id == id && p.aggregate.type == type;
    });
    if (moved) ++have;
  }
  return have;
}

ParkedIndex::ParkedIndex(const std::vector<DeadLetter>& letters) {
  entries_.reserve(letters.size());
  for (const auto& letter : letters) entries_.push_back({letter.first_xid, letter.keys});
}

bool ParkedIndex::Blocks(std::uint64_t bound, std::span<const std::string> keys) const {
  return std::ranges::any_of(entries_, [&](const Entry& entry) {
    if (entry.first_xid >= bound) return false;  // the token does not cover it
    return std::ranges::any_of(keys, [&](const std::string& wanted) {
      return std::ranges::any_of(entry.keys,
                                 [&](const std::string& key) { return Matches(wanted, key); });
    });
  });
}

}  // namespace shopcqrs::cqrs
