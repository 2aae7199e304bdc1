// SPDX-License-Identifier: MIT
// DNAT rules for VIPs in chains lain-PREROUTING and lain-OUTPUT of the nat
// table: pure render/parse/diff, and one executor (iptables-restore batches).
#pragma once

#include "net/base/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace networkd::nat {

enum class protocol { tcp, udp };

/// "tcp" / "udp".
const char* to_string(protocol p);

/// Our two chains. PREROUTING catches traffic from the network and from
/// local containers; OUTPUT catches the node's own processes.
enum class chain { prerouting, output };

inline constexpr const char* prerouting_chain = "lain-PREROUTING";
inline constexpr const char* output_chain = "lain-OUTPUT";
/// How PREROUTING jumps to our chain: only for packets to a local address.
inline constexpr const char* prerouting_hook
  = "-m addrtype --dst-type LOCAL -j lain-PREROUTING";

/// "lain-PREROUTING" / "lain-OUTPUT".
const char* chain_name(chain c);

/// VIP:src_port → container_ip:dest_port for one protocol, installed once
/// in each chain. In lain-OUTPUT the rule also matches `-o lo`: it applies
/// only while the VIP is a local address (a locally owned VIP is routed via
/// lo), so a stale rule for a VIP the kernel already dropped (valid
/// lifetime ran out) does not capture the node's own traffic.
struct dnat_rule {
  std::string vip; ///< dotted quad; matched as VIP/32
  protocol proto = protocol::tcp;
  uint16_t src_port = 0;
  std::string container_ip;
  uint16_t dest_port = 0;
  std::string comment; ///< "app.proc"; may be empty (no comment match)

  bool operator==(const dnat_rule& o) const {
    return vip == o.vip && proto == o.proto && src_port == o.src_port
           && container_ip == o.container_ip && dest_port == o.dest_port
           && comment == o.comment;
  }
  bool operator!=(const dnat_rule& o) const { return !(*this == o); }
};

/// Rejects what iptables would refuse or what would break a batch: bad
/// IPv4 addresses, port 0, comments over 255 bytes or with control
/// characters.
result<unit> validate(const dnat_rule& r);

/// The rule's match and target as written after `-A CHAIN`, e.g.
/// `-p tcp -d 10.0.0.1/32 --dport 80 -m comment --comment "a.web" -j DNAT
/// --to-destination 172.20.0.2:8080` (lain-OUTPUT adds `-o lo`).
std::string render(const dnat_rule& r, chain c);

/// One rule line of our chains as iptables-save printed it.
struct entry {
  chain where = chain::prerouting;
  std::string spec;              ///< everything after `-A CHAIN `, verbatim
  std::string vip;               ///< from `-d X/32`, empty when there is none
  std::optional<dnat_rule> rule; ///< set when the line has our shape
};

/// Our part of the nat table.
struct state {
  bool has_prerouting_chain = false;
  bool has_output_chain = false;
  /// `-A PREROUTING -m addrtype --dst-type LOCAL -j lain-PREROUTING`
  /// lines: DNAT applies only while the VIP is a local address, so a node
  /// whose address expired (networkd frozen, lease gone) no longer serves
  /// clients that still have its MAC cached: they are routed on.
  int prerouting_hooks = 0;
  /// `-A PREROUTING -j lain-PREROUTING` lines (the original daemon's hook,
  /// without the local-address match): replaced by ours.
  int legacy_prerouting_hooks = 0;
  int output_hooks = 0; ///< `-A OUTPUT -j lain-OUTPUT` lines
  std::vector<entry> entries;
};

/// Reads `iptables-save -t nat` output; lines of other chains are ignored.
state parse_save(std::string_view text);

/// The rules of our shape found in chain `c`, in chain order.
std::vector<dnat_rule> rules_in(const state& s, chain c);

