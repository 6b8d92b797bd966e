// Row decoding, limits, keyset cursors and parameter encoding shared by the query adapters
// over PostgreSQL (pg_read's flat views and pg_single's joins answer identically).
#include "adapters/pg_read/view_rows.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/pg_read/read_model.h"

namespace shopcqrs::adapters::pg_read::rows {

namespace json = boost::json;
using infra::pg::Params;

domain::Timestamp FromMs(std::int64_t ms) {
  return domain::Timestamp(std::chrono::milliseconds(ms));
}
std::optional<domain::Timestamp> OptTime(const infra::pg::Result& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  return FromMs(r.Int64(row, col));
}

// Columns as in SHOPCQRS_ORDER_COLUMNS of queries.h.
app::OrderSummary SummaryFromRow(const infra::pg::Result& r, int i) {
  app::OrderSummary o;
  o.id = r.String(i, 0);
  o.customer_id = r.String(i, 1);
  o.customer_name = r.OptString(i, 2);
  o.customer_email = r.OptString(i, 3);
  o.status = r.String(i, 4);
  o.item_count = r.Int64(i, 6);
  o.total_cents = r.Int64(i, 7);
  o.placed_at = FromMs(r.Int64(i, 8));
  o.paid_at = OptTime(r, i, 9);
  o.shipped_at = OptTime(r, i, 10);
  o.delivered_at = OptTime(r, i, 11);
  o.cancelled_at = OptTime(r, i, 12);
  o.payment_reference = r.OptString(i, 13);
  o.tracking_number = r.OptString(i, 14);
  o.cancel_reason = r.OptString(i, 15);
  o.version = r.Int64(i, 16);
  return o;
}

std::vector<app::OrderLineView> LinesFromJson(std::string_view text) {
  std::vector<app::OrderLineView> lines;
  const json::value parsed = json::parse(text);
  for (const auto& v : parsed.as_array()) {
    const auto& l = v.as_object();
    lines.push_back(app::OrderLineView{
        std::string(l.at("product_id").as_string()), std::string(l.at("sku").as_string()),
        std::string(l.at("product_name").as_string()), l.at("quantity").to_number<std::int64_t>(),
        l.at("unit_price_cents").to_number<std::int64_t>(),
        l.at("line_total_cents").to_number<std::int64_t>()});
  }
  return lines;
}

domain::Result<int> CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxLimit) {
    return std::unexpected(domain::ValidationFailed("limit must be between 1 and 100"));
  }
  return limit;
}

// Cursor parameters ($1 placed_at, $2 id) of a keyset page; the first page starts above all.
domain::Result<Params> CursorParams(const std::optional<std::string>& cursor) {
  Params params;
  if (!cursor) {
    params.Add("infinity").Add("ffffffff-ffff-ffff-ffff-ffffffffffff");
    return params;
  }
  auto decoded = DecodeOrderCursor(*cursor);
  if (!decoded) return std::unexpected(domain::ValidationFailed("cursor is not valid"));
  params.Add(domain::FormatTimestamp(decoded->first)).Add(decoded->second.ToString());
  return params;
}

app::OrderPage PageFrom(const infra::pg::Result& rows, int limit) {
  app::OrderPage page;
  const int n = std::min(rows.rows(), limit);
  page.items.reserve(n);
  for (int i = 0; i < n; ++i) page.items.push_back(SummaryFromRow(rows, i));
  if (rows.rows() > limit && !page.items.empty()) {
    const auto& last = page.items.back();
    page.next_cursor = EncodeOrderCursor(last.placed_at, *domain::Uuid::Parse(last.id));
  }
  return page;
}

std::string DateText(std::chrono::sys_days day) {
  const std::chrono::year_month_day ymd(day);
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

}  // namespace shopcqrs::adapters::pg_read::rows
