// SPDX-License-Identifier: MIT
// Long random runs of the VIP holder's sequencer in a small simulated
// world — an etcd with one session lease and the lock key, a kernel with
// the address and the rules, a second node that takes the lock when it is
// free — checking the safety rules after every step.
#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <sstream>

#include "net/cluster/vip_sequencer.hpp"

using namespace networkd;
using namespace std::chrono_literals;
using vip::act;
using vip::lock_state;
using ms = std::chrono::milliseconds;

namespace {

constexpr ms tick{25};
constexpr ms ttl{3000};
constexpr ms margin{1000}; ///< the supervisor's fencing margin

struct counts {
  uint64_t serving = 0;   ///< ticks spent serving
  uint64_t fenced = 0;    ///< wake-ups past the deadline
  uint64_t expired = 0;   ///< addresses the kernel expired
  uint64_t removed = 0;   ///< addresses removed by someone else
  uint64_t stolen = 0;    ///< times the other node took the lock
  uint64_t released = 0;  ///< locks let go
  uint64_t respawned = 0; ///< holders started again after a delete
  uint64_t failed = 0;    ///< adds done whose answer failed (a timeout)
};

class world {
public:
  explicit world(uint32_t seed) : rng_(seed) {
    t_ = vip::seq_time{std::chrono::hours(1)};
    grant();
    spawn();
  }

  /// One tick: the world moves, then maybe one random event.
  void step() {
    t_ += tick;
    settle();
    event();
    settle();
    check();
  }

  const counts& seen() const { return n_; }

private:
  // -- the holder -----------------------------------------------------------

  void spawn() {
    vip::holder_facts f;
    f.hostname = "n1";
    f.node_ip = "10.1.0.1";
    f.spreading = true;
    f.configured = true;
    auto cfg = config::parse_vip("10.0.0.5", R"({"app":"a","proc":"web",
      "ports":[{"src":"80"}]})");
    REQUIRE(cfg);
    f.config = *cfg;
    f.healthy = vip::container{"172.20.0.2", 1};
    f.leftover_until = t_ + 2s;
    f_ = f;
    phase_ = "created";
    in_flight_.reset();
    wake_at_.reset();
    retry_at_.reset();
    if (lease_ != 0 && now_alive())
      vip::lease_changed(f_, lease_, deadline_);
    advance();
  }

  bool busy() const { return in_flight_.has_value(); }

  void advance() {
    if (busy())
      return;
    for (int round = 0; round < 16; ++round) {
      auto a = vip::next(f_, t_);
      if (!a.phase.empty())
        phase_ = a.phase;
      if (!vip::ends_round(a.what)) {
        vip::record(f_, a);
        continue;
      }
      if (a.what != act::rest)
        dispatch(a);
      if (auto w = vip::wake_up(f_, t_); w && (!wake_at_ || *w < *wake_at_))
        wake_at_ = w;
      return;
    }
    FAIL("the sequencer did not settle");
  }

  /// Kernel and etcd effects happen when sent; the answer comes later.
  void dispatch(const vip::action& a) {
    log_.push_back(vip::to_string(a.what));
    in_flight_ = a;
    done_at_ = t_ + tick * std::uniform_int_distribution<int>(0, 6)(rng_);
    switch (a.what) {
      case act::add_address:
        REQUIRE(a.valid_s >= 1);
        address_ = true;
        address_until_ = t_ + std::chrono::seconds(a.valid_s);
        break;
      case act::remove_address:
      case act::remove_leftover_address:
        address_ = false;
        break;
      case act::install_rules:
        REQUIRE_FALSE(a.rules.empty());
        rules_ = true;
        break;
      case act::remove_rules:
      case act::remove_leftover_rules:
        REQUIRE_FALSE(address_); // address, then rules
        rules_ = false;
        break;
      case act::release_lock:
        REQUIRE_FALSE(address_); // address, rules, then the lock
        REQUIRE_FALSE(rules_);
        if (lock_ == "n1")
          drop_lock();
        ++n_.released;
        break;
      default:
        break;
    }
  }

