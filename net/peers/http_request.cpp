// SPDX-License-Identifier: MIT
#include "net/peers/http_request.hpp"

#include <cctype>

namespace networkd::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

/// True when the comma-separated list has the token (any case).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (iequals(item, token))
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// %XX decoded (a malformed escape stays as sent); with `plus`, '+' is a
/// space (query strings).
std::string percent_decode(std::string_view text, bool plus) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    bool escape = text[i] == '%' && i + 2 < text.size()
                  && hex_digit(text[i + 1]) >= 0 && hex_digit(text[i + 2]) >= 0;
    if (escape) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16
                               + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += plus && text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

} // namespace

std::string target_path(std::string_view target) {
  return percent_decode(target.substr(0, target.find('?')), false);
}

std::string_view target_query(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{}
                                     : target.substr(q + 1);
}

bool parse_query(std::string_view query, query_params& out, size_t max_params) {
  out.clear();
  while (!query.empty()) {
    auto amp = query.find('&');
    auto piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (piece.empty())
      continue;
    if (out.size() == max_params)
      return false;
    auto eq = piece.find('=');
    auto name = piece.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{}
                                              : piece.substr(eq + 1);
    out.emplace_back(percent_decode(name, true), percent_decode(value, true));
  }
  return true;
}

int refusal_status(refusal r) {
  switch (r) {
    case refusal::request_line:
      return 414;
    case refusal::header_count:
    case refusal::header_bytes:
      return 431;
    case refusal::body:
      return 413;
    case refusal::timeout:
      return 408;
    case refusal::connections:
      return 503;
    default:
      return 400;
  }
}

head_parser::verdict head_parser::parse(std::string& in,
                                        const head_limits& lim) {
  size_t pos = 0;
  auto v = verdict::more;
  while (v == verdict::more) {
    auto nl = in.find('\n', pos);
    if (nl == std::string::npos)
      break;
    std::string_view line{in.data() + pos, nl - pos};
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    v = first_ ? request_line(line, lim) : header_line(line, lim);
  }
  in.erase(0, pos);
  started_ = started_ || pos > 0 || !in.empty();
  if (v != verdict::more)
    return v;
  if (first_ && in.size() > lim.max_request_line + 1)
    return refuse(refusal::request_line);
  if (!first_ && header_bytes_ + in.size() > lim.max_header_bytes)
    return refuse(refusal::header_bytes);
  return verdict::more;
}

head_parser::verdict head_parser::request_line(std::string_view line,
                                               const head_limits& lim) {
  if (line.size() > lim.max_request_line)
    return refuse(refusal::request_line);
  auto sp1 = line.find(' ');
  auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1)
    return refuse(refusal::bad_request);
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  static constexpr std::string_view methods[]
    = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
       "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  bool known = false;
  for (auto m : methods)
    known = known || m == method;
  if (!known || target.empty() || target.find(' ') != target.npos)
    return refuse(refusal::bad_request);
  if (version == "HTTP/1.0")
    head_.close = true;
  else if (version != "HTTP/1.1")
    return refuse(refusal::bad_request);
  head_.method = std::string{method};
  head_.head = method == "HEAD";
  head_.path = target_path(target);
  head_.query = std::string{target_query(target)};
  first_ = false;
  return verdict::more;
}

head_parser::verdict head_parser::header_line(std::string_view line,
                                              const head_limits& lim) {
  if (line.empty())
    return verdict::done;
  header_bytes_ += line.size() + 2;
  if (++headers_ > lim.max_headers)
    return refuse(refusal::header_count);
  if (header_bytes_ > lim.max_header_bytes)
    return refuse(refusal::header_bytes);
  auto colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos)
    return refuse(refusal::bad_request);
  auto name = line.substr(0, colon);
  if (name.find_first_of(" \t") != std::string_view::npos)
    return refuse(refusal::bad_request);
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (iequals(name, "content-length")) {
    if (value.empty()
        || value.find_first_not_of("0123456789") != std::string_view::npos)
      return refuse(refusal::bad_request);
    if (value.find_first_not_of('0') != std::string_view::npos)
      return refuse(refusal::body);
  } else if (iequals(name, "transfer-encoding")) {
    return refuse(refusal::body);
  } else if (iequals(name, "connection")) {
    if (has_token(value, "close"))
      head_.close = true;
    else if (has_token(value, "keep-alive"))
      head_.close = false;
  }
  return verdict::more;
}

} // namespace networkd::http