/// The changes that turn one state into the desired one. Lines come in
/// this order: chain creation and hooks, inserts (`-I`, at the head of the
/// chain), then deletes (`-D` with the saved spec) from `split` on.
struct plan {
  std::vector<std::string> lines;     ///< batch lines, without *nat / COMMIT
  size_t split = 0;                   ///< lines[split..] are the deletes
  std::vector<entry> removed;         ///< entries deleted
  std::vector<entry> added;           ///< entries inserted
  std::vector<std::string> conflicts; ///< desired rules dropped, and why
  bool empty() const { return lines.empty(); }
  /// The part up to `split` (setup and inserts) / the deletes.
  plan head() const;
  plan tail() const;
};

/// What to compare: the whole chains (every VIP), or only the rules of
/// some VIPs (everything else in the chains is left alone).
struct scope {
  std::optional<std::unordered_set<std::string>> vips; ///< nullopt: all
  static scope all() { return {}; }
  static scope only(const std::vector<std::string>& v) {
    return {std::unordered_set<std::string>(v.begin(), v.end())};
  }
  bool covers(const std::string& vip) const {
    return !vips || vips->count(vip) != 0;
  }
};

/// Diffs `actual` against `desired` within `where` in O(n) (hashing):
/// creates and hooks the chains when needed (exactly one hook each),
/// inserts every desired rule that is missing, deletes (by the saved spec)
/// every in-scope line that is not desired or is a duplicate. Two desired
/// rules with the same VIP, protocol and port but different targets
/// conflict: the first wins, the others are listed in plan::conflicts.
/// Fails when a desired rule is invalid or outside `where`.
result<plan> diff(const state& actual, const std::vector<dnat_rule>& desired,
                  const scope& where = scope::all());

/// Like diff(), but flushes both chains and inserts everything again: the
/// desired rules plus the out-of-scope rules of our shape. The fallback
/// when a diff batch keeps failing.
result<plan> rebuild(const state& actual, const std::vector<dnat_rule>& desired,
                     const scope& where = scope::all());

/// True when running `p` (a diff of `actual`) costs more than a rebuild.
/// The model, in units of one inserted line (~17 µs with iptables-nft;
/// measured with 200 and 2000 VIPs × 4 ports): a batch with deletes fetches
/// our chains first (~0.55 a line) and compares each -D with the rules of
/// its chain (~1/34 a rule: ~4 ms a delete at 8000 rules a chain); a
/// rebuild flushes both chains and inserts what stays. With 16000 rules, 8
/// deletes (one VIP) stay a diff (~200 ms against ~275 ms); 40 deletes
/// (~450 ms) are a rebuild. Fewer than 4 deletes are always a diff.
bool prefer_rebuild(const state& actual, const plan& p);

/// The lines that unhook and delete both chains (empty when nothing is
/// there).
plan teardown(const state& actual);

/// `*nat`, the plan's lines, `COMMIT`: input for iptables-restore --noflush.
std::string batch(const plan& p);

/// `s` after `p` was applied.
void apply(state& s, const plan& p);

/// What a reconcile did.
struct report {
  size_t added = 0;       ///< rule lines inserted (two per dnat_rule)
  size_t deleted = 0;     ///< rule lines deleted
  size_t batches = 0;     ///< iptables-restore runs
  bool read_back = false; ///< the chains were read with iptables-save
  bool retried = false;   ///< the first batch failed; re-read and retried
  bool rebuilt = false;   ///< fell back to flush-and-refill
  std::vector<std::string> conflicts;
  std::chrono::microseconds read_time{0};
  std::chrono::microseconds apply_time{0}; ///< all batches
  /// From the start of the first batch until every insert was in the
  /// kernel: when traffic moved to the new targets.
  std::chrono::microseconds live_time{0};
};

/// Our DNAT rules in the kernel. The effect behind a VIP's rules; one real
/// implementation (iptables_dnat_table).
class dnat_table {
public:
  virtual ~dnat_table() = default;

  /// Makes our chains hold exactly `desired`, in one batch.
  virtual result<report> reconcile(const std::vector<dnat_rule>& desired) = 0;

