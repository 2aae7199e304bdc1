// SPDX-License-Identifier: MIT
#include "net/json_fields.hpp"

#include <string>

#include <rapidjson/error/en.h>

#include "net/config.hpp"

namespace networkd::config {

std::optional<failure> parse_json(std::string_view value,
                                  rapidjson::Document& doc) {
  if (value.size() > max_value_size)
    return make_failure("too_large",
                        "value of " + std::to_string(value.size())
                          + " bytes exceeds the limit of "
                          + std::to_string(max_value_size));
  doc.Parse<rapidjson::kParseDefaultFlags | rapidjson::kParseIterativeFlag>(
    value.data(), value.size());
  if (doc.HasParseError())
    return make_failure("bad_json",
                        std::string("invalid JSON at offset ")
                          + std::to_string(doc.GetErrorOffset()) + ": "
                          + rapidjson::GetParseError_En(doc.GetParseError()));
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

failure wrong_type(const char* expected, const rapidjson::Value& v) {
  return make_failure("bad_field", std::string("expected ") + expected
                                     + ", got " + type_name(v));
}

} // namespace networkd::config
