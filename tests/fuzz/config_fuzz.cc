// libFuzzer harness: the TOML configuration loader (apps/shopcqrs/config.h), the file that
// `shopcqrs serve --config` reads.
//
// Input: a TOML document. ApplyToml must apply it or throw ConfigError (its contract: unknown
// keys and wrong types are errors, with the file/line); then ValidateConfig and DescribeConfig
// run on whatever was applied, as `serve` does, and must not throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <spdlog/spdlog.h>

#include "apps/shopcqrs/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace apps = shopcqrs::apps;
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  apps::Config config;
  try {
    apps::ApplyToml(config, std::string_view(reinterpret_cast<const char*>(data), size),
                    "fuzz.toml");
  } catch (const apps::ConfigError&) {
    return 0;
  }
  (void)apps::ValidateConfig(config);
  (void)apps::DescribeConfig(config);
  (void)apps::ParseListenAddress(config.listen);
  return 0;
}
