#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "adapters/pg_read/projection_support.h"

// Rows in COPY's text format (tab-separated columns, \N for NULL, backslash escapes), for the
// large batches of the read-database projections: COPY into a staging table and one set-based
// statement from it cost the server less than parsing the same rows out of a JSON parameter.
namespace shopcqrs::adapters::pg_read::projection_support {

// Appends `value` escaped for COPY text.
inline void AppendCopyText(std::string& out, std::string_view value) {
  std::size_t from = 0;
  while (true) {
    const auto at = value.find_first_of("\\\t\n\r", from);
    if (at == std::string_view::npos) {
      out.append(value.substr(from));
      return;
    }
    out.append(value.substr(from, at - from));
    out.push_back('\\');
    switch (value[at]) {
      case '\t':
        out.push_back('t');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\r':
        out.push_back('r');
        break;
      default:
        out.push_back('\\');
    }
    from = at + 1;
  }
}

inline void AppendCopyValue(std::string& out, std::string_view value) {
  AppendCopyText(out, value);
}
inline void AppendCopyValue(std::string& out, const std::string& value) {
  AppendCopyText(out, value);
}
inline void AppendCopyValue(std::string& out, std::int64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
  out.append(digits, end);
}
template <class T>
void AppendCopyValue(std::string& out, const std::optional<T>& value) {
  if (value) {
    AppendCopyValue(out, *value);
  } else {
    out += "\\N";
  }
}

// The rows of `rows` (a map of id -> row) that `include` accepts (a predicate or a pointer to a
// bool member), one line each: the id, then `columns` (projection_support::Column, JSON text
// columns as is). Appended to `out`; answers how many rows were written.
template <class Rows, class Include, class... Columns>
std::size_t AppendColumnsCopy(std::string& out, const Rows& rows, Include include,
                              const std::tuple<Columns...>& columns) {
  std::size_t n = 0;
  for (const auto& [id, row] : rows) {
    if (!std::invoke(include, row)) continue;
    AppendCopyValue(out, id);
    std::apply(
        [&](const auto&... column) {
          ((out.push_back('\t'), AppendCopyValue(out, row.*column.member)), ...);
        },
        columns);
    out.push_back('\n');
    ++n;
  }
  return n;
}

}  // namespace shopcqrs::adapters::pg_read::projection_support
