// SPDX-License-Identifier: MIT
// A thin JSON writer for status replies (RapidJSON underneath).
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <vector>

namespace networkd {

class json_writer {
public:
  json_writer& begin_object() {
    w_.StartObject();
    return *this;
  }
  json_writer& end_object() {
    w_.EndObject();
    return *this;
  }
  json_writer& begin_array(const char* key = nullptr) {
    if (key != nullptr)
      w_.Key(key);
    w_.StartArray();
    return *this;
  }
  json_writer& end_array() {
    w_.EndArray();
    return *this;
  }
  json_writer& object(const char* key) {
    w_.Key(key);
    w_.StartObject();
    return *this;
  }
  json_writer& kv(const char* key, const std::string& v) {
    w_.Key(key);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  json_writer& kv(const char* key, const char* v) {
    return kv(key, std::string{v});
  }
  json_writer& kv(const char* key, bool v) {
    w_.Key(key);
    w_.Bool(v);
    return *this;
  }
  json_writer& kv(const char* key, int64_t v) {
    w_.Key(key);
    w_.Int64(v);
    return *this;
  }
  json_writer& kv(const char* key, uint64_t v) {
    w_.Key(key);
    w_.Uint64(v);
    return *this;
  }
  json_writer& kv(const char* key, int v) {
    return kv(key, static_cast<int64_t>(v));
  }
  json_writer& kv(const char* key, const std::vector<std::string>& v) {
    begin_array(key);
    for (auto& s : v)
      value(s);
    return end_array();
  }
  json_writer& value(uint64_t v) {
    w_.Uint64(v);
    return *this;
  }
  json_writer& null() {
    w_.Null();
    return *this;
  }
  json_writer& value(const std::string& v) {
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  /// Inserts text that is already JSON (a child's status).
  json_writer& raw(const std::string& json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  json_writer& key(const char* k) {
    w_.Key(k);
    return *this;
  }
  std::string str() const { return buf_.GetString(); }

private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

} // namespace networkd
