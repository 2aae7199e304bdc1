// SPDX-License-Identifier: MIT
// Leader election the etcd v3 way, as pure bookkeeping: every candidate
// has a key on its own lease under one prefix; the lowest create revision
// leads. The caller feeds key events and asks who leads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace networkd {

class election {
public:
  struct candidate {
    std::string key;
    std::string name; ///< the hostname stored in the key
    int64_t create_revision = 0;
  };

  /// A candidate key appeared or changed.
  void put(const std::string& key, const std::string& name,
           int64_t create_revision) {
    candidates_[key] = {key, name, create_revision};
  }
  /// A candidate key vanished (its lease ended or it resigned).
  void erase(const std::string& key) { candidates_.erase(key); }

  /// The leader: the candidate with the lowest create revision.
  std::optional<candidate> leader() const {
    std::optional<candidate> best;
    for (auto& [k, c] : candidates_)
      if (!best || c.create_revision < best->create_revision)
        best = c;
    return best;
  }

  /// True when `key` is a known candidate and it leads.
  bool leads(const std::string& key) const {
    auto l = leader();
    return l && l->key == key;
  }

  bool has(const std::string& key) const { return candidates_.count(key) > 0; }
  std::optional<candidate> find(const std::string& key) const {
    auto i = candidates_.find(key);
    if (i == candidates_.end())
      return std::nullopt;
    return i->second;
  }
  size_t size() const { return candidates_.size(); }

private:
  std::map<std::string, candidate> candidates_;
};

} // namespace networkd
