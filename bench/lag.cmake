# shopcqrs-bench-lag: commit-to-visible lag of the read_pg projection at fixed command rates
# (see bench/lag_main.cc). Included from bench/CMakeLists.txt.
add_executable(shopcqrs-bench-lag ${CMAKE_CURRENT_LIST_DIR}/lag_main.cc)
target_include_directories(shopcqrs-bench-lag PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(shopcqrs-bench-lag
  PRIVATE SHOPCQRS_BENCH_RESULTS_DIR="${CMAKE_CURRENT_LIST_DIR}/results")
target_link_libraries(shopcqrs-bench-lag PRIVATE shopcqrs_adapters shopcqrs_devstack Boost::json fmt::fmt
                                                     spdlog::spdlog CLI11::CLI11)
