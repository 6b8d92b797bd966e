#include "adapters/pg_read/projection.h"

#include <charconv>
#include <exception>
#include <future>
#include <map>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/pg_read/copy_text.h"
#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read {

using infra::pg::Params;
using projection_support::AppendColumnsCopy;
using projection_support::BatchTransaction;
using projection_support::Col;
using projection_support::ColumnsJson;
using projection_support::JsonOut;
using projection_support::LoadRows;
using projection_support::RawJsonCol;

namespace {

// Whether a batch of `events` events from `from` starts building the projection from zero.
bool StartsBuildFromZero(const cqrs::Checkpoint& from, std::size_t events) {
  return from == cqrs::Checkpoint{} && events >= kBuildFromZeroEvents;
}

// A table with at least this many changed rows in a batch gets them by COPY (see QueueWrites).
constexpr std::size_t kCopyRowsFrom = 256;

struct CustomerRow : projection_support::RowState {
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::int64_t order_count = 0;
  std::int64_t lifetime_value_cents = 0;
  bool details_changed = false;
  std::int64_t stored = 0;  // 1: the store has a row (a placeholder too) from an earlier batch
};

struct ProductRow : projection_support::RowState {
  std::optional<std::string> sku;
  std::optional<std::string> name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
  std::int64_t units_sold = 0;
  std::int64_t revenue_cents = 0;
};

struct OrderRow : projection_support::RowState {
  std::string customer_id;
  std::optional<std::string> customer_name;
  std::optional<std::string> customer_email;
  std::string status;
  std::string lines;  // JSON array text
  std::int64_t item_count = 0;
  std::int64_t total_cents = 0;
  std::int64_t placed_at = 0;  // ms since the epoch
  std::optional<std::int64_t> paid_at;
  std::optional<std::int64_t> shipped_at;
  std::optional<std::int64_t> delivered_at;
  std::optional<std::int64_t> cancelled_at;
  std::optional<std::string> payment_reference;
  std::optional<std::string> tracking_number;
  std::optional<std::string> cancel_reason;
  std::string line_text;
  bool placed = false;  // placed in this batch: a new row, written whole
};

// The columns of the rows: what kLoadOrders (kOrderLoadColumns), kLoadCustomers and
// kLoadProducts answer after the id, and what the writes take: kUpsertOrders (kOrderColumns,
// orders placed in the batch), kUpdateOrders (kOrderUpdateColumns, orders already stored),
// kUpsertCustomers and kUpsertProducts -- from JSON or from their COPY staging tables.
constexpr auto kOrderColumns = std::tuple(
    Col("customer_id", &OrderRow::customer_id), Col("customer_name", &OrderRow::customer_name),
    Col("customer_email", &OrderRow::customer_email), Col("status", &OrderRow::status),
    RawJsonCol("lines", &OrderRow::lines), Col("item_count", &OrderRow::item_count),
    Col("total_cents", &OrderRow::total_cents), Col("placed_at", &OrderRow::placed_at),
    Col("paid_at", &OrderRow::paid_at), Col("shipped_at", &OrderRow::shipped_at),
    Col("delivered_at", &OrderRow::delivered_at), Col("cancelled_at", &OrderRow::cancelled_at),
    Col("payment_reference", &OrderRow::payment_reference),
    Col("tracking_number", &OrderRow::tracking_number),
    Col("cancel_reason", &OrderRow::cancel_reason), Col("version", &OrderRow::version),
    Col("line_text", &OrderRow::line_text));
constexpr auto kOrderLoadColumns = std::tuple(
    Col("customer_id", &OrderRow::customer_id), Col("customer_name", &OrderRow::customer_name),
    Col("customer_email", &OrderRow::customer_email), Col("status", &OrderRow::status),
    Col("total_cents", &OrderRow::total_cents), Col("paid_at", &OrderRow::paid_at),
    Col("shipped_at", &OrderRow::shipped_at), Col("delivered_at", &OrderRow::delivered_at),
    Col("cancelled_at", &OrderRow::cancelled_at),
    Col("payment_reference", &OrderRow::payment_reference),
    Col("tracking_number", &OrderRow::tracking_number),
    Col("cancel_reason", &OrderRow::cancel_reason), Col("version", &OrderRow::version));
constexpr auto kOrderUpdateColumns = std::tuple(
    Col("customer_name", &OrderRow::customer_name),
    Col("customer_email", &OrderRow::customer_email), Col("status", &OrderRow::status),
    Col("paid_at", &OrderRow::paid_at), Col("shipped_at", &OrderRow::shipped_at),
    Col("delivered_at", &OrderRow::delivered_at), Col("cancelled_at", &OrderRow::cancelled_at),
    Col("payment_reference", &OrderRow::payment_reference),
    Col("tracking_number", &OrderRow::tracking_number),
    Col("cancel_reason", &OrderRow::cancel_reason), Col("version", &OrderRow::version));
constexpr auto kCustomerColumns =
    std::tuple(Col("name", &CustomerRow::name), Col("email", &CustomerRow::email),
               Col("order_count", &CustomerRow::order_count),
               Col("lifetime_value_cents", &CustomerRow::lifetime_value_cents),
               Col("version", &CustomerRow::version));
// kLoadCustomers also answers whether the row is stored.
constexpr auto kCustomerLoadColumns =
    std::tuple_cat(kCustomerColumns, std::tuple(Col("stored", &CustomerRow::stored)));
constexpr auto kProductColumns = std::tuple(
    Col("sku", &ProductRow::sku), Col("name", &ProductRow::name),
    Col("price_cents", &ProductRow::price_cents), Col("stock", &ProductRow::stock),
    Col("units_sold", &ProductRow::units_sold), Col("revenue_cents", &ProductRow::revenue_cents),
    Col("version", &ProductRow::version));

struct DayDelta {
  std::int64_t placed = 0;
  std::int64_t paid = 0;
  std::int64_t revenue = 0;
};

std::int64_t Ms(domain::Timestamp t) { return t.time_since_epoch().count(); }

// `ms` since the epoch as timestamptz input, UTC ("2026-01-31 23:59:59.123+00").
void AppendTimestamp(std::string& out, std::int64_t ms) {
  const std::chrono::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds(ms)};
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+00",
                 static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                 static_cast<unsigned>(ymd.day()), hms.hours().count(), hms.minutes().count(),
                 hms.seconds().count(), hms.subseconds().count());
}
int DayOf(domain::Timestamp t) {
  return static_cast<int>(std::chrono::floor<std::chrono::days>(t).time_since_epoch().count());
}

