// SPDX-License-Identifier: MIT
// libFuzzer target for Docker's /containers/json answer (net/peers/docker.hpp
// parse_running), the whole HTTP reply around it (parse_reply) and the id
// matching done with what it returns (is_running).
//
// Input: the body (fuzz_util.hpp run escapes), then optionally 0xff and a
// container id as lainlet reports it. The body is also parsed as a whole
// reply, and behind a fixed 200 head (both must agree).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "net/peers/docker.hpp"

using namespace networkd;
using networkd::fuzz::broken;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  auto parts = fuzz::split(in, fuzz::sep, 2);
  auto body = fuzz::expand(parts[0]);
  (void)docker::parse_reply(body);
  auto running = docker::parse_running(body);
  auto wrapped = docker::parse_reply("HTTP/1.1 200 OK\r\n\r\n" + body);
  if (running.ok() != wrapped.ok() || (running.ok() && *running != *wrapped))
    broken("a 200 reply and its body parse differently");
  if (!running)
    return 0;
  for (auto& id : *running)
    if (!docker::is_running(*running, id))
      broken("a running container's own id is not running");
  if (parts.size() > 1)
    (void)docker::is_running(*running, std::string{parts[1]});
  return 0;
}
