#include "adapters/pg_read/search_projection.h"

#include <optional>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include <fmt/format.h>

#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read {

using infra::pg::Params;
using projection_support::JsonOut;
using projection_support::kNone;
using projection_support::UuidArray;

namespace {

struct CustomerRow {
  std::string name;
  std::string email;
  std::int64_t version = 0;  // 0: not registered yet (no row)
  bool dirty = false;
};

struct OrderRow {
  std::string customer_id;
  std::string line_text;
  std::optional<std::string> tracking_number;
  std::int64_t version = 0;  // 0: no document yet (OrderPlaced not applied)
  bool dirty = false;
};

// The event types that change search documents (the others are not even parsed).
bool Searchable(std::string_view type) {
  return type == "CustomerRegistered" || type == "CustomerDetailsChanged" ||
         type == "OrderPlaced" || type == "OrderShipped";
}

// The search state a batch touches, applied in memory.
class SearchBatch {
 public:
  void NoteIds(const domain::DomainEvent& event) {
    std::visit(
        [&](const auto& e) {
          using E = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<E, domain::CustomerRegistered> ||
                        std::is_same_v<E, domain::CustomerDetailsChanged>) {
            customers_.try_emplace(e.customer_id.ToString());
          } else if constexpr (std::is_same_v<E, domain::OrderPlaced> ||
                               std::is_same_v<E, domain::OrderShipped>) {
            orders_.try_emplace(e.order_id.ToString());
          }
        },
        event.payload);
  }

  bool HasOrders() const { return !orders_.empty(); }
  bool HasCustomers() const { return !customers_.empty(); }
  std::string OrderIds() const { return KeysArray(orders_); }
  std::string CustomerIds() const { return KeysArray(customers_); }

  void LoadOrders(const infra::pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& o = orders_[r.String(i, 0)];
      o.customer_id = r.String(i, 1);
      o.line_text = r.String(i, 2);
      o.tracking_number = r.OptString(i, 3);
      o.version = r.Int64(i, 4);
    }
  }
  void LoadCustomers(const infra::pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& c = customers_[r.String(i, 0)];
      c.name = r.String(i, 1);
      c.email = r.String(i, 2);
      c.version = r.Int64(i, 3);
    }
  }

  // Applies one event unless its aggregate already has it. Answers whether it was applied.
  bool Apply(const cqrs::StoredEvent& stored, const domain::DomainEvent& event) {
    return std::visit([&](const auto& e) { return On(stored, event.aggregate_version, e); },
                      event.payload);
  }

  std::optional<std::string> CustomersJson() const {
    return projection_support::RowsJson(
        customers_, [](const auto& c) { return c.dirty; },
        [](JsonOut& out, const auto& id, const auto& c) {
          out.Field("id", id);
          out.Field("name", c.name);
          out.Field("email", c.email);
          out.Field("version", c.version);
        });
  }
  std::optional<std::string> OrdersJson() const {
    return projection_support::RowsJson(
        orders_, [](const auto& o) { return o.dirty; },
        [](JsonOut& out, const auto& id, const auto& o) {
          out.Field("id", id);
          out.Field("customer_id", o.customer_id);
          out.Field("line_text", o.line_text);
          out.Field("tracking_number", o.tracking_number);
          out.Field("version", o.version);
        });
  }
  // Customers whose details changed: their other order documents follow.
  std::optional<std::string> ChangedCustomers() const {
    std::vector<std::string> ids;
    for (const auto& [id, c] : customers_) {
      if (c.dirty) ids.push_back(id);
    }
    if (ids.empty()) return std::nullopt;
    return UuidArray(ids);
  }

 private:
  template <class Map>
  static std::string KeysArray(const Map& map) {
    std::vector<std::string> ids;
    ids.reserve(map.size());
    for (const auto& [id, row] : map) ids.push_back(id);
    return UuidArray(ids);
  }

  [[noreturn]] static void ThrowGap(const cqrs::StoredEvent& stored, std::string_view aggregate,
                                    const std::string& id, std::int64_t at, std::int64_t v) {
    throw cqrs::FatalProjectionError(fmt::format(
        "aggregate version gap: {} {} is at version {} in the search projection but event {} "
        "(position {}) has version {}",
        aggregate, id, at, stored.envelope.type, stored.position, v));
  }

  bool SetCustomer(const cqrs::StoredEvent& stored, std::int64_t v, const domain::CustomerId& id,
                   const std::string& name, const std::string& email) {
    const auto key = id.ToString();
    auto& c = customers_.at(key);
    if (v <= c.version) return false;  // redelivered
    if (v != c.version + 1) ThrowGap(stored, "Customer", key, c.version, v);
    c.name = name;
    c.email = email;
    c.version = v;
    c.dirty = true;
    return true;
  }

  template <class Event>
  bool On(const cqrs::StoredEvent&, std::int64_t, const Event&) {
    return true;  // not Searchable: no search document changes
  }
  bool On(const cqrs::StoredEvent& stored, std::int64_t v, const domain::CustomerRegistered& e) {
    return SetCustomer(stored, v, e.customer_id, e.name, e.email);
  }
  bool On(const cqrs::StoredEvent& stored, std::int64_t v,
          const domain::CustomerDetailsChanged& e) {
    return SetCustomer(stored, v, e.customer_id, e.name, e.email);
  }
  bool On(const cqrs::StoredEvent& stored, std::int64_t v, const domain::OrderPlaced& e) {
    const auto key = e.order_id.ToString();
    auto& o = orders_.at(key);
    if (v <= o.version) return false;  // redelivered
    // The creating event: version 1 of an order without a document.
    if (o.version != 0 || v != 1) ThrowGap(stored, "Order", key, o.version, v);
    o.customer_id = e.customer_id.ToString();
    o.line_text.clear();
    for (const auto& l : e.lines) {
      if (!o.line_text.empty()) o.line_text.push_back(' ');
      o.line_text += l.sku;
      o.line_text.push_back(' ');
      o.line_text += l.product_name;
    }
    o.version = v;
    o.dirty = true;
    return true;
  }
  bool On(const cqrs::StoredEvent& stored, std::int64_t v, const domain::OrderShipped& e) {
    const auto key = e.order_id.ToString();
    auto& o = orders_.at(key);
    if (v <= o.version) return false;  // redelivered
    // Events in between (the payment) do not touch the document, so only "placed before"
    // can be checked.
    if (o.version == 0) ThrowGap(stored, "Order", key, o.version, v);
    o.tracking_number = e.tracking_number;
    o.version = v;
    o.dirty = true;
    return true;
  }

  std::unordered_map<std::string, CustomerRow> customers_;
  std::unordered_map<std::string, OrderRow> orders_;
};

}  // namespace

