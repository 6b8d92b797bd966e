#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "application/read_model.h"
#include "domain/error.h"
#include "infra/pg/connection.h"

// Shared by the PostgreSQL query adapters (pg_read, pg_single): their statements return the
// same columns (SHOPCQRS_ORDER_COLUMNS of pg_read/queries.h), decoded here once.
namespace shopcqrs::adapters::pg_read::rows {

inline constexpr int kMaxLimit = 100;

domain::Timestamp FromMs(std::int64_t ms);
std::optional<domain::Timestamp> OptTime(const infra::pg::Result& r, int row, int col);
app::OrderSummary SummaryFromRow(const infra::pg::Result& r, int i);
std::vector<app::OrderLineView> LinesFromJson(std::string_view text);
domain::Result<int> CheckLimit(int limit);
// Cursor parameters ($1 placed_at, $2 id) of a keyset page; the first page starts above all.
domain::Result<infra::pg::Params> CursorParams(const std::optional<std::string>& cursor);
app::OrderPage PageFrom(const infra::pg::Result& rows, int limit);
std::string DateText(std::chrono::sys_days day);

}  // namespace shopcqrs::adapters::pg_read::rows
