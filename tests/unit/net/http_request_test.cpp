// SPDX-License-Identifier: MIT
// Request targets as the admin endpoint reads them: the decoded path, the
// query as sent, and its parameters within their limit.
#include <catch2/catch.hpp>

#include <string>

#include "net/peers/http_request.hpp"

using namespace networkd;

namespace {

http::request_head head_of(std::string text) {
  http::head_parser p;
  REQUIRE(p.parse(text, http::head_limits{})
          == http::head_parser::verdict::done);
  return p.head();
}

} // namespace

TEST_CASE("a request target splits into a decoded path and its query") {
  auto h = head_of("GET /v1/vips/10.0.0.5%3A80?x=1&y HTTP/1.1\r\n\r\n");
  CHECK(h.path == "/v1/vips/10.0.0.5:80");
  CHECK(h.query == "x=1&y");
  h = head_of("GET /v1/state HTTP/1.1\r\n\r\n");
  CHECK(h.query.empty());
  CHECK(http::target_query("/a?b?c") == "b?c");
  CHECK(http::target_path("/a%zz%4") == "/a%zz%4");
}

TEST_CASE("query parameters are decoded in their order") {
  http::query_params q;
  REQUIRE(http::parse_query("name=www.example.com&type=AAAA", q));
  REQUIRE(q.size() == 2);
  CHECK(q[0]
        == std::make_pair(std::string{"name"}, std::string{"www.example.com"}));
  CHECK(q[1].second == "AAAA");
  REQUIRE(http::parse_query("a+b=c%20d%2B&&flag&=v&x=%zz%4&x=2", q));
  REQUIRE(q.size() == 5);
  CHECK(q[0] == std::make_pair(std::string{"a b"}, std::string{"c d+"}));
  CHECK(q[1] == std::make_pair(std::string{"flag"}, std::string{}));
  CHECK(q[2] == std::make_pair(std::string{}, std::string{"v"}));
  CHECK(q[3].second == "%zz%4");
  CHECK(q[4].second == "2");
  REQUIRE(http::parse_query("", q));
  CHECK(q.empty());
  REQUIRE(http::parse_query("n=%00", q));
  CHECK(q[0].second == std::string(1, '\0'));
}

TEST_CASE("a query with more parameters than the limit is refused") {
  http::query_params q;
  std::string text;
  for (size_t i = 0; i < http::max_query_params; ++i)
    text += "p" + std::to_string(i) + "=1&";
  CHECK(http::parse_query(text, q));
  CHECK(q.size() == http::max_query_params);
  CHECK_FALSE(http::parse_query(text + "one=more", q));
  CHECK(http::parse_query("a=1&b=2&c=3", q, 3));
  CHECK_FALSE(http::parse_query("a=1&b=2&c=3&d=4", q, 3));
}
