// SPDX-License-Identifier: MIT
#include "net/etcd/vip_lock.hpp"

#include <atomic>
#include <set>

#include "net/base/log.hpp"

namespace networkd::vip {

etcd::txn_request lock_txn(const lock_ask& a) {
  etcd::txn_request req;
  req.compares.push_back({a.key,
                          etcd::compare::target::create_revision,
                          etcd::compare::op::equal,
                          {},
                          0});
  req.success.push_back({etcd::txn_op::kind::put, a.key, a.value, a.lease});
  req.failure.push_back({etcd::txn_op::kind::range, a.key, {}, 0});
  return req;
}

lock_verdict judge_lock(const lock_ask& a, const etcd::txn_result& r) {
  if (r.succeeded)
    return {lock_answer{true, a.value, r.revision}, 0};
  if (r.ranges.empty() || r.ranges[0].empty())
    return {lock_answer{false, "", 0}, 0}; // deleted meanwhile: try again
  auto& kv = r.ranges[0][0];
  if (kv.value != a.value)
    return {lock_answer{false, kv.value, kv.mod_revision}, 0};
  if (kv.lease == a.lease)
    return {lock_answer{true, a.value, kv.mod_revision}, 0};
  return {std::nullopt, kv.mod_revision};
}

etcd::txn_request rebind_txn(const lock_ask& a, int64_t mod_revision) {
  etcd::txn_request req;
  req.compares.push_back({a.key, etcd::compare::target::value,
                          etcd::compare::op::equal, a.value, 0});
  req.compares.push_back({a.key,
                          etcd::compare::target::mod_revision,
                          etcd::compare::op::equal,
                          {},
                          mod_revision});
  req.success.push_back({etcd::txn_op::kind::put, a.key, a.value, a.lease});
  return req;
}

lock_answer judge_rebind(const lock_ask& a, const etcd::txn_result& r) {
  if (!r.succeeded)
    return lock_answer{false, "", 0}; // changed meanwhile: try again
  return lock_answer{true, a.value, r.revision};
}

namespace {

/// Splits the indexes of `reqs` into rounds of at most max_nested_txns
/// txns with distinct keys, keeping the order.
std::vector<std::vector<size_t>> rounds_of(const std::vector<size_t>& todo,
                                           const std::vector<lock_ask>& asks) {
  std::vector<std::vector<size_t>> out;
  std::vector<std::set<std::string>> keys;
  for (auto i : todo) {
    // The first round after the last one holding this key, so that two
    // asks of one key stay in order.
    size_t first = 0;
    for (size_t k = out.size(); k > 0; --k)
      if (keys[k - 1].count(asks[i].key) > 0) {
        first = k;
        break;
      }
    size_t k = first;
    while (k < out.size() && out[k].size() >= etcd::client::max_nested_txns)
      ++k;
    if (k == out.size()) {
      out.emplace_back();
      keys.emplace_back();
    }
    out[k].push_back(i);
    keys[k].insert(asks[i].key);
  }
  return out;
}

/// Runs reqs[i] for every i in `round`: nested in one txn, or one by one
/// when the server cannot nest.
std::vector<result<etcd::txn_result>>
run_round(etcd::client& c, const std::vector<etcd::txn_request>& reqs,
          const std::vector<size_t>& round, std::atomic<bool>& nested) {
  std::vector<result<etcd::txn_result>> out;
  if (nested) {
    std::vector<etcd::txn_request> batch;
    for (auto i : round)
      batch.push_back(reqs[i]);
    auto r = c.txns(batch);
    if (r) {
      for (auto& t : *r)
        out.emplace_back(std::move(t));
      return out;
    }
    if (r.error().code != "internal" || round.size() == 1) {
      for (size_t k = 0; k < round.size(); ++k)
        out.emplace_back(r.error());
      return out;
    }
    NWD_LOG_WARN("etcd",
                 "nested txns refused ({}): one txn per lock from "
                 "now on",
                 r.error().to_string());
    nested = false;
  }
  for (auto i : round)
    out.push_back(c.txn(reqs[i]));
  return out;
}

} // namespace

std::vector<result<lock_answer>> take_locks(etcd::client& c,
                                            const std::vector<lock_ask>& asks) {
  static std::atomic<bool> nested{true}; // until a server refuses them
  std::vector<std::optional<result<lock_answer>>> answers(asks.size());
  std::vector<etcd::txn_request> reqs;
  std::vector<size_t> todo;
  for (size_t i = 0; i < asks.size(); ++i) {
    reqs.push_back(lock_txn(asks[i]));
    todo.push_back(i);
  }
  // Runs reqs[i] for the asks in `which`, round by round; `judge` reads a
  // successful outcome, a failed round trip fails its asks.
  auto run_all = [&](const std::vector<size_t>& which, auto judge) {
    for (auto& round : rounds_of(which, asks)) {
      auto rs = run_round(c, reqs, round, nested);
      for (size_t k = 0; k < round.size(); ++k) {
        if (rs[k])
          judge(round[k], *rs[k]);
        else
          answers[round[k]] = rs[k].error();
      }
    }
  };
  std::vector<int64_t> rebind_at(asks.size(), 0);
  std::vector<size_t> rebinds;
  run_all(todo, [&](size_t i, const etcd::txn_result& r) {
    auto v = judge_lock(asks[i], r);
    if (v.answer) {
      answers[i] = *v.answer;
    } else {
      rebind_at[i] = v.rebind_at;
      rebinds.push_back(i);
    }
  });
  if (!rebinds.empty()) {
    for (auto i : rebinds)
      reqs[i] = rebind_txn(asks[i], rebind_at[i]);
    run_all(rebinds, [&](size_t i, const etcd::txn_result& r) {
      answers[i] = judge_rebind(asks[i], r);
      if (answers[i]->value().ours)
        NWD_LOG_INFO("vip-holder", "adopted {} from a previous run",
                     asks[i].key);
    });
  }
  std::vector<result<lock_answer>> out;
  out.reserve(asks.size());
  for (auto& a : answers)
    out.push_back(std::move(*a));
  return out;
}

} // namespace networkd::vip
