// SPDX-License-Identifier: MIT
// lainlet's wire: the event stream (SSE lines), chunked transfer decoding
// and HTTP response heads. Bounded, no recursion; fuzzed.

#include "net/peers/lainlet.hpp"
#include "net/peers/lainlet_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "net/base/result.hpp"

namespace networkd::lainlet {

using namespace detail;

namespace {

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 19)
    return false;
  uint64_t n = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9')
      return false;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  out = n;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

} // namespace

// -- event stream -------------------------------------------------------------

const char* to_string(event_kind k) {
  switch (k) {
    case event_kind::init:
      return "init";
    case event_kind::update:
      return "update";
    case event_kind::erase:
      return "delete";
    case event_kind::error:
      return "error";
    case event_kind::heartbeat:
      return "heartbeat";
    case event_kind::unknown:
      break;
  }
  return "unknown";
}

event_kind event_kind_from(std::string_view name) {
  if (name == "init")
    return event_kind::init;
  if (name == "update")
    return event_kind::update;
  if (name == "delete")
    return event_kind::erase;
  if (name == "error")
    return event_kind::error;
  if (name == "heartbeat")
    return event_kind::heartbeat;
  return event_kind::unknown;
}

stream_parser::stream_parser(size_t max_line, size_t max_event)
    : max_line_(max_line), max_event_(max_event) {}

feed_result stream_parser::feed(std::string_view bytes) {
  feed_result out;
  feed(bytes, out);
  return out;
}

void stream_parser::feed(std::string_view bytes, feed_result& out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) {
      auto rest = bytes.substr(pos);
      if (discarding_)
        return;
      if (line_.size() + rest.size() > max_line_) {
        std::string().swap(line_);
        discarding_ = true;
        poison("line longer than " + std::to_string(max_line_) + " bytes", out);
        return;
      }
      line_.append(rest);
      return;
    }
    auto piece = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    if (line_.size() + piece.size() > max_line_) {
      std::string().swap(line_);
      poison("line longer than " + std::to_string(max_line_) + " bytes", out);
      continue;
    }
    if (line_.empty()) {
      on_line(piece, out);
    } else {
      line_.append(piece);
      on_line(line_, out);
      line_.clear();
    }
  }
}

void stream_parser::reset() {
  std::string().swap(line_);
  discarding_ = false;
  cur_ = event{};
  cur_started_ = false;
  cur_has_data_ = false;
  cur_poisoned_ = false;
  cur_size_ = 0;
}

void stream_parser::on_line(std::string_view line, feed_result& out) {
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  if (line.empty()) {
    dispatch(out);
    return;
  }
  if (line.front() == ':') // a comment in the event-stream format
    return;
  auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    ++garbage_lines_;
    return;
  }
  auto field = line.substr(0, colon);
  auto value = line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field != "id" && field != "event" && field != "data") {
    ++garbage_lines_;
    return;
  }
  cur_started_ = true;
  if (cur_poisoned_)
    return;
  cur_size_ += line.size();
  if (cur_size_ > max_event_) {
    poison("event longer than " + std::to_string(max_event_) + " bytes", out);
    return;
  }
  if (field == "id") {
    uint64_t id = 0;
    if (parse_u64(value, id))
      cur_.id = id;
    else
      ++garbage_lines_;
  } else if (field == "event") {
    cur_.name.assign(value);
    cur_.kind = event_kind_from(value);
  } else {
    if (cur_has_data_)
      cur_.data += '\n';
    cur_.data.append(value);
    cur_has_data_ = true;
  }
}

void stream_parser::poison(std::string why, feed_result& out) {
  if (!cur_poisoned_)
    out.errors.push_back(std::move(why) + ": event dropped");
  cur_poisoned_ = true;
  cur_started_ = true;
  std::string().swap(cur_.data);
}

void stream_parser::dispatch(feed_result& out) {
  if (cur_started_) {
    if (cur_poisoned_) {
      ++dropped_events_;
    } else {
      ++events_;
      out.events.push_back(std::move(cur_));
    }
  }
  cur_ = event{};
  cur_started_ = false;
  cur_has_data_ = false;
  cur_poisoned_ = false;
  cur_size_ = 0;
}

// -- chunked ------------------------------------------------------------------

