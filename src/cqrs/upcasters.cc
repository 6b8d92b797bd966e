#include "cqrs/upcasters.h"

#include <algorithm>

namespace shopcqrs::cqrs::detail {

namespace {

std::string Named(std::string_view type, int version) {
  return std::string(type) + " v" + std::to_string(version);
}

}  // namespace

void SchemaTable::AddCurrent(std::string type, int version) {
  if (type.empty()) throw UpcasterRegistrationError("an event type without a name");
  if (version < 1) {
    throw UpcasterRegistrationError("the current version of " + type + " is " +
                                    std::to_string(version) + "; versions start at 1");
  }
  auto& entry = types_[type];
  if (entry.current != 0) {
    throw UpcasterRegistrationError("the current version of " + type + " is registered twice (v" +
                                    std::to_string(entry.current) + ", v" +
                                    std::to_string(version) + ")");
  }
  entry.current = version;
}

std::size_t SchemaTable::AddStep(std::string type, int from_version, std::string to_type) {
  if (type.empty() || to_type.empty()) {
    throw UpcasterRegistrationError("an upcaster of an event type without a name");
  }
  if (from_version < 1) {
    throw UpcasterRegistrationError("an upcaster from " + Named(type, from_version) +
                                    "; versions start at 1");
  }
  if (auto it = types_.find(type); it != types_.end() && it->second.steps.contains(from_version)) {
    throw UpcasterRegistrationError("two upcasters from " + Named(type, from_version));
  }
  auto& target = *types_.try_emplace(to_type).first;
  auto& entry = types_[type];
  entry.steps.emplace(from_version, Step{steps_, &target});
  if (to_type != type) {
    auto& first = target.second.first_by_rename;
    first = first == 0 ? from_version + 1 : std::min(first, from_version + 1);
  }
  return steps_++;
}

EventSchema SchemaTable::ChainEnd(const std::pair<const std::string, Entry>& type, int version) {
  const auto* at = &type;
  while (true) {
    auto step = at->second.steps.find(version);
    if (step == at->second.steps.end()) return EventSchema{at->first, version};
    at = step->second.to;
    ++version;
  }
}

void SchemaTable::Validate() const {
  for (const auto& [name, entry] : types_) {
    for (const auto& [from, step] : entry.steps) {
      const EventSchema end = ChainEnd(*step.to, from + 1);
      const int current = types_.find(end.type)->second.current;
      const std::string chain = "the upcasters from " + Named(name, from);
      if (current == 0) {
        throw UpcasterRegistrationError(chain + " end at " + Named(end.type, end.version) +
                                        ", which is not a current event type");
      }
      if (end.version < current) {
        throw UpcasterRegistrationError(chain + " stop at " + Named(end.type, end.version) +
                                        ": no upcaster from it to the current version v" +
                                        std::to_string(current));
      }
      if (end.version > current) {
        throw UpcasterRegistrationError(chain + " lead to " + Named(end.type, end.version) +
                                        ", past its current version v" + std::to_string(current));
      }
    }
    if (entry.current == 0) continue;
    // Every version the type has had under this name reads up to the current one.
    const int first = entry.first_by_rename == 0 ? 1 : entry.first_by_rename;
    for (int v = first; v < entry.current; ++v) {
      if (!entry.steps.contains(v)) {
        throw UpcasterRegistrationError("no upcaster from " + Named(name, v) +
                                        " (a gap before the current version v" +
                                        std::to_string(entry.current) + ")");
      }
    }
  }
}

int SchemaTable::CurrentVersion(std::string_view type) const {
  auto it = types_.find(type);
  return it == types_.end() ? 0 : it->second.current;
}

UpcastError SchemaTable::InvalidVersion(std::string_view type, int version) {
  return {UpcastError::Kind::kInvalidVersion, "event " + std::string(type) +
                                                  " has schema version " + std::to_string(version) +
                                                  "; versions start at 1"};
}

UpcastError SchemaTable::UnknownType(std::string_view type) {
  return {UpcastError::Kind::kUnknownType, "unknown event type " + std::string(type)};
}

UpcastError SchemaTable::Unreadable(const std::pair<const std::string, Entry>& type, int version) {
  const auto& [name, entry] = type;
  const int newest =
      entry.current != 0 ? entry.current : (entry.steps.empty() ? 0 : entry.steps.rbegin()->first);
  if (version > newest) {
    return {UpcastError::Kind::kFutureVersion,
            "event " + Named(name, version) + " is newer than this build reads (" +
                (entry.current != 0 ? "current version v" + std::to_string(entry.current)
                                    : "retired after v" + std::to_string(newest)) +
                ")"};
  }
  return {
      UpcastError::Kind::kNoUpcaster,
      "no upcaster reads event " + Named(name, version) +
          (entry.current != 0 ? " (current version v" + std::to_string(entry.current) + ")" : "")};
}

}  // namespace shopcqrs::cqrs::detail
