// SPDX-License-Identifier: MIT
// libFuzzer target for Docker's /containers/json answer (net/docker.hpp
// parse_running) and the id matching done with what it returns
// (is_running).
//
// Input: the body (fuzz_util.hpp run escapes), then optionally 0xff and a
// container id as lainlet reports it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "net/docker.hpp"

using namespace networkd;
using networkd::fuzz::broken;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  auto parts = fuzz::split(in, fuzz::sep, 2);
  auto body = fuzz::expand(parts[0]);
  auto running = docker::parse_running(body);
  if (!running)
    return 0;
  for (auto& id : *running)
    if (!docker::is_running(*running, id))
      broken("a running container's own id is not running");
  if (parts.size() > 1)
    (void) docker::is_running(*running, std::string{parts[1]});
  return 0;
}