SearchProjection::SearchProjection(std::string conninfo, std::string name)
    : name_(std::move(name)), connection_(std::move(conninfo)) {}

SearchProjection::~SearchProjection() = default;

void SearchProjection::Reset() { connection_.Reset(); }

cqrs::Checkpoint SearchProjection::LoadCheckpoint() { return connection_.LoadCheckpoint(name_); }

SearchProjection::Timings SearchProjection::GetTimings() const {
  std::lock_guard lock(timings_mutex_);
  return timings_;
}

void SearchProjection::Apply(const cqrs::Checkpoint& from,
                             const std::vector<cqrs::StoredEvent>& events,
                             const cqrs::Checkpoint& checkpoint) {
  using Clock = Timings::Clock;
  Clock::time_point t[6];
  t[0] = Clock::now();
  const auto decoded = projection_support::DecodeWanted(events, &Searchable);
  SearchBatch state;
  for (const auto& event : decoded) {
    if (event) state.NoteIds(*event);
  }
  t[1] = Clock::now();

  projection_support::BatchTransaction tx(connection_, name_, from);
  const auto orders_at = state.HasOrders()
                             ? tx.Load(queries::kLoadSearchOrders, Params().Add(state.OrderIds()))
                             : kNone;
  const auto customers_at = state.HasCustomers() ? tx.Load(queries::kLoadSearchCustomers,
                                                           Params().Add(state.CustomerIds()))
                                                 : kNone;
  // Nothing to load (no event of the batch changes a document): one round trip.
  auto loaded = tx.RunLoads();
  if (orders_at != kNone) state.LoadOrders(loaded[orders_at]);
  if (customers_at != kNone) state.LoadCustomers(loaded[customers_at]);
  t[2] = Clock::now();

  // An event search has no use for counts as applied: there is nothing to do.
  std::int64_t applied = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!decoded[i] || state.Apply(events[i], *decoded[i])) ++applied;
  }
  t[3] = Clock::now();

  // Customers first: the order upsert builds the documents from search_customers.
  auto& write = tx.Writes();
  if (auto rows = state.CustomersJson()) {
    write.Add(queries::kUpsertSearchCustomers, Params().Add(*rows));
  }
  if (auto rows = state.OrdersJson()) write.Add(queries::kUpsertSearchOrders, Params().Add(*rows));
  if (auto ids = state.ChangedCustomers()) {
    write.Add(queries::kPropagateSearchCustomers, Params().Add(*ids));
  }
  t[4] = Clock::now();
  tx.Commit(checkpoint, applied);
  t[5] = Clock::now();
  std::lock_guard lock(timings_mutex_);
  timings_.AddBatch(events.size(), t);
}

}  // namespace shopcqrs::adapters::pg_read
