// SPDX-License-Identifier: MIT
// HTTP/1.x request heads as the admin endpoint reads them: line by line as
// bytes arrive, within written limits, without recursion. No CAF, no
// sockets: fuzzed by fuzz/fuzz_http.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace networkd::http {

/// Limits on one request head (README: limits).
struct head_limits {
  size_t max_request_line = 2048; ///< bytes of the request line (414)
  size_t max_headers = 64;        ///< header lines (431)
  size_t max_header_bytes = 8192; ///< their bytes with line ends (431)
};

/// Why a request or connection was refused (counted per reason).
enum class refusal {
  bad_request,
  request_line,
  header_count,
  header_bytes,
  body,
  timeout,
  connections,
  slow_reader,
  count
};

inline constexpr std::array<const char*, static_cast<size_t>(refusal::count)>
  refusal_names
  = {"bad_request", "request_line", "header_count", "header_bytes",
     "body",        "timeout",      "connections",  "slow_reader"};

/// The HTTP status a refusal answers with.
int refusal_status(refusal r);

/// The path of a request target: query dropped, %XX decoded.
std::string target_path(std::string_view target);

/// The query of a request target (after the first '?'), as sent.
std::string_view target_query(std::string_view target);

/// Query parameters in their order; a name may come more than once.
using query_params = std::vector<std::pair<std::string, std::string>>;

/// Parameters past this many refuse the request (400). The request line
/// limit bounds their bytes.
inline constexpr size_t max_query_params = 32;

/// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space, %XX a byte,
/// a malformed escape stays as sent, "a" alone has an empty value, empty
/// pieces are skipped). False past `max_params` parameters.
bool parse_query(std::string_view query, query_params& out,
                 size_t max_params = max_query_params);

struct request_head {
  std::string method;
  std::string path;
  /// The query as sent (not decoded), "" without one.
  std::string query;
  bool head = false;
  bool close = false;
};

/// Reads a request head line by line as bytes arrive, within the limits.
/// Requests with a body (Content-Length > 0, any Transfer-Encoding) are
/// refused: the admin endpoint only answers GET and HEAD.
class head_parser {
public:
  enum class verdict { more, done, refused };

  /// Consumes the complete lines at the front of `in` up to the end of
  /// the head; what stays is a partial line or the next request.
  verdict parse(std::string& in, const head_limits& lim);

  const request_head& head() const { return head_; }
  refusal why() const { return why_; }
  /// True once a byte of this request arrived.
  bool started() const { return started_; }

private:
  verdict refuse(refusal r) {
    why_ = r;
    return verdict::refused;
  }
  verdict request_line(std::string_view line, const head_limits& lim);
  verdict header_line(std::string_view line, const head_limits& lim);

  request_head head_;
  refusal why_ = refusal::bad_request;
  bool first_ = true;
  bool started_ = false;
  size_t headers_ = 0;
  size_t header_bytes_ = 0;
};

} // namespace networkd::http