  void answered() {
    auto a = *in_flight_;
    in_flight_.reset();
    if (a.what == act::take_lock) {
      vip::record(f_, a);
      if (!lease_alive_on_server(a.lease)) {
        f_.lock = lock_state::none; // the txn failed: try again in 1 s
        retry_at_ = t_ + 1s;
        return;
      }
      if (lock_.empty()) {
        lock_ = "n1";
        lock_lease_ = a.lease;
      }
      vip::lock_answered(f_, lock_ == "n1", lock_);
    } else if ((a.what == act::add_address || a.what == act::install_rules)
               && std::uniform_int_distribution<int>(0, 5)(rng_) == 0) {
      // Done, but the answer timed out: the holder retries in 1 s.
      vip::failed(f_, a);
      ++n_.failed;
      retry_at_ = t_ + 1s;
      return;
    } else {
      vip::record(f_, a);
    }
    advance();
  }

  /// Everything time does by itself, in order.
  void settle() {
    if (address_ && t_ >= address_until_) {
      address_ = false; // the kernel's expiry, seen by the monitor
      ++n_.expired;
      pending_removal_ = true;
    }
    if (lease_ != 0 && t_ >= server_expiry_)
      expire_on_server();
    if (lease_ == 0 && t_ >= regrant_at_)
      grant();
    if (in_flight_ && t_ >= done_at_)
      answered();
    if (pending_removal_ && !in_flight_ && f_.address_on) {
      pending_removal_ = false;
      vip::address_removed(f_, t_);
      advance();
    } else if (pending_removal_ && !in_flight_ && !f_.address_on) {
      pending_removal_ = false;
    }
    if (retry_at_ && t_ >= *retry_at_) {
      retry_at_.reset();
      advance();
    }
    if (wake_at_ && t_ >= *wake_at_) {
      wake_at_.reset();
      if (vip::fence(f_, t_))
        ++n_.fenced;
      advance();
    }
    if (f_.retiring && phase_ == "idle" && !busy()) {
      ++n_.respawned; // the key comes back: a new holder
      spawn();
    }
  }

  // -- etcd -------------------------------------------------------------------

  bool now_alive() const { return lease_ != 0 && t_ < server_expiry_; }

  bool lease_alive_on_server(int64_t id) const {
    return id != 0 && id == lease_ && now_alive();
  }

  void grant() {
    lease_ = ++last_lease_;
    renew();
  }

  /// The supervisor's renewal: the server keeps the lease a TTL from now,
  /// the holders get the local deadline, the link worker the lifetimes.
  void renew() {
    server_expiry_ = t_ + ttl;
    deadline_ = t_ + ttl - margin;
    if (address_) {
      auto left
        = std::chrono::duration_cast<std::chrono::seconds>(deadline_ - t_);
      address_until_ = t_ + std::max(left, std::chrono::seconds(1));
    }
    vip::lease_changed(f_, lease_, deadline_);
    advance();
  }

  void expire_on_server() {
    if (lock_ == "n1" && lock_lease_ == lease_)
      drop_lock();
    lease_ = 0;
    // The supervisor learns it, tells the holders, and grants a new one.
    vip::lease_changed(f_, 0, {});
    advance();
    regrant_at_ = t_ + tick * std::uniform_int_distribution<int>(1, 40)(rng_);
  }

  void drop_lock() {
    lock_.clear();
    lock_lease_ = 0;
    watch_lock(true, "");
  }

  void watch_lock(bool deleted, const std::string& value) {
    vip::lock_key_changed(f_, deleted, value);
    advance();
  }

  // -- random events --------------------------------------------------------