// The rows the projection keeps between batches (projection_support::RowCache).
struct ReadPgCache final : projection_support::BatchCache {
  projection_support::RowCache<CustomerRow> customers;
  projection_support::RowCache<ProductRow> products;
  projection_support::RowCache<OrderRow> orders;
  void Clear() override {
    customers.Clear();
    products.Clear();
    orders.Clear();
  }
};

// The whole projection state a batch touches, applied in memory.
class BatchState final : public projection_support::Batch {
 public:
  using Cache = ReadPgCache;

  BatchState(const std::vector<cqrs::StoredEvent>& events, Cache& cache)
      : cache_(cache), decoded_(projection_support::DecodeAll(events)) {
    for (const auto& event : decoded_) NoteIds(event);
  }

  void QueueLoads(BatchTransaction& tx, bool fresh) override {
    if (StartsBuildFromZero(tx.from(), decoded_.size())) {
      // Before any write of the batch: its rows go in without the secondary indexes.
      tx.Load(queries::kDeferIndexes, Params().Add(tx.name()), [](const infra::pg::Result&) {});
    }
    // An order whose OrderPlaced is in a fresh batch has no row in the store yet (only that
    // event creates one).
    if (fresh) {
      for (const auto* id : placed_first_) orders_.at(*id).known = true;
    }
    LoadRows(tx, queries::kLoadOrders, orders_, kOrderLoadColumns, &cache_.orders);
    LoadRows(tx, queries::kLoadCustomers, customers_, kCustomerLoadColumns, &cache_.customers);
    LoadRows(tx, queries::kLoadProducts, products_, kProductColumns, &cache_.products);
  }

  void Remember() override {
    // What the store holds now: a customer row the batch wrote is stored from now on.
    for (auto& [id, c] : customers_) {
      if (c.dirty) c.stored = 1;
    }
    projection_support::RememberRows(orders_, cache_.orders);
    projection_support::RememberRows(customers_, cache_.customers);
    projection_support::RememberRows(products_, cache_.products);
  }

