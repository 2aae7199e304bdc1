// SPDX-License-Identifier: MIT
#include "tests/support/daemon.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <sys/wait.h>

#include <csignal>
#include <exception>
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
    : dir_("networkd-daemon"), api_port_(free_port()), dns_port_(free_port()),
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
  // Hermetic: no Docker cross-check unless the test asks for one (a host's
  // real Docker would judge the lab's stand-in containers).
  bool docker = false;
  for (auto& f : extra_flags)
    docker = docker || f.find("docker.endpoint") != std::string::npos;
  if (!docker)
    argv_.push_back("-docker.endpoint=unix://" + dir_.file("no-docker.sock"));
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

namespace {

/// The first ASan/UBSan/LSan report in a log, with context ("" if none).
std::string sanitizer_report(const std::string& log) {
  for (auto mark : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer"}) {
    auto at = log.find(mark);
    if (at != std::string::npos)
      return log.substr(at > 2000 ? at - 2000 : 0, 6000);
  }
  return {};
}

} // namespace

daemon_process::~daemon_process() {
  // A daemon still running is stopped as systemd would, and must exit 0;
  // one the test stopped or killed itself was judged by the test.
  bool stopping = proc_->running();
  int status = -1;
  if (stopping) {
    proc_->signal(SIGTERM);
    status = proc_->wait(20s);
    if (status == -1)
      proc_->kill();
  }
  // A test that already failed (REQUIRE is unwinding) says why itself.
  if (std::uncaught_exceptions() > 0)
    return;
  auto log_text = log();
  auto report = sanitizer_report(log_text);
  if (!report.empty())
    FAIL_CHECK("sanitizer report in networkd's log:\n" << report);
  if (stopping
      && !(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    auto tail = log_text.size() > 3000 ? log_text.substr(log_text.size() - 3000)
                                       : log_text;
    FAIL_CHECK("networkd did not exit 0 within 20 s of SIGTERM (status "
               << status << "):\n"
               << tail);
  }
}

http_reply daemon_process::get(const std::string& path) const {
  if (ns_ != nullptr)
    return ns_->run([&] { return http_get(api_port_, path); });
  return http_get(api_port_, path);
}

} // namespace networkd::test
