# shopcqrs-bench-search-sql: prints the pgbench script of the search query (scripts/bench-search.sh).
add_executable(shopcqrs-bench-search-sql ${CMAKE_CURRENT_LIST_DIR}/search_sql_main.cc)
target_include_directories(shopcqrs-bench-search-sql PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(shopcqrs-bench-search-sql PRIVATE PkgConfig::LIBPQ)
