#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

// A minimal blocking HTTP/1.1 client (Boost.Beast) for the command line's admin commands: one
// request per connection.
namespace shopcqrs::infra::http {

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Sends `method` `target` to host:port with `headers` and `body`; throws std::runtime_error
// when the server cannot be reached or does not answer within `timeout`.
ClientResponse Fetch(const std::string& host, int port, const std::string& method,
                     const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace shopcqrs::infra::http
