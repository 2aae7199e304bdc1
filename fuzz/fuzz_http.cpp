// SPDX-License-Identifier: MIT
// libFuzzer target for the admin endpoint's request heads (net/
// http_request.hpp head_parser): bytes as a client sends them, in pieces,
// pipelined requests one after the other.
//
// Input: byte 0 = piece size (1 + byte), then the bytes (fuzz_util.hpp run
// escapes, so that one input reaches the line and header limits).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "net/peers/http_request.hpp"

using namespace networkd;
using networkd::fuzz::broken;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  size_t piece = 1 + data[0];
  auto bytes
    = fuzz::expand({reinterpret_cast<const char*>(data) + 1, size - 1});
  http::head_limits lim;
  http::head_parser parser;
  std::string in;
  size_t pos = 0;
  while (pos < bytes.size() || !in.empty()) {
    auto n = std::min(piece, bytes.size() - pos);
    in.append(bytes, pos, n);
    pos += n;
    auto v = parser.parse(in, lim);
    if (v == http::head_parser::verdict::refused)
      return 0; // the connection is closed
    if (v == http::head_parser::verdict::more) {
      // Never more than one partial line is kept, within the limits.
      if (in.find('\n') != std::string::npos)
        broken("a complete line left unparsed");
      if (in.size() > lim.max_request_line + 1 + piece
          && in.size() > lim.max_header_bytes + piece)
        broken("a partial line past the limits is kept");
      if (n == 0)
        return 0; // the client went quiet
      continue;
    }
    auto& h = parser.head();
    if (h.method.empty() || (h.head != (h.method == "HEAD")))
      broken("a request head without a method");
    // The query as the admin routes read it: bounded, never longer decoded.
    http::query_params params;
    bool fits = http::parse_query(h.query, params);
    if (params.size() > http::max_query_params
        || (!fits && params.size() != http::max_query_params))
      broken("query parameters past the limit");
    for (auto& [name, value] : params)
      if (name.size() + value.size() > h.query.size())
        broken("a decoded parameter longer than the query");
    parser = http::head_parser{}; // the next pipelined request
  }
  return 0;
}