  std::int64_t ApplyEvents(const std::vector<cqrs::StoredEvent>& events) override {
    std::int64_t applied = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (Apply(events[i], decoded_[i])) ++applied;
    }
    Finish();
    return applied;
  }

  void QueueWrites(BatchTransaction& tx) override {
    // A table with many changed rows (catching up) sends them by COPY into its staging table:
    // one round trip more, but no JSON for the server to parse.
    std::string copy;
    std::vector<std::pair<const char*, std::string>> copies;  // COPY statement, rows
    std::vector<const char*> from_stage;
    auto stage = [&](const char* copy_sql, const char* write_sql, auto append) {
      copy.clear();
      if (append(copy) < kCopyRowsFrom) return false;
      copies.emplace_back(copy_sql, std::move(copy));
      from_stage.push_back(write_sql);
      return true;
    };
    const bool stage_new = NewOrdersCopy(copy) >= kCopyRowsFrom;
    // The new orders go first, from a helper thread: the server takes them while this one
    // encodes the other tables' rows (the connection is not touched here until they are sent).
    std::string new_orders;
    std::future<void> sent;
    if (stage_new) {
      new_orders = std::move(copy);
      copy = std::string();
      tx.Begin();
      sent = std::async(std::launch::async, [&tx, &new_orders] {
        tx.connection().CopyIn(queries::kCopyNewOrders, new_orders);
      });
    }
    const bool stage_stored = stage(
        queries::kCopyOrderUpdateStage, queries::kUpdateOrdersFromStage, [&](std::string& out) {
          return AppendColumnsCopy(out, orders_, IsStoredOrder, kOrderUpdateColumns);
        });
    const bool stage_customers = stage(
        queries::kCopyCustomerStage, queries::kUpsertCustomersFromStage, [&](std::string& out) {
          return AppendColumnsCopy(out, customers_, &CustomerRow::dirty, kCustomerColumns);
        });
    const bool stage_products =
        stage(queries::kCopyProductStage, queries::kUpsertProductsFromStage, [&](std::string& out) {
          return AppendColumnsCopy(out, products_, &ProductRow::dirty, kProductColumns);
        });
    if (sent.valid()) sent.get();  // rethrows its fault
    if (!copies.empty()) {
      tx.Begin();
      tx.connection().Exec(queries::kCreateStages);
      for (const auto& [sql, rows] : copies) tx.connection().CopyIn(sql, rows);
    }
    auto& write = tx.Writes();
    for (const char* sql : from_stage) write.AddText(sql);
    if (!stage_new) {
      if (auto rows = ColumnsJson(orders_, IsNewOrder, kOrderColumns)) {
        write.Add(queries::kUpsertOrders, Params().Add(*rows));
      }
    }
    if (!stage_stored) {
      if (auto rows = ColumnsJson(orders_, IsStoredOrder, kOrderUpdateColumns)) {
        write.Add(queries::kUpdateOrders, Params().Add(*rows));
      }
    }
    if (!stage_customers) {
      if (auto rows = ColumnsJson(customers_, &CustomerRow::dirty, kCustomerColumns)) {
        write.Add(queries::kUpsertCustomers, Params().Add(*rows));
      }
    }
    if (!stage_products) {
      if (auto rows = ColumnsJson(products_, &ProductRow::dirty, kProductColumns)) {
        write.Add(queries::kUpsertProducts, Params().Add(*rows));
      }
    }
    if (auto rows = DailyJson()) write.Add(queries::kAddDailySales, Params().Add(*rows));
    if (auto ids = ChangedCustomers()) write.Add(queries::kPropagateCustomers, Params().Add(*ids));
  }

 private:
  void NoteIds(const domain::DomainEvent& event) {
    std::visit(
        [&](const auto& e) {
          if constexpr (requires { e.order_id; }) {
            const auto [it, inserted] = orders_.try_emplace(e.order_id.ToString());
            if constexpr (std::is_same_v<std::decay_t<decltype(e)>, domain::OrderPlaced>) {
              if (inserted && event.aggregate_version == 1) placed_first_.push_back(&it->first);
            }
            customers_.try_emplace(e.customer_id.ToString());
          } else if constexpr (requires { e.customer_id; }) {
            customers_.try_emplace(e.customer_id.ToString());
          } else {
            static_assert(requires { e.product_id; });
            products_.try_emplace(e.product_id.ToString());
          }
          if constexpr (requires { e.lines; }) {
            for (const auto& line : e.lines) products_.try_emplace(line.product_id.ToString());
          }
        },
        event.payload);
  }

  // Applies one event unless its aggregate already has it. Answers whether it was applied.
  bool Apply(const cqrs::StoredEvent& stored, const domain::DomainEvent& event) {
    const auto& id = stored.envelope.aggregate_id;
    std::int64_t* version = nullptr;
    if (stored.envelope.aggregate_type == "Customer") {
      version = &customers_.at(id).version;
    } else if (stored.envelope.aggregate_type == "Product") {
      version = &products_.at(id).version;
    } else if (stored.envelope.aggregate_type == "Order") {
      version = &orders_.at(id).version;
    } else {
      throw cqrs::DeterministicApplyError("unknown aggregate type " +
                                          stored.envelope.aggregate_type);
    }
    const auto v = event.aggregate_version;
    if (v <= *version) return false;  // redelivered
    // Skipped versions count as applied (without their effect).
    if (v != *version + 1) *version = PassedUpTo(stored.envelope.aggregate_type, id, *version);
    if (v != *version + 1) {
      throw cqrs::DeterministicApplyError(fmt::format(
          "aggregate version gap: {} {} is at version {} but event {} (position {}) has "
          "version {}",
          stored.envelope.aggregate_type, id, *version, stored.envelope.type, stored.position, v));
    }
    std::visit([&](const auto& e) { On(e, event.occurred_at); }, event.payload);
    *version = v;
    return true;
  }

  void Finish() {
    // New and changed orders carry their customer's current details.
    for (auto& [id, o] : orders_) {
      if (!o.dirty) continue;
      auto it = customers_.find(o.customer_id);
      if (it != customers_.end() && it->second.version > 0) {
        o.customer_name = it->second.name;
        o.customer_email = it->second.email;
      }
    }
  }

  static bool IsNewOrder(const OrderRow& o) { return o.dirty && o.placed; }
  // The new orders as COPY text for queries::kCopyNewOrders (appended to `out`); answers how
  // many.
  std::size_t NewOrdersCopy(std::string& out) const {
    using projection_support::AppendCopyValue;
    auto value = [&](const auto& v) {
      AppendCopyValue(out, v);
      out.push_back('\t');
    };
    auto at = [&](const std::optional<std::int64_t>& ms) {
      if (ms) {
        AppendTimestamp(out, *ms);
      } else {
        out += "\\N";
      }
      out.push_back('\t');
    };
    std::size_t n = 0;
    for (const auto& [id, o] : orders_) {
      if (!IsNewOrder(o)) continue;
      value(id);
      value(o.customer_id);
      value(o.customer_name);
      value(o.customer_email);
      value(o.status);
      value(o.lines);
      value(o.item_count);
      value(o.total_cents);
      at(o.placed_at);
      at(o.paid_at);
      at(o.shipped_at);
      at(o.delivered_at);
      at(o.cancelled_at);
      value(o.payment_reference);
      value(o.tracking_number);
      value(o.cancel_reason);
      value(o.version);
      AppendCopyValue(out, o.line_text);
      out.push_back('\n');
      ++n;
    }
    return n;
  }
  static bool IsStoredOrder(const OrderRow& o) { return o.dirty && !o.placed; }
  std::optional<std::string> DailyJson() const {
    return projection_support::RowsJson(
        days_, [](const auto&) { return true; },
        [](JsonOut& out, const auto& day, const auto& d) {
          out.Field("day", static_cast<std::int64_t>(day));
          out.Field("placed", d.placed);
          out.Field("paid", d.paid);
          out.Field("revenue", d.revenue);
        });
  }
  // Customers whose new details must reach order views of earlier batches: only a stored
  // customer row can have them (an order writes its customer's row, a placeholder if need be);
  // the orders of this batch got the details in Finish.
  std::optional<std::string> ChangedCustomers() const {
    return projection_support::KeysArrayWhere(
        customers_, [](const CustomerRow& c) { return c.details_changed && c.stored != 0; });
  }

  CustomerRow& Customer(const domain::CustomerId& id) {
    auto& c = customers_.at(id.ToString());
    c.dirty = true;
    return c;
  }
  ProductRow& Product(const domain::ProductId& id) {
    auto& p = products_.at(id.ToString());
    p.dirty = true;
    return p;
  }
  OrderRow& Order(const domain::OrderId& id) {
    auto& o = orders_.at(id.ToString());
    o.dirty = true;
    return o;
  }

  void On(const domain::CustomerRegistered& e, domain::Timestamp) {
    auto& c = Customer(e.customer_id);
    c.name = e.name;
    c.email = e.email;
    c.details_changed = true;
  }
  void On(const domain::CustomerDetailsChanged& e, domain::Timestamp) {
    auto& c = Customer(e.customer_id);
    c.name = e.name;
    c.email = e.email;
    c.details_changed = true;
  }
  void On(const domain::ProductAdded& e, domain::Timestamp) {
    auto& p = Product(e.product_id);
    p.sku = e.sku;
    p.name = e.name;
    p.price_cents = e.price_cents;
    p.stock += e.stock;  // orders projected before this event may already have moved it
  }
  void On(const domain::ProductPriceChanged& e, domain::Timestamp) {
    Product(e.product_id).price_cents = e.price_cents;
  }
  void On(const domain::ProductRestocked& e, domain::Timestamp) {
    Product(e.product_id).stock += e.quantity;
  }
  void On(const domain::OrderPlaced& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.placed = true;
    o.customer_id = e.customer_id.ToString();
    o.status = "placed";
    o.item_count = 0;
    o.line_text.clear();
    o.lines = "[";
    for (const auto& l : e.lines) {
      if (o.lines.size() > 1) o.lines.push_back(',');
      o.lines += "{\"product_id\":\"";
      o.lines += l.product_id.ToString();
      o.lines += "\",\"sku\":";
      JsonOut::AppendString(o.lines, l.sku);
      o.lines += ",\"product_name\":";
      JsonOut::AppendString(o.lines, l.product_name);
      fmt::format_to(std::back_inserter(o.lines),
                     ",\"quantity\":{},\"unit_price_cents\":{},\"line_total_cents\":{}}}",
                     l.quantity, l.unit_price_cents, l.line_total_cents());
      o.item_count += l.quantity;
      if (!o.line_text.empty()) o.line_text.push_back(' ');
      o.line_text += l.sku + ' ' + l.product_name;
      Product(l.product_id).stock -= l.quantity;
    }
    o.lines.push_back(']');
    o.total_cents = e.total_cents;
    o.placed_at = Ms(at);
    ++Customer(e.customer_id).order_count;
    ++days_[DayOf(at)].placed;
  }
  void On(const domain::OrderPaid& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "paid";
    o.paid_at = Ms(at);
    o.payment_reference = e.payment_reference;
    Customer(e.customer_id).lifetime_value_cents += o.total_cents;
    for (const auto& l : e.lines) {
      auto& p = Product(l.product_id);
      p.units_sold += l.quantity;
      p.revenue_cents += l.line_total_cents();
    }
    auto& day = days_[DayOf(at)];
    ++day.paid;
    day.revenue += e.amount_cents;
  }
  void On(const domain::OrderShipped& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "shipped";
    o.shipped_at = Ms(at);
    o.tracking_number = e.tracking_number;
  }
  void On(const domain::OrderDelivered& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "delivered";
    o.delivered_at = Ms(at);
  }
  void On(const domain::OrderCancelled& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    const bool was_paid = e.previous_status == domain::OrderStatus::kPaid;
    o.status = "cancelled";
    o.cancelled_at = Ms(at);
    o.cancel_reason = e.reason.empty() ? std::nullopt : std::optional<std::string>(e.reason);
    auto& c = Customer(e.customer_id);
    --c.order_count;
    if (was_paid) c.lifetime_value_cents -= o.total_cents;
    for (const auto& l : e.lines) {
      auto& p = Product(l.product_id);
      p.stock += l.quantity;
      if (was_paid) {
        p.units_sold -= l.quantity;
        p.revenue_cents -= l.line_total_cents();
      }
    }
    if (e.refunded_cents > 0) days_[DayOf(at)].revenue -= e.refunded_cents;
  }

  std::unordered_map<std::string, CustomerRow> customers_;
  std::unordered_map<std::string, ProductRow> products_;
  std::unordered_map<std::string, OrderRow> orders_;
  std::map<int, DayDelta> days_;
  Cache& cache_;
  std::vector<domain::DomainEvent> decoded_;
  // Orders whose first event in the batch is their OrderPlaced (keys of orders_).
  std::vector<const std::string*> placed_first_;
};

}  // namespace

PgReadProjection::PgReadProjection(std::string conninfo, std::string name)
    : BatchProjection(conninfo, name, &projection_support::MakeBatch<BatchState>,
                      &projection_support::MakeCache<BatchState>),
      name_(std::move(name)),
      maintenance_(std::move(conninfo)) {}

void PgReadProjection::Apply(const cqrs::Checkpoint& from,
                             const std::vector<cqrs::StoredEvent>& events,
                             const cqrs::Checkpoint& to) {
  BatchProjection::Apply(from, events, to);
  if (StartsBuildFromZero(from, events.size())) check_deferred_ = true;
}

void PgReadProjection::CaughtUp() {
  if (!check_deferred_) return;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const auto restored =
        maintenance_.Get().ExecPrepared(queries::kRestoreIndexes, Params().Add(name_)).Int64(0, 0);
    if (restored > 0) {
      spdlog::info("{}: caught up, created the {} deferred indexes in {:.2f} s", name_, restored,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } catch (...) {
    maintenance_.Reset();
    throw;
  }
  check_deferred_ = false;
  maintenance_.Reset();
}

}  // namespace shopcqrs::adapters::pg_read
