#pragma once

#include <cstddef>
#include <exception>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Event versions and upcasting (docs/EVENTS.md). Every event type has a schema version of its
// own, the one it is written at today (its current version). A stored event keeps the version it
// was written at forever; whoever reads it turns an older payload into the current form through
// a chain of upcasters, each taking a payload of (type, N) to (type', N + 1), where type' is the
// type's name in version N + 1 (usually the same name). The engine knows no event type: the
// payload is whatever the adapter parses the envelope's JSON text into (UpcasterRegistry's
// Payload), and the registrations are the adapter's.
namespace shopcqrs::cqrs {

// An event type and a schema version of it. `type` views a name held by the registry (it lives
// as long as the registry does).
struct EventSchema {
  std::string_view type;
  int version = 0;
  friend bool operator==(const EventSchema&, const EventSchema&) = default;
};

// Why a stored (type, version) cannot be read at a current version. Deterministic: the same
// event fails the same way on every reader, live or rebuilding.
struct UpcastError {
  enum class Kind {
    kUnknownType,     // no current version and no upcaster knows the type
    kInvalidVersion,  // below 1
    kFutureVersion,   // newer than the current version (written by a newer build)
    kNoUpcaster,      // an older version that no registered chain starts from
    kUpcasterFailed,  // an upcaster threw (e.g. the old payload lacks a field it needs)
  };
  Kind kind;
  std::string message;
};

// A registration the registry refuses: a duplicate, a version below 1, a gap (a version between
// a type's first and current one without an upcaster), or a chain that does not end at a
// current version. A programming error, found when the registry is built.
class UpcasterRegistrationError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

// The payload-free part of a registry: which types are current at which version, and which
// step leads from (type, version) to where. Steps are numbered in registration order.
class SchemaTable {
 public:
  struct Entry;
  struct Step {
    std::size_t index = 0;  // of the upcaster, in registration order
    const std::pair<const std::string, Entry>* to = nullptr;  // the type in version + 1
  };
  struct Entry {
    int current = 0;            // 0: not written today (e.g. a name a rename retired)
    std::map<int, Step> steps;  // by from-version
    int first_by_rename = 0;    // the lowest version a rename leads into this name at (0: none)
  };

  SchemaTable() = default;
  SchemaTable(SchemaTable&&) = default;  // map nodes move with the map: Step::to stays valid
  SchemaTable& operator=(SchemaTable&&) = default;
  SchemaTable(const SchemaTable&) = delete;
  SchemaTable& operator=(const SchemaTable&) = delete;

  // Throw UpcasterRegistrationError on a duplicate or a bad argument.
  void AddCurrent(std::string type, int version);
  std::size_t AddStep(std::string type, int from_version, std::string to_type);
  // Throws UpcasterRegistrationError naming the first gap or dangling chain found.
  void Validate() const;

  int CurrentVersion(std::string_view type) const;

  // Walks from (type, version) to the current version, calling on_step(step index, from, to)
  // for each step in order; on_step answers an error to stop the walk with it.
  template <class OnStep>
  std::expected<EventSchema, UpcastError> Walk(std::string_view type, int version,
                                               OnStep&& on_step) const {
    if (version < 1) return std::unexpected(InvalidVersion(type, version));
    auto it = types_.find(type);
    if (it == types_.end()) return std::unexpected(UnknownType(type));
    const std::pair<const std::string, Entry>* at = &*it;
    while (true) {
      const Entry& entry = at->second;
      if (auto step = entry.steps.find(version); step != entry.steps.end()) {
        const EventSchema from{at->first, version};
        const EventSchema to{step->second.to->first, version + 1};
        if (auto failed = on_step(step->second.index, from, to)) {
          return std::unexpected(std::move(*failed));
        }
        at = step->second.to;
        ++version;
        continue;
      }
      if (entry.current == version) return EventSchema{at->first, version};
      return std::unexpected(Unreadable(*at, version));
    }
  }

 private:
  static UpcastError InvalidVersion(std::string_view type, int version);
  static UpcastError UnknownType(std::string_view type);
  static UpcastError Unreadable(const std::pair<const std::string, Entry>& type, int version);
  // Where the steps from (type, version) end: the last schema reached.
  static EventSchema ChainEnd(const std::pair<const std::string, Entry>& type, int version);