bool chunked_decoder::feed(std::string_view bytes, std::string& out) {
  constexpr size_t max_line = 4096;
  auto fail = [this](std::string why) {
    state_ = state::failed;
    error_ = std::move(why);
    return false;
  };
  size_t i = 0;
  while (i < bytes.size()) {
    char ch = bytes[i];
    switch (state_) {
      case state::done:
        return true;
      case state::failed:
        return false;
      case state::size: {
        int digit = -1;
        if (ch >= '0' && ch <= '9')
          digit = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
          digit = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
          digit = ch - 'A' + 10;
        if (digit >= 0) {
          if (++size_digits_ > 15)
            return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        } else if (size_digits_ == 0) {
          return fail("bad chunk size");
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
          state_ = state::ext;
          trailer_line_ = 0;
        } else if (ch == '\r') {
          state_ = state::size_lf;
        } else if (ch == '\n') {
          size_digits_ = 0;
          state_ = remaining_ == 0 ? state::trailer : state::data;
          trailer_line_ = 0;
        } else {
          return fail("bad chunk size");
        }
        ++i;
        break;
      }
      case state::ext:
        if (ch == '\n') {
          size_digits_ = 0;
          state_ = remaining_ == 0 ? state::trailer : state::data;
          trailer_line_ = 0;
        } else if (++trailer_line_ > max_line) {
          return fail("chunk extension too long");
        }
        ++i;
        break;
      case state::size_lf:
        if (ch != '\n')
          return fail("bad chunk size line");
        size_digits_ = 0;
        state_ = remaining_ == 0 ? state::trailer : state::data;
        trailer_line_ = 0;
        ++i;
        break;
      case state::data: {
        auto n = static_cast<size_t>(
          std::min<uint64_t>(remaining_, bytes.size() - i));
        out.append(bytes.substr(i, n));
        remaining_ -= n;
        i += n;
        if (remaining_ == 0)
          state_ = state::data_cr;
        break;
      }
      case state::data_cr:
        if (ch == '\r')
          state_ = state::data_lf;
        else if (ch == '\n')
          state_ = state::size;
        else
          return fail("missing CRLF after chunk data");
        ++i;
        break;
      case state::data_lf:
        if (ch != '\n')
          return fail("missing LF after chunk data");
        state_ = state::size;
        ++i;
        break;
      case state::trailer:
        if (ch == '\n') {
          if (trailer_line_ == 0) {
            state_ = state::done;
            return true;
          }
          trailer_line_ = 0;
        } else if (ch != '\r' && ++trailer_line_ > max_line) {
          return fail("trailer line too long");
        }
        ++i;
        break;
    }
  }
  return state_ != state::failed;
}

result<response_head> parse_head(std::string_view head) {
  response_head out;
  auto eol = head.find('\n');
  auto status_line = trim(head.substr(0, eol));
  if (status_line.substr(0, 7) != "HTTP/1." || status_line.size() < 12
      || status_line[8] != ' ')
    return make_failure("http",
                        "bad status line \"" + printable(status_line) + "\"");
  uint64_t code = 0;
  if (!parse_u64(status_line.substr(9, 3), code) || code < 100 || code > 999)
    return make_failure("http",
                        "bad status line \"" + printable(status_line) + "\"");
  out.status = static_cast<int>(code);
  out.reason.assign(trim(status_line.substr(12)));
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 1);
    eol = head.find('\n');
    auto line = trim(head.substr(0, eol));
    if (line.empty())
      continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return make_failure("http",
                          "bad header line \"" + printable(line) + "\"");
    auto name = lower(trim(line.substr(0, colon)));
    auto value = trim(line.substr(colon + 1));
    if (name == "transfer-encoding") {
      auto v = lower(value);
      if (v.find("chunked") != std::string::npos)
        out.chunked = true;
      else if (v != "identity")
        return make_failure("http", "unsupported transfer-encoding \""
                                      + printable(value) + "\"");
    } else if (name == "content-length") {
      uint64_t n = 0;
      if (!parse_u64(value, n))
        return make_failure("http",
                            "bad content-length \"" + printable(value) + "\"");
      out.content_length = n;
    }
  }
  if (out.chunked)
    out.content_length.reset();
  return out;
}
} // namespace networkd::lainlet
