// SPDX-License-Identifier: MIT
#include "tests/support/daemon.hpp"

#include <httplib.h>

#include <stdexcept>

namespace networkd::test {

http_reply http_get(uint16_t port, const std::string& path) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(1, 0);
  cli.set_read_timeout(5, 0);
  auto res = cli.Get(path.c_str());
  if (!res)
    return {};
  return {res->status, res->body};
}

daemon_process::daemon_process(const std::string& etcd_endpoints,
                               std::vector<std::string> extra_flags,
                               const std::string& hostname,
                               std::vector<std::string> env, const netns* ns,
                               std::vector<std::string> wrapper)
  : dir_("networkd-daemon"),
    api_port_(free_port()),
    dns_port_(free_port()),
    ns_(ns) {
  write_file(resolv_conf(), "nameserver 127.0.0.53\n");
  write_file(hosts_file(), "127.0.0.1 localhost\n");
  argv_ = {NETWORKD_BINARY,
           "-etcd.endpoint=" + etcd_endpoints,
           "-hostname=" + hostname,
           "-net.interface=lo",
           "-net.address=127.0.0.1",
           "-godns.addr=127.0.0.1:" + std::to_string(dns_port_),
           "-api.addr=127.0.0.1:" + std::to_string(api_port_),
           "-lock.filename=" + lock_file(),
           "--resolv-conf=" + resolv_conf(),
           "--hosts-file=" + hosts_file()};
  for (auto& f : extra_flags)
    argv_.push_back(f);
  auto argv = argv_;
  argv.insert(argv.begin(), wrapper.begin(), wrapper.end());
  if (ns_ != nullptr)
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns_->name()});
  proc_ = std::make_unique<process>(argv, dir_.file("networkd.log"),
                                    std::move(env));
  if (!wait_until([&] { return get("/healthz").status == 200; }, 15s, 20ms))
    throw std::runtime_error("networkd did not come up:\n" + log());
}

daemon_process::~daemon_process() {
  proc_->kill();
}

http_reply daemon_process::get(const std::string& path) const {
  if (ns_ != nullptr)
    return ns_->run([&] { return http_get(api_port_, path); });
  return http_get(api_port_, path);
}

} // namespace networkd::test
