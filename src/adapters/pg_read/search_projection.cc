#include "adapters/pg_read/search_projection.h"

#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include <fmt/format.h>

#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read {

using infra::pg::Params;
using projection_support::BatchTransaction;
using projection_support::Col;
using projection_support::LoadRows;

namespace {

struct CustomerRow : projection_support::RowState {  // version 0: not registered yet
  std::string name;
  std::string email;
};

struct OrderRow : projection_support::RowState {  // version 0: OrderPlaced not applied yet
  std::string customer_id;
  std::string line_text;
  std::optional<std::string> tracking_number;
  std::int64_t placed_at = 0;  // ms since the epoch (OrderPlaced's time), for ranking ties
};

// The columns of the rows: what kLoadSearchCustomers and kLoadSearchOrders answer after the id,
// and what kUpsertSearchCustomers and kUpsertSearchOrders take.
constexpr auto kCustomerColumns =
    std::tuple(Col("name", &CustomerRow::name), Col("email", &CustomerRow::email),
               Col("version", &CustomerRow::version));
constexpr auto kOrderColumns =
    std::tuple(Col("customer_id", &OrderRow::customer_id), Col("line_text", &OrderRow::line_text),
               Col("tracking_number", &OrderRow::tracking_number),
               Col("placed_at", &OrderRow::placed_at), Col("version", &OrderRow::version));

// The event types that change search documents (the others are not even parsed).
bool Searchable(std::string_view type) {
  return type == "CustomerRegistered" || type == "CustomerDetailsChanged" ||
         type == "OrderPlaced" || type == "OrderShipped";
}

// The rows the projection keeps between batches (projection_support::RowCache).
struct SearchCache final : projection_support::BatchCache {
  projection_support::RowCache<CustomerRow> customers;
  projection_support::RowCache<OrderRow> orders;
  void Clear() override {
    customers.Clear();
    orders.Clear();
  }
};

// The search state a batch touches, applied in memory.
class SearchBatch final : public projection_support::Batch {
 public:
  using Cache = SearchCache;

  SearchBatch(const std::vector<cqrs::StoredEvent>& events, Cache& cache)
      : cache_(cache), decoded_(projection_support::DecodeWanted(events, &Searchable)) {
    for (const auto& event : decoded_) {
      if (event) NoteIds(*event);
    }
  }

  void QueueLoads(BatchTransaction& tx, bool fresh) override {
    // A customer or order whose creating event is the first of it in a fresh batch has no row
    // in the store yet. With nothing left to load: one round trip.
    if (fresh) {
      for (const auto* id : created_customers_) customers_.at(*id).known = true;
      for (const auto* id : created_orders_) orders_.at(*id).known = true;
    }
    LoadRows(tx, queries::kLoadSearchOrders, orders_, kOrderColumns, &cache_.orders);
    LoadRows(tx, queries::kLoadSearchCustomers, customers_, kCustomerColumns, &cache_.customers);
  }

  void Remember() override {
    projection_support::RememberRows(orders_, cache_.orders);
    projection_support::RememberRows(customers_, cache_.customers);
  }

  std::int64_t ApplyEvents(const std::vector<cqrs::StoredEvent>& events) override {
    // An event search has no use for counts as applied: there is nothing to do.
    std::int64_t applied = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (!decoded_[i] || Apply(events[i], *decoded_[i])) ++applied;
    }
    return applied;
  }

  void QueueWrites(BatchTransaction& tx) override {
    // Customers first: the order upsert builds the documents from search_customers.
    auto& write = tx.Writes();
    if (auto rows = CustomersJson()) {
      write.Add(queries::kUpsertSearchCustomers, Params().Add(*rows));
    }
    if (auto rows = OrdersJson()) write.Add(queries::kUpsertSearchOrders, Params().Add(*rows));
    if (auto ids = ChangedCustomers()) {
      write.Add(queries::kPropagateSearchCustomers, Params().Add(*ids));
    }
  }

 private:
  void NoteIds(const domain::DomainEvent& event) {
    std::visit(
        [&](const auto& e) {
          using E = std::decay_t<decltype(e)>;
          const bool creating = event.aggregate_version == 1;
          if constexpr (std::is_same_v<E, domain::CustomerRegistered> ||
                        std::is_same_v<E, domain::CustomerDetailsChanged>) {
            const auto [it, inserted] = customers_.try_emplace(e.customer_id.ToString());
            if (inserted && creating) created_customers_.push_back(&it->first);
          } else if constexpr (std::is_same_v<E, domain::OrderPlaced> ||
                               std::is_same_v<E, domain::OrderShipped>) {
            const auto [it, inserted] = orders_.try_emplace(e.order_id.ToString());
            if (inserted && creating) created_orders_.push_back(&it->first);
          }
        },
        event.payload);
  }

  // Applies one event unless its aggregate already has it. Answers whether it was applied.
  bool Apply(const cqrs::StoredEvent& stored, const domain::DomainEvent& event) {
    at_ = event.occurred_at;
    return std::visit([&](const auto& e) { return On(stored, event.aggregate_version, e); },
                      event.payload);
  }

  std::optional<std::string> CustomersJson() const {
    return projection_support::ColumnsJson(customers_, &CustomerRow::dirty, kCustomerColumns);
  }
  std::optional<std::string> OrdersJson() const {
    return projection_support::ColumnsJson(orders_, &OrderRow::dirty, kOrderColumns);
  }
  // Customers whose details changed: their other order documents follow.
  std::optional<std::string> ChangedCustomers() const {
    return projection_support::KeysArrayWhere(customers_, &CustomerRow::dirty);
  }

  [[noreturn]] static void ThrowGap(const cqrs::StoredEvent& stored, std::string_view aggregate,
                                    const std::string& id, std::int64_t at, std::int64_t v) {
    throw cqrs::DeterministicApplyError(fmt::format(
        "aggregate version gap: {} {} is at version {} in the search projection but event {} "
        "(position {}) has version {}",
        aggregate, id, at, stored.envelope.type, stored.position, v));
  }

  bool SetCustomer(const cqrs::StoredEvent& stored, std::int64_t v, const domain::CustomerId& id,
                   const std::string& name, const std::string& email) {
    const auto key = id.ToString();
    auto& c = customers_.at(key);
    if (v <= c.version) return false;                                            // redelivered
    if (v != c.version + 1) c.version = PassedUpTo("Customer", key, c.version);  // skipped ones
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
    o.placed_at = at_.time_since_epoch().count();
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
  Cache& cache_;
  std::vector<std::optional<domain::DomainEvent>> decoded_;
  domain::Timestamp at_{};  // the time of the event being applied
  // Customers and orders whose first event in the batch is their creating one (version 1).
  std::vector<const std::string*> created_customers_;
  std::vector<const std::string*> created_orders_;
};

}  // namespace

SearchProjection::SearchProjection(std::string conninfo, std::string name)
    : BatchProjection(std::move(conninfo), std::move(name),
                      &projection_support::MakeBatch<SearchBatch>,
                      &projection_support::MakeCache<SearchBatch>) {}

}  // namespace shopcqrs::adapters::pg_read
