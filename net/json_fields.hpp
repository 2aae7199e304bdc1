// SPDX-License-Identifier: MIT
// RapidJSON helpers shared by the parsers of etcd values (config, ACL):
// bounded parsing, type names and type errors for messages.
#pragma once

#include <optional>
#include <string_view>

#include <rapidjson/document.h>

#include "net/result.hpp"

namespace networkd::config {

/// Rejects values over max_value_size ("too_large"), then parses
/// iteratively (flat stack); "bad_json" with the offset on a syntax error.
/// The caller checks the top-level type.
std::optional<failure> parse_json(std::string_view value,
                                  rapidjson::Document& doc);

/// A JSON string's text (the value must be a string).
inline std::string_view view(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// "null", "bool", "object", "array", "string" or "number".
const char* type_name(const rapidjson::Value& v);

/// A "bad_field" failure: "expected X, got Y".
failure wrong_type(const char* expected, const rapidjson::Value& v);

} // namespace networkd::config
