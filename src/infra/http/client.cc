#include "infra/http/client.h"

#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace shopcqrs::infra::http {

namespace beast = boost::beast;
namespace asio = boost::asio;

ClientResponse Fetch(const std::string& host, int port, const std::string& method,
                     const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body, std::chrono::milliseconds timeout) {
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host, std::to_string(port)));
    beast::http::request<beast::http::string_body> request(beast::http::string_to_verb(method),
                                                           target, 11);
    request.set(beast::http::field::host, host + ":" + std::to_string(port));
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty()) {
      request.set(beast::http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    beast::http::write(stream, request);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> response;
    beast::http::read(stream, buffer, response);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return {static_cast<int>(response.result_int()),
            std::string(response[beast::http::field::content_type]), response.body()};
  } catch (const beast::system_error& error) {
    throw std::runtime_error("http://" + host + ":" + std::to_string(port) + target + ": " +
                             error.code().message());
  }
}

}  // namespace shopcqrs::infra::http