  /// Makes the rules of the VIPs in `vips` exactly `desired` (each of which
  /// must be for one of `vips`), leaving the rules of other VIPs alone.
  virtual result<report> reconcile_vips(const std::vector<std::string>& vips,
                                        const std::vector<dnat_rule>& desired)
    = 0;

  /// Reads our chains from the kernel now.
  virtual result<state> read() = 0;

  /// Reads our chains again without holding up reconciles while the tool
  /// runs (an audit: what was changed behind our back shows in the next
  /// reconcile's diff). What it read is trusted from then on, unless a
  /// batch ran meanwhile: then it is dropped (false) and the state known
  /// from that batch stays.
  virtual result<bool> refresh() = 0;

  /// Unhooks and deletes both chains.
  virtual result<unit> remove_all() = 0;
};

/// What running a command gave.
struct command_output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs argv (no shell; PATH lookup) with `input` on stdin and collects
/// stdout and stderr; kills it when `timeout` passes (failure "timeout").
result<command_output> run_command(const std::vector<std::string>& argv,
                                   const std::string& input,
                                   std::chrono::milliseconds timeout);

/// An iptables tool's argv, run in the named network namespace when
/// `netns` is not empty.
std::vector<std::string> tool_argv(const std::string& netns,
                                   const std::string& tool);

/// `save_command -t table`: the table's text, or why it could not be read.
result<std::string> save_table(const std::string& netns,
                               const std::string& save_command,
                               const std::string& table,
                               std::chrono::milliseconds timeout);

/// `restore_command --noflush` fed `text`: our chains change, nothing else.
result<unit> restore_noflush(const std::string& netns,
                             const std::string& restore_command,
                             const std::string& text,
                             std::chrono::milliseconds timeout);

/// dnat_table over iptables-save / iptables-restore --noflush.
class iptables_dnat_table final : public dnat_table {
public:
  struct options {
    /// Run the tools in this named network namespace (`ip netns exec`).
    std::string netns;
    std::chrono::milliseconds timeout{10000};
    /// How long the state known after our last read is trusted instead
    /// of reading the chains again before a reconcile (0: read before
    /// every reconcile). Reading 16000 rules back costs ~120–400 ms, so by
    /// default a change never waits for a read: the state is trusted until
    /// a batch fails (then it is read again and the batch retried), and
    /// refresh() re-reads it off the change path.
    std::chrono::milliseconds trust_for = std::chrono::milliseconds::max();
    /// When a plan both inserts and deletes, run the inserts (with chain
    /// setup) as one batch and the deletes as a second one. With
    /// iptables-nft an insert costs ~10 ms but a delete makes
    /// iptables-restore fetch and compare the whole table (~80 ms plus
    /// ~30 ms per deleted line at 16000 rules); the inserts land ahead of
    /// the stale lines and win at once, so traffic moves after the first
    /// batch. false: one atomic batch for everything.
    bool inserts_first = true;
    std::string save_command = "iptables-save";
    std::string restore_command = "iptables-restore";
  };

  iptables_dnat_table();
  explicit iptables_dnat_table(options opts);

  result<report> reconcile(const std::vector<dnat_rule>& desired) override;
  result<report> reconcile_vips(const std::vector<std::string>& vips,
                                const std::vector<dnat_rule>& desired) override;
  result<state> read() override;
  result<bool> refresh() override;
  result<unit> remove_all() override;

  /// Forget the trusted state: the next reconcile reads the chains.
  void invalidate();

private:
  using clock = std::chrono::steady_clock;
  result<report> run(const std::vector<dnat_rule>& desired, const scope& where);
  result<state> read_locked();
  result<unit> restore(const std::string& text);

  options opts_;
  std::mutex mtx_;
  std::optional<state> known_;
  clock::time_point known_at_{};
  /// Counts batches and reads: a refresh() whose read overlapped one of
  /// them is dropped.
  uint64_t generation_ = 0;
};

} // namespace networkd::nat
