#include "adapters/pg_read/projection.h"

#include <charconv>
#include <exception>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read {

using infra::pg::Params;
using projection_support::JsonOut;
using projection_support::kNone;
using projection_support::ToU64;
using projection_support::UuidArray;

namespace {

// Batches with at least this many changed orders send them by COPY (see Apply).
constexpr std::size_t kCopyOrdersFrom = 256;

struct CustomerRow {
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::int64_t order_count = 0;
  std::int64_t lifetime_value_cents = 0;
  std::int64_t version = 0;
  bool dirty = false;
  bool details_changed = false;
};

struct ProductRow {
  std::optional<std::string> sku;
  std::optional<std::string> name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
  std::int64_t units_sold = 0;
  std::int64_t revenue_cents = 0;
  std::int64_t version = 0;
  bool dirty = false;
};

struct OrderRow {
  bool exists = false;
  bool dirty = false;
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
  std::int64_t version = 0;
  std::string line_text;
};

struct DayDelta {
  std::int64_t placed = 0;
  std::int64_t paid = 0;
  std::int64_t revenue = 0;
};

std::int64_t Ms(domain::Timestamp t) { return t.time_since_epoch().count(); }
int DayOf(domain::Timestamp t) {
  return static_cast<int>(std::chrono::floor<std::chrono::days>(t).time_since_epoch().count());
}

// The whole projection state a batch touches, applied in memory.
class BatchState {
 public:
  void NoteIds(const domain::DomainEvent& event) {
    std::visit(
        [&](const auto& e) {
          if constexpr (requires { e.order_id; }) {
            orders_.try_emplace(e.order_id.ToString());
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

  std::string OrderIds() const { return KeysArray(orders_); }
  std::string CustomerIds() const { return KeysArray(customers_); }
  std::string ProductIds() const { return KeysArray(products_); }
  bool HasOrders() const { return !orders_.empty(); }
  bool HasCustomers() const { return !customers_.empty(); }
  bool HasProducts() const { return !products_.empty(); }

  void LoadOrders(const infra::pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& o = orders_[r.String(i, 0)];
      o.exists = true;
      o.customer_id = r.String(i, 1);
      o.customer_name = r.OptString(i, 2);
      o.customer_email = r.OptString(i, 3);
      o.status = r.String(i, 4);
      o.lines = r.String(i, 5);
      o.item_count = r.Int64(i, 6);
      o.total_cents = r.Int64(i, 7);
      o.placed_at = r.Int64(i, 8);
      o.paid_at = r.OptInt64(i, 9);
      o.shipped_at = r.OptInt64(i, 10);
      o.delivered_at = r.OptInt64(i, 11);
      o.cancelled_at = r.OptInt64(i, 12);
      o.payment_reference = r.OptString(i, 13);
      o.tracking_number = r.OptString(i, 14);
      o.cancel_reason = r.OptString(i, 15);
      o.version = r.Int64(i, 16);
      o.line_text = r.String(i, 17);
    }
  }
  void LoadCustomers(const infra::pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& c = customers_[r.String(i, 0)];
      c.name = r.OptString(i, 1);
      c.email = r.OptString(i, 2);
      c.order_count = r.Int64(i, 3);
      c.lifetime_value_cents = r.Int64(i, 4);
      c.version = r.Int64(i, 5);
    }
  }
  void LoadProducts(const infra::pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& p = products_[r.String(i, 0)];
      p.sku = r.OptString(i, 1);
      p.name = r.OptString(i, 2);
      p.price_cents = r.Int64(i, 3);
      p.stock = r.Int64(i, 4);
      p.units_sold = r.Int64(i, 5);
      p.revenue_cents = r.Int64(i, 6);
      p.version = r.Int64(i, 7);
    }
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
      throw cqrs::FatalProjectionError("unknown aggregate type " + stored.envelope.aggregate_type);
    }
    const auto v = event.aggregate_version;
    if (v <= *version) return false;  // redelivered
    if (v != *version + 1) {
      throw cqrs::FatalProjectionError(fmt::format(
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

  std::optional<std::string> OrdersJson() const {
    return projection_support::RowsJson(
        orders_, [](const auto& o) { return o.dirty; },
        [](JsonOut& out, const auto& id, const auto& o) {
          out.Field("id", id);
          out.Field("customer_id", o.customer_id);
          out.Field("customer_name", o.customer_name);
          out.Field("customer_email", o.customer_email);
          out.Field("status", o.status);
          out.RawField("lines", o.lines);
          out.Field("item_count", o.item_count);
          out.Field("total_cents", o.total_cents);
          out.Field("placed_at", o.placed_at);
          out.Field("paid_at", o.paid_at);
          out.Field("shipped_at", o.shipped_at);
          out.Field("delivered_at", o.delivered_at);
          out.Field("cancelled_at", o.cancelled_at);
          out.Field("payment_reference", o.payment_reference);
          out.Field("tracking_number", o.tracking_number);
          out.Field("cancel_reason", o.cancel_reason);
          out.Field("version", o.version);
          out.Field("line_text", o.line_text);
        });
  }
  std::size_t DirtyOrders() const {
    std::size_t n = 0;
    for (const auto& [id, o] : orders_) n += o.dirty ? 1 : 0;
    return n;
  }
  // The dirty order rows in COPY text format, columns as queries::kCreateOrderStage.
  std::string OrdersCopyText() const {
    std::string out;
    auto text = [&](std::string_view value) {
      for (const char c : value) {
        switch (c) {
          case '\\':
            out += "\\\\";
            break;
          case '\t':
            out += "\\t";
            break;
          case '\n':
            out += "\\n";
            break;
          case '\r':
            out += "\\r";
            break;
          default:
            out.push_back(c);
        }
      }
    };
    auto opt_text = [&](const std::optional<std::string>& value) {
      if (value) {
        text(*value);
      } else {
        out += "\\N";
      }
    };
    auto number = [&](std::int64_t value) { out += std::to_string(value); };
    auto opt_number = [&](const std::optional<std::int64_t>& value) {
      if (value) {
        number(*value);
      } else {
        out += "\\N";
      }
    };
    for (const auto& [id, o] : orders_) {
      if (!o.dirty) continue;
      text(id);
      out += '\t';
      text(o.customer_id);
      out += '\t';
      opt_text(o.customer_name);
      out += '\t';
      opt_text(o.customer_email);
      out += '\t';
      text(o.status);
      out += '\t';
      text(o.lines);
      out += '\t';
      number(o.item_count);
      out += '\t';
      number(o.total_cents);
      out += '\t';
      number(o.placed_at);
      out += '\t';
      opt_number(o.paid_at);
      out += '\t';
      opt_number(o.shipped_at);
      out += '\t';
      opt_number(o.delivered_at);
      out += '\t';
      opt_number(o.cancelled_at);
      out += '\t';
      opt_text(o.payment_reference);
      out += '\t';
      opt_text(o.tracking_number);
      out += '\t';
      opt_text(o.cancel_reason);
      out += '\t';
      number(o.version);
      out += '\t';
      text(o.line_text);
      out += '\n';
    }
    return out;
  }
  std::optional<std::string> CustomersJson() const {
    return projection_support::RowsJson(
        customers_, [](const auto& c) { return c.dirty; },
        [](JsonOut& out, const auto& id, const auto& c) {
          out.Field("id", id);
          out.Field("name", c.name);
          out.Field("email", c.email);
          out.Field("order_count", c.order_count);
          out.Field("lifetime_value_cents", c.lifetime_value_cents);
          out.Field("version", c.version);
        });
  }
  std::optional<std::string> ProductsJson() const {
    return projection_support::RowsJson(
        products_, [](const auto& p) { return p.dirty; },
        [](JsonOut& out, const auto& id, const auto& p) {
          out.Field("id", id);
          out.Field("sku", p.sku);
          out.Field("name", p.name);
          out.Field("price_cents", p.price_cents);
          out.Field("stock", p.stock);
          out.Field("units_sold", p.units_sold);
          out.Field("revenue_cents", p.revenue_cents);
          out.Field("version", p.version);
        });
  }
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
  std::optional<std::string> ChangedCustomers() const {
    std::vector<std::string> ids;
    for (const auto& [id, c] : customers_) {
      if (c.details_changed) ids.push_back(id);
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
    Product(e.product_id).price_cents = e.new_price_cents;
  }
  void On(const domain::ProductRestocked& e, domain::Timestamp) {
    Product(e.product_id).stock += e.quantity;
  }
  void On(const domain::OrderPlaced& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.exists = true;
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
};

}  // namespace

PgReadProjection::PgReadProjection(std::string conninfo, std::string name)
    : name_(std::move(name)), connection_(std::move(conninfo)) {}

PgReadProjection::~PgReadProjection() = default;

void PgReadProjection::Reset() { connection_.Reset(); }

cqrs::Checkpoint PgReadProjection::LoadCheckpoint() { return connection_.LoadCheckpoint(name_); }

PgReadProjection::Timings PgReadProjection::GetTimings() const {
  std::lock_guard lock(timings_mutex_);
  return timings_;
}

void PgReadProjection::Apply(const cqrs::Checkpoint& from,
                             const std::vector<cqrs::StoredEvent>& events,
                             const cqrs::Checkpoint& checkpoint) {
  using Clock = projection_support::ApplyTimings::Clock;
  Clock::time_point t[6];
  t[0] = Clock::now();
  const std::vector<domain::DomainEvent> decoded = projection_support::DecodeAll(events);
  BatchState state;
  for (const auto& event : decoded) state.NoteIds(event);
  t[1] = Clock::now();

  projection_support::BatchTransaction tx(connection_, name_, from);
  const auto orders_at =
      state.HasOrders() ? tx.Load(queries::kLoadOrders, Params().Add(state.OrderIds())) : kNone;
  const auto customers_at =
      state.HasCustomers() ? tx.Load(queries::kLoadCustomers, Params().Add(state.CustomerIds()))
                           : kNone;
  const auto products_at = state.HasProducts()
                               ? tx.Load(queries::kLoadProducts, Params().Add(state.ProductIds()))
                               : kNone;
  auto loaded = tx.RunLoads();
  if (orders_at != kNone) state.LoadOrders(loaded[orders_at]);
  if (customers_at != kNone) state.LoadCustomers(loaded[customers_at]);
  if (products_at != kNone) state.LoadProducts(loaded[products_at]);
  t[2] = Clock::now();

  std::int64_t applied = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (state.Apply(events[i], decoded[i])) ++applied;
  }
  state.Finish();
  t[3] = Clock::now();

  // Large batches (catching up) move the order rows by COPY into a staging table: one round
  // trip more, but no JSON for the server to parse.
  auto& write = tx.Writes();
  if (state.DirtyOrders() >= kCopyOrdersFrom) {
    tx.Begin();
    tx.connection().Exec(queries::kCreateOrderStage);
    tx.connection().CopyIn(queries::kCopyOrderStage, state.OrdersCopyText());
    write.AddText(queries::kUpsertOrdersFromStage);
  } else if (auto rows = state.OrdersJson()) {
    write.Add(queries::kUpsertOrders, Params().Add(*rows));
  }
  if (auto rows = state.CustomersJson()) write.Add(queries::kUpsertCustomers, Params().Add(*rows));
  if (auto rows = state.ProductsJson()) write.Add(queries::kUpsertProducts, Params().Add(*rows));
  if (auto rows = state.DailyJson()) write.Add(queries::kAddDailySales, Params().Add(*rows));
  if (auto ids = state.ChangedCustomers()) {
    write.Add(queries::kPropagateCustomers, Params().Add(*ids));
  }
  t[4] = Clock::now();
  tx.Commit(checkpoint, applied);
  t[5] = Clock::now();
  std::lock_guard lock(timings_mutex_);
  timings_.AddBatch(events.size(), t);
}

}  // namespace shopcqrs::adapters::pg_read
