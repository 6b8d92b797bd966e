# The fuzz build (SHOPCQRS_FUZZ=ON, scripts/fuzz.sh, docs/FUZZING.md): clang with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer. Every library is compiled with
# -fsanitize=fuzzer-no-link (coverage instrumentation without libFuzzer's main); the harnesses of
# tests/fuzz link -fsanitize=fuzzer. UB aborts (no recovery), so libFuzzer records it as a crash.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SHOPCQRS_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
endif()

set(SHOPCQRS_SANITIZERS address,undefined)
add_compile_options(-fsanitize=fuzzer-no-link,${SHOPCQRS_SANITIZERS} -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=${SHOPCQRS_SANITIZERS})
# -O1 and line tables (symbolized stacks) keep the instrumented build short.
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -gline-tables-only")
# The Boost.Beast server takes longer to compile than everything else together; the harnesses
# drive the router directly and do not need it.
set(SHOPCQRS_LIBRARY_SKIP infra/http/server.cc)

# clang before 16 cannot use libstdc++ 12's <expected>: the header is guarded by
# __cpp_concepts >= 202002L (clang 14 says 201907L) because its special members are overloaded
# on constraints, trivial `= default` ones beside user-provided ones (P0848, conditionally
# trivial special member functions, implemented in clang 16). The fuzz build uses a copy of the
# system header, generated here, with the guard lifted and only the user-provided special
# members kept (same behaviour; std::expected is merely never trivially copyable). The copy
# comes first on the include path; nothing else of the standard library is replaced.
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  include(${CMAKE_CURRENT_LIST_DIR}/clang_expected.cmake)
endif()