  std::map<std::string, Entry, std::less<>> types_;
  std::size_t steps_ = 0;
};

}  // namespace detail

// The upcasters of a set of event types, keyed by (type, from-version), and each type's current
// version. Built once by a Builder (which refuses duplicates, and gaps when built), then
// immutable: safe to use from several threads at once.
//
//   auto registry = UpcasterRegistry<Json>::Builder()
//                       .Current("OrderShipped", 2)
//                       .Add("OrderShipped", 1, [](Json& p) { ... v1 -> v2 ... })
//                       .Build();
//   auto schema = registry.Upcast(envelope.type, envelope.schema_version, payload);
//   if (!schema) fail(schema.error().message);  // else payload is schema->type at its current
//                                               // version
template <class Payload>
class UpcasterRegistry {
 public:
  // Turns a payload of its (type, from-version) into the form of (to-type, from-version + 1),
  // in place. May throw (std::exception) if the old payload is not what it expects.
  using Upcaster = std::function<void(Payload&)>;

  class Builder {
   public:
    // `type` is written today at `version` (>= 1).
    Builder& Current(std::string type, int version) {
      table_.AddCurrent(std::move(type), version);
      return *this;
    }
    // The upcaster from (type, from_version) to (type, from_version + 1).
    Builder& Add(std::string type, int from_version, Upcaster upcaster) {
      std::string to_type = type;
      return Add(std::move(type), from_version, std::move(to_type), std::move(upcaster));
    }
    // The upcaster from (type, from_version) to (to_type, from_version + 1): a rename too.
    Builder& Add(std::string type, int from_version, std::string to_type, Upcaster upcaster) {
      if (!upcaster) {
        throw UpcasterRegistrationError("the upcaster from " + type + " v" +
                                        std::to_string(from_version) + " is empty");
      }
      const auto index = table_.AddStep(std::move(type), from_version, std::move(to_type));
      if (index != upcasters_.size()) throw std::logic_error("upcaster index out of step");
      upcasters_.push_back(std::move(upcaster));
      return *this;
    }
    // Checks that every registered chain reaches its type's current version and that every
    // current type can read each of its versions from its first one; throws
    // UpcasterRegistrationError otherwise. Leaves the builder empty.
    UpcasterRegistry Build() {
      table_.Validate();
      UpcasterRegistry registry(std::move(table_), std::move(upcasters_));
      table_ = detail::SchemaTable();
      upcasters_.clear();
      return registry;
    }

   private:
    detail::SchemaTable table_;
    std::vector<Upcaster> upcasters_;
  };

  // The version `type` is written at today; 0 if it is not written today.
  int CurrentVersion(std::string_view type) const { return table_.CurrentVersion(type); }

  // The (type, version) a stored (type, version) is read as, without touching a payload: for
  // deciding whether an event concerns a reader before parsing it.
  std::expected<EventSchema, UpcastError> Resolve(std::string_view type, int version) const {
    return table_.Walk(type, version, [](std::size_t, const EventSchema&, const EventSchema&) {
      return std::optional<UpcastError>();
    });
  }

  // Applies the upcasters from (type, version) to the current version to `payload`, in order,
  // and answers the schema it is now in. An error leaves `payload` in an unspecified state.
  std::expected<EventSchema, UpcastError> Upcast(std::string_view type, int version,
                                                 Payload& payload) const {
    return table_.Walk(type, version,
                       [&](std::size_t index, const EventSchema& from,
                           const EventSchema& to) -> std::optional<UpcastError> {
                         try {
                           upcasters_[index](payload);
                           return std::nullopt;
                         } catch (const std::exception& error) {
                           return UpcastError{UpcastError::Kind::kUpcasterFailed,
                                              "upcasting " + std::string(from.type) + " v" +
                                                  std::to_string(from.version) + " to " +
                                                  std::string(to.type) + " v" +
                                                  std::to_string(to.version) + ": " + error.what()};
                         }
                       });
  }

 private:
  UpcasterRegistry(detail::SchemaTable table, std::vector<Upcaster> upcasters)
      : table_(std::move(table)), upcasters_(std::move(upcasters)) {}

  detail::SchemaTable table_;
  std::vector<Upcaster> upcasters_;
};

}  // namespace shopcqrs::cqrs
