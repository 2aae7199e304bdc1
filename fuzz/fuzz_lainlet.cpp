// SPDX-License-Identifier: MIT
// libFuzzer target for what networkd reads from lainlet and deployd
// (net/peers/lainlet.hpp): the body of the /v2/containers watch reply through
// the chunked decoder and the event-stream parser, the containers JSON of every
// data event (parse_containers), and deployd's pod groups from etcd
// (parse_pod_groups). The stream is fed whole and in fuzzed pieces: both
// must give the same events, counters and body, as the parsers promise that
// bytes may be split anywhere.
//
// Input: byte 0 = mode (bits 0-1: 0 event stream, 1 chunked event stream,
// 2 pod groups, 3 containers JSON; bit 2: small size limits; bit 3: node
// filter "node1"; bit 4: the text is an HTTP reply head for parse_head
// instead), byte 1 = how the stream is cut into pieces, then the
// text (fuzz_util.hpp run escapes). Pod groups: records separated by 0xff,
// key 0xfe value (a key not starting with '/' gets the pod groups prefix).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_util.hpp"
#include "net/cluster/config.hpp"
#include "net/peers/lainlet.hpp"

using namespace networkd;
using namespace networkd::lainlet;
using networkd::fuzz::broken;

namespace {

/// Cuts `text` into pieces whose sizes follow a small generator seeded by
/// `seed` (0: one piece).
std::vector<std::string_view> pieces(std::string_view text, uint8_t seed) {
  std::vector<std::string_view> out;
  uint32_t x = seed;
  while (!text.empty()) {
    size_t n = text.size();
    if (seed != 0) {
      x = x * 1103515245u + 12345u;
      n = std::min<size_t>(n, 1 + (x >> 16) % 64);
    }
    out.push_back(text.substr(0, n));
    text.remove_prefix(n);
  }
  return out;
}

void check_containers(const containers_result& r, std::string_view node) {
  for (size_t i = 0; i < r.containers.size(); ++i) {
    auto& c = r.containers[i];
    if (i > 0 && !(r.containers[i - 1] < c))
      broken("containers not sorted and unique");
    if (c.app.empty() || c.proc.empty() || c.container_id.empty()
        || !config::is_ipv4(c.ip) || !config::is_ipv4(c.node_ip))
      broken("a container passed validation without app, proc, id or IPs");
    if (!node.empty() && c.node != node && c.node_ip != node)
      broken("a container of another node passed the node filter");
  }
}

bool same(const feed_result& a, const feed_result& b) {
  if (a.events.size() != b.events.size() || a.errors != b.errors)
    return false;
  for (size_t i = 0; i < a.events.size(); ++i) {
    auto& x = a.events[i];
    auto& y = b.events[i];
    if (x.id != y.id || x.kind != y.kind || x.name != y.name
        || x.data != y.data)
      return false;
  }
  return true;
}

void stream(std::string_view body, uint8_t seed, bool small,
            std::string_view node) {
  size_t max_line = small ? 64 : default_max_size;
  size_t max_event = small ? 256 : default_max_size;
  stream_parser whole{max_line, max_event};
  stream_parser cut{max_line, max_event};
  auto a = whole.feed(body);
  feed_result b;
  for (auto p : pieces(body, seed))
    cut.feed(p, b);
  if (!same(a, b) || whole.events() != cut.events()
      || whole.garbage_lines() != cut.garbage_lines()
      || whole.dropped_events() != cut.dropped_events())
    broken("the event stream parses differently when cut into pieces");
  for (auto& ev : a.events) {
    if (ev.data.size() > max_event)
      broken("an event longer than max_event was delivered");
    (void)to_string(ev.kind);
    if (ev.kind != event_kind::init && ev.kind != event_kind::update
        && ev.kind != event_kind::erase)
      continue;
    // As the client's apply(): the set comes from the event's data.
    if (auto r
        = parse_containers(ev.data, node, small ? 4096 : default_max_size))
      check_containers(*r, node);
  }
}

void chunked(std::string_view raw, uint8_t seed, bool small,
             std::string_view node) {
  chunked_decoder whole;
  chunked_decoder cut;
  std::string a;
  std::string b;
  bool ok_a = whole.feed(raw, a);
  bool ok_b = true;
  for (auto p : pieces(raw, seed))
    ok_b = cut.feed(p, b);
  if (ok_a != ok_b || a != b || whole.done() != cut.done()
      || whole.failed() != cut.failed())
    broken("chunked framing decodes differently when cut into pieces");
  stream(a, seed, small, node);
}

void pod_groups(std::string_view text, bool small, std::string_view node) {
  std::vector<std::pair<std::string, std::string>> kvs;
  for (auto record : fuzz::split(text, fuzz::sep)) {
    auto kv = fuzz::split(record, fuzz::kv_sep, 2);
    std::string key{kv[0]};
    if (key.empty() || key[0] != '/')
      key = std::string{pod_groups_prefix} + key;
    kvs.emplace_back(std::move(key),
                     fuzz::expand(kv.size() > 1 ? kv[1] : std::string_view{}));
  }
  auto r = parse_pod_groups(kvs, node, small ? 4096 : default_max_size);
  check_containers(r, node);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  uint8_t mode = data[0];
  uint8_t seed = data[1];
  bool small = mode & 4;
  std::string_view node = (mode & 8) ? "node1" : "";
  std::string_view rest{reinterpret_cast<const char*>(data) + 2, size - 2};
  if (mode & 16) {
    auto head = parse_head(rest);
    if (head
        && (head->status < 100 || head->status > 999
            || (head->chunked && head->content_length)))
      fuzz::broken("parse_head accepted a bad status or framing");
    return 0;
  }
  switch (mode & 3) {
    case 0:
      stream(fuzz::expand(rest), seed, small, node);
      break;
    case 1:
      chunked(fuzz::expand(rest), seed, small, node);
      break;
    case 2:
      pod_groups(rest, small, node);
      break;
    case 3:
      if (auto r = parse_containers(fuzz::expand(rest), node,
                                    small ? 4096 : default_max_size))
        check_containers(*r, node);
      break;
  }
  return 0;
}
