# shopcqrs-bench-lag: commit-to-visible lag of the read_pg projection at fixed command rates
# (see bench/lag_main.cc). Included from bench/CMakeLists.txt.
shopcqrs_server_bench(shopcqrs-bench-lag lag_main.cc)
