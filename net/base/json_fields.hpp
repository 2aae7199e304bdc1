// SPDX-License-Identifier: MIT
// RapidJSON helpers shared by the parsers of etcd values (config, ACL):
// bounded parsing, type names and type errors for messages.
#pragma once

#include <optional>
#include <string_view>

#include <rapidjson/document.h>

#include "net/base/result.hpp"

namespace networkd::config {

/// Arrays and objects nest at most this deep in any JSON networkd reads
/// (etcd values, lainlet, Docker); deeper text is rejected unparsed.
constexpr size_t max_json_depth = 64;

/// The deepest nesting of arrays and objects in `text` (brackets inside
/// strings do not count), or max_json_depth + 1 once it goes deeper. One
/// pass, no recursion.
size_t json_depth(std::string_view text);

/// Checks the nesting depth, then parses iteratively (flat stack). The
/// reason on failure: "nested deeper than 64" or the syntax error and its
/// offset.
std::optional<std::string> parse_flat(std::string_view text,
                                      rapidjson::Document& doc);

/// Rejects values over max_value_size ("too_large"), then parse_flat;
/// "bad_json" with the reason on a syntax error or too deep a nesting.
/// The caller checks the top-level type.
std::optional<failure> parse_json(std::string_view value,
                                  rapidjson::Document& doc);

/// A JSON string's text (the value must be a string).
inline std::string_view view(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// "null", "bool", "object", "array", "string" or "number".
const char* type_name(const rapidjson::Value& v);

/// "too_many" naming `field` when the array `list` has more than `limit`
/// entries.
std::optional<failure> over_limit(const char* field,
                                  const rapidjson::Value& list, size_t limit);

/// A "bad_field" failure: "expected X, got Y".
failure wrong_type(const char* expected, const rapidjson::Value& v);

} // namespace networkd::config
