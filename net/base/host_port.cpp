// SPDX-License-Identifier: MIT
#include "net/base/host_port.hpp"

#include "net/base/text.hpp"

namespace networkd {

namespace {

constexpr size_t max_port_in_message = 64;

failure out_of_range(std::string_view shown) {
  return make_failure("bad_field", "port "
                                     + printable(shown, max_port_in_message)
                                     + " out of range 1-65535");
}

} // namespace

result<uint16_t> parse_port(std::string_view text) {
  if (text.empty())
    return make_failure("bad_field", "port is empty");
  auto digits = text;
  if (digits.front() == '-')
    digits.remove_prefix(1);
  bool all_digits = !digits.empty();
  for (auto c : digits)
    all_digits = all_digits && c >= '0' && c <= '9';
  if (!all_digits)
    return make_failure("bad_field", "port \""
                                       + printable(text, max_port_in_message)
                                       + "\" is not a number");
  if (digits.size() != text.size())
    return out_of_range(text);
  uint32_t n = 0;
  for (auto c : digits) {
    n = n * 10 + static_cast<uint32_t>(c - '0');
    if (n > 65535)
      return out_of_range(text);
  }
  if (n == 0)
    return out_of_range(text);
  return static_cast<uint16_t>(n);
}

result<host_port> split_host_port(std::string_view text) {
  host_port out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return make_failure("bad_addr", "no closing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return make_failure("bad_addr", "no :port after ']'");
    out.host.assign(text.substr(1, close - 1));
    out.bracketed = true;
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return make_failure("bad_addr", "no :port");
    out.host.assign(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (out.host.empty())
    return make_failure("bad_addr", "no host before the port");
  auto p = parse_port(port);
  if (!p)
    return make_failure("bad_addr", p.error().message);
  out.port = *p;
  return out;
}

} // namespace networkd
