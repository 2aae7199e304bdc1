// SPDX-License-Identifier: MIT
#include "net/base/json_fields.hpp"

#include <algorithm>
#include <string>

#include <rapidjson/error/en.h>

#include "net/cluster/config.hpp"

namespace networkd::config {

size_t json_depth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > max_json_depth)
        return deepest;
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::optional<std::string> parse_flat(std::string_view text,
                                      rapidjson::Document& doc) {
  if (json_depth(text) > max_json_depth)
    return "JSON nested deeper than " + std::to_string(max_json_depth);
  doc.Parse<rapidjson::kParseDefaultFlags | rapidjson::kParseIterativeFlag>(
    text.data(), text.size());
  if (doc.HasParseError())
    return std::string("invalid JSON at offset ")
           + std::to_string(doc.GetErrorOffset()) + ": "
           + rapidjson::GetParseError_En(doc.GetParseError());
  return std::nullopt;
}

std::optional<failure> parse_json(std::string_view value,
                                  rapidjson::Document& doc) {
  if (value.size() > max_value_size)
    return make_failure("too_large", "value of " + std::to_string(value.size())
                                       + " bytes exceeds the limit of "
                                       + std::to_string(max_value_size));
  if (auto why = parse_flat(value, doc))
    return make_failure("bad_json", std::move(*why));
  return std::nullopt;
}

const char* type_name(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "bool";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return "number";
  }
  return "unknown";
}

std::optional<failure> over_limit(const char* field,
                                  const rapidjson::Value& list, size_t limit) {
  if (list.Size() <= limit)
    return std::nullopt;
  return make_failure("too_many",
                      std::string(field) + ": " + std::to_string(list.Size())
                        + " entries (limit " + std::to_string(limit) + ")");
}

failure wrong_type(const char* expected, const rapidjson::Value& v) {
  return make_failure("bad_field", std::string("expected ") + expected
                                     + ", got " + type_name(v));
}

} // namespace networkd::config
