# shopcqrs-bench-catchup: projects a generated outbox backlog into an empty read database
# (see bench/catchup_main.cc). Included from bench/CMakeLists.txt.
add_executable(shopcqrs-bench-catchup ${CMAKE_CURRENT_LIST_DIR}/catchup_main.cc)
target_include_directories(shopcqrs-bench-catchup PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(shopcqrs-bench-catchup
  PRIVATE SHOPCQRS_BENCH_RESULTS_DIR="${CMAKE_CURRENT_LIST_DIR}/results")
target_link_libraries(shopcqrs-bench-catchup PRIVATE shopcqrs_adapters shopcqrs_devstack Boost::json fmt::fmt
                                                     spdlog::spdlog CLI11::CLI11)
