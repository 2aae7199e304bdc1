// SPDX-License-Identifier: MIT
// A thin JSON writer for status replies (RapidJSON underneath). Every
// key and string value goes out as valid UTF-8, whatever bytes come in
// (etcd keys and values are arbitrary bytes).
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace networkd {

/// Length of the well-formed UTF-8 sequence at p (true), or of its maximal
/// ill-formed prefix (false, at least 1), after Unicode's table 3-7: no
/// overlong forms, no surrogates, nothing above U+10FFFF.
inline bool utf8_sequence(const unsigned char* p, size_t n, size_t& len) {
  len = 1;
  unsigned char c = p[0];
  if (c < 0x80)
    return true;
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    lo = c == 0xE0 ? 0xA0 : lo;
    hi = c == 0xED ? 0x9F : hi;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    lo = c == 0xF0 ? 0x90 : lo;
    hi = c == 0xF4 ? 0x8F : hi;
  } else {
    return false;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (k >= n || p[k] < lo || p[k] > hi)
      return false;
    lo = 0x80;
    hi = 0xBF;
    len = k + 1;
  }
  return true;
}

/// s with each ill-formed UTF-8 subsequence replaced by U+FFFD.
inline std::string valid_utf8(std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  size_t len = 0;
  while (i < s.size() && utf8_sequence(p + i, s.size() - i, len))
    i += len;
  if (i == s.size())
    return std::string{s};
  std::string out;
  out.reserve(s.size() + 16);
  out.append(s.data(), i);
  while (i < s.size()) {
    if (utf8_sequence(p + i, s.size() - i, len))
      out.append(s.data() + i, len);
    else
      out += "\xEF\xBF\xBD";
    i += len;
  }
  return out;
}

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
      put_key(key);
    w_.StartArray();
    return *this;
  }
  json_writer& end_array() {
    w_.EndArray();
    return *this;
  }
  json_writer& object(const char* key) {
    put_key(key);
    w_.StartObject();
    return *this;
  }
  json_writer& kv(const char* key, const std::string& v) {
    put_key(key);
    put_string(v);
    return *this;
  }
  json_writer& kv(const char* key, const char* v) {
    return kv(key, std::string{v});
  }
  json_writer& kv(const char* key, bool v) {
    put_key(key);
    w_.Bool(v);
    return *this;
  }
  json_writer& kv(const char* key, int64_t v) {
    put_key(key);
    w_.Int64(v);
    return *this;
  }
  json_writer& kv(const char* key, uint64_t v) {
    put_key(key);
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
    put_string(v);
    return *this;
  }
  /// Inserts text that is already JSON (a child's status); ill-formed
  /// UTF-8 in it is replaced too.
  json_writer& raw(const std::string& json) {
    auto s = valid_utf8(json);
    w_.RawValue(s.data(), s.size(), rapidjson::kObjectType);
    return *this;
  }
  json_writer& key(const char* k) {
    put_key(k);
    return *this;
  }
  std::string str() const { return buf_.GetString(); }

private:
  // RapidJSON escapes control characters but copies other bytes as they
  // are (its validating flag stops mid-document instead).
  void put_string(std::string_view v) {
    auto s = valid_utf8(v);
    w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void put_key(const char* k) {
    auto s = valid_utf8(k);
    w_.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }

  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

} // namespace networkd
