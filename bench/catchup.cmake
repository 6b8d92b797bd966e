# shopcqrs-bench-catchup: projects a generated outbox backlog into an empty read database
# (see bench/catchup_main.cc). Included from bench/CMakeLists.txt.
shopcqrs_server_bench(shopcqrs-bench-catchup catchup_main.cc)
