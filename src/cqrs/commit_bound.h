#pragma once

#include <cstdint>

// A commit bound names a point of the write server's commit order: "every transaction with an xid
// below it has finished". Consistency tokens carry one, projections store the one they reached,
// and a token is satisfied by a store bound at least as large.
//
// An xid alone is not enough across a crash of the write server: a transaction that took an xid
// and ended just before the crash leaves nothing durable, so recovery may hand its xid out again
// -- below bounds that read stores already hold, which would then satisfy the new command's token
// before its events are applied. So a bound is composed of the write server's epoch (a number
// that grows with every start of it, recorded in the write database: migration 0002 of pg_write,
// shopcqrs_write_epoch()) and the xid8:
//
//   bound = epoch << kEpochShift | xid
//
// and compared as one number: a bound of a later epoch is above every bound of an earlier one.
// That is sound because a command's token is handed out only after its commit is durable, and the
// first bound a reader computes in a new epoch is above every xid that survived the crash.
// 44 bits of xid8 (17.6e12 transactions) and 19 of epoch keep the value below 2^63 (it is
// stored in bigint columns).
namespace shopcqrs::cqrs {

inline constexpr int kEpochShift = 44;
inline constexpr std::uint64_t kXidMask = (std::uint64_t{1} << kEpochShift) - 1;
// 19 bits of epoch: the composed bound stays below 2^63.
inline constexpr std::uint64_t kMaxEpoch = (std::uint64_t{1} << 19) - 1;

constexpr std::uint64_t ComposeBound(std::uint64_t epoch, std::uint64_t xid) {
  return epoch << kEpochShift | (xid & kXidMask);
}
constexpr std::uint64_t BoundEpoch(std::uint64_t bound) { return bound >> kEpochShift; }
constexpr std::uint64_t BoundXid(std::uint64_t bound) { return bound & kXidMask; }

}  // namespace shopcqrs::cqrs
