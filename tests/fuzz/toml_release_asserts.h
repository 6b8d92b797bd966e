#pragma once

// Force-included into the fuzz build's config.cc (tests/fuzz/CMakeLists.txt): toml++'s debug
// assertions off, as in the release library the service links, without NDEBUG (under which
// toml++ turns them into compiler assumptions).
#define TOML_ASSERT(expr) static_assert(true)