  void event() {
    std::uniform_int_distribution<int> pick(0, 99);
    auto p = pick(rng_);
    if (p < 12) {
      // keep-alive, unless the session stalls
      if (now_alive() && t_ >= stall_until_)
        renew();
    } else if (p < 13) {
      stall_until_ = t_ + ms{std::uniform_int_distribution<int>(0, 5000)(rng_)};
    } else if (p < 14) {
      if (lock_.empty()) {
        lock_ = "n2";
        ++n_.stolen;
        watch_lock(false, "n2");
      }
    } else if (p < 17) {
      if (lock_ == "n2") {
        lock_.clear();
        watch_lock(true, "");
      }
    } else if (p < 19) {
      // health flaps, and the container moves now and then
      if (f_.healthy) {
        f_.healthy.reset();
      } else {
        auto moved = pick(rng_) < 30;
        f_.healthy
          = vip::container{moved ? "172.20.0.3" : "172.20.0.2", moved ? 2 : 1};
      }
      advance();
    } else if (p < 21) {
      if (address_) {
        address_ = false; // someone else removed it
        ++n_.removed;
        pending_removal_ = true;
      }
    } else if (p < 22) {
      if (f_.config.excluded_nodes.empty())
        f_.config.excluded_nodes = {"n1"};
      else
        f_.config.excluded_nodes.clear();
      advance();
    } else if (p < 23) {
      std::uniform_int_distribution<int64_t> load(0, 3);
      f_.spread_used = {{1, load(rng_)}, {2, load(rng_)}};
      advance();
    } else if (p == 23 && pick(rng_) < 20) {
      f_.retiring = true; // the key was deleted
      advance();
    }
  }

  // -- the rules checked after every step ----------------------------------

  void check() {
    std::ostringstream where;
    where << "at tick " << (t_.time_since_epoch() / tick) << ", phase "
          << phase_ << ", last effects:";
    for (auto i = log_.size() > 6 ? log_.size() - 6 : 0; i < log_.size(); ++i)
      where << " " << log_[i];
    INFO(where.str());
    // A failed effect waiting for its retry is between effects, not at rest.
    if (phase_ == "serving" && !busy() && !retry_at_) {
      ++n_.serving;
      // Never serving without a live lock and a deadline ahead.
      REQUIRE(lock_ == "n1");
      REQUIRE(lease_alive_on_server(lock_lease_));
      REQUIRE(f_.lease_deadline > t_);
      REQUIRE(address_);
    }
    if (!busy() && !retry_at_ && (phase_ == "standby" || phase_ == "idle")) {
      // At rest and not serving: nothing of ours left in the kernel.
      REQUIRE_FALSE(address_);
      REQUIRE_FALSE(rules_);
    }
    if (address_) {
      // Never an address that outlives the lease (on the server, and by
      // more than the last second of the local deadline), and never the
      // address here while the other node holds the lock.
      REQUIRE(address_until_ <= server_expiry_);
      REQUIRE(address_until_ < deadline_ + 1s);
      REQUIRE(lock_ != "n2");
    }
  }

  std::mt19937 rng_;
  vip::seq_time t_;
  counts n_;

  // the holder
  vip::holder_facts f_;
  std::string phase_;
  std::optional<vip::action> in_flight_;
  vip::seq_time done_at_{};
  std::optional<vip::seq_time> wake_at_;
  std::optional<vip::seq_time> retry_at_;
  std::vector<std::string> log_;

  // etcd
  int64_t lease_ = 0;
  int64_t last_lease_ = 100;
  vip::seq_time server_expiry_{};
  vip::seq_time deadline_{};
  vip::seq_time regrant_at_{};
  vip::seq_time stall_until_{};
  std::string lock_; ///< the lock key's value ("" absent)
  int64_t lock_lease_ = 0;

  // the kernel
  bool address_ = false;
  vip::seq_time address_until_{};
  bool pending_removal_ = false;
  bool rules_ = false;
};

} // namespace

TEST_CASE("sequencer: random runs keep one owner and the release order",
          "[vip_sequencer]") {
  counts total;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    INFO("seed " << seed);
    world w{seed};
    for (int i = 0; i < 4000; ++i)
      w.step();
    auto& n = w.seen();
    total.serving += n.serving;
    total.fenced += n.fenced;
    total.expired += n.expired;
    total.removed += n.removed;
    total.stolen += n.stolen;
    total.released += n.released;
    total.respawned += n.respawned;
    total.failed += n.failed;
  }
  // The runs went through every kind of trouble, not just the happy path.
  CHECK(total.serving > 5000);
  CHECK(total.fenced > 10);
  CHECK(total.expired > 10);
  CHECK(total.removed > 10);
  CHECK(total.stolen > 10);
  CHECK(total.released > 10);
  CHECK(total.failed > 10);
  CHECK(total.respawned > 3);
}
