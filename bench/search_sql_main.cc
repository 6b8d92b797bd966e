// shopcqrs-bench-search-sql: prints a pgbench script that runs the service's search statement
// (pg_read's kSearchOrders, the very text the read pool prepares) on the read database, with the
// words of a random row of bench_search_queries (bench/sql/search_seed.sql) and the parameters
// of a first page without filters, limit 20 (+1), as GET /v1/search/orders?q=...&limit=20 sends:
//
//   shopcqrs-bench-search-sql > search.sql
//   pgbench -M prepared -D nqueries=10000 -D status=none -D from=none -D to=none
//     -D rank=2147483647 -D placed=infinity -D last=ffffffff-ffff-ffff-ffff-ffffffffffff
//     -D lim=21 -D customer=none -f search.sql READ_DB
// (one command line, broken here for width).
//
// pgbench cannot bind NULL: the NULL parameters ($2..$4, $9) are nullif(:var, 'none'), which keeps
// them parameters of the prepared statement (its generic plan is the service's). Each
// transaction also looks the words up by primary key (\gset): a small extra the service does
// not have.
#include <cstdio>
#include <string>

#include "adapters/pg_read/queries.h"

int main() {
  const std::string sql = shopcqrs::adapters::pg_read::queries::kSearchOrders.sql;
  const char* params[] = {"",
                          ":words",
                          "nullif(:status, 'none')",
                          "nullif(:from, 'none')",
                          "nullif(:to, 'none')",
                          ":rank",
                          ":placed",
                          ":last",
                          ":lim",
                          "nullif(:customer, 'none')"};
  std::string out;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
      out += params[sql[i + 1] - '0'];
      ++i;
    } else {
      out.push_back(sql[i]);
    }
  }
  std::printf("\\set n random(1, :nqueries)\n");
  std::printf("SELECT words FROM bench_search_queries WHERE n = :n \\gset\n");
  std::printf("%s;\n", out.c_str());
}
