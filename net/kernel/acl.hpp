// SPDX-License-Identifier: MIT
// Node ACL in filter-table chains lain-INPUT/lain-ENTRY: key parsers, rules.
#pragma once

#include "net/base/result.hpp"
#include "net/cluster/config.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

/// The ACL of the old Go daemon (laincloud/networkd acl/acl.go, helper.go,
/// watcher.go), kept key for key:
///
/// - `/lain/config/whitelist_ips/{name}`: a JSON list of strings, each an
///   IPv4 address ("10.0.0.1"), a range of addresses ("10.0.0.1-10.0.0.9",
///   first <= last) or a CIDR ("10.0.0.0/8"). Every source in every list may
///   reach every port of the node. (watcher.go unmarshals `[]string` per
///   key and concatenates all lists; acl.go joined them into one `-s` rule,
///   where ranges could not work; here a range becomes `-m iprange`.)
/// - `/lain/config/whitelist_ex_ports/{proto}`, proto `tcp` or `udp`: a
///   JSON list of ports open to everyone. (watcher.go: `[]string`; acl.go:
///   `-p PROTO -m multiport --dport PORTS -j lain-ENTRY`.) A port is a
///   string ("80"), a number (80), or a string range "8000:8100" (what
///   multiport takes, and what the old daemon passed through).
/// - `/lain/config/whitelist_in_ports/{source}`, source as in whitelist_ips
///   (an IP, a range or a CIDR; a CIDR's "/" is part of the key):
///   `{"ports":{"tcp":[...],"udp":[...]}}`, ports open to that source only.
///   (acl.go `protoPorts`, `map[string][]string`; watcher.go takes the key
///   after the prefix as the source; a source with "-" is a range.)
///
/// Rules (the old daemon appended its base rules to INPUT itself and jumped
/// from INPUT to lain-ENTRY / lain-INPUT; here everything lives in our two
/// chains and INPUT holds a single hook, `-A INPUT -j lain-INPUT`, so the
/// rest of INPUT is never touched):
///
///   lain-INPUT  the base rules, in acl.go's order:
///                 -i lo -j ACCEPT
///                 -i docker0 -j ACCEPT
///                 -i cali+ -j ACCEPT
///                 -m state --state INVALID -j DROP
///                 -m state --state RELATED,ESTABLISHED -j ACCEPT
///                 -p tcp -m tcp --dport 22 -j ACCEPT
///               then every whitelisted source     -> lain-ENTRY,
///               then the ex ports (tcp, udp)      -> lain-ENTRY,
///               then each in-ports source's ports -> ACCEPT.
///   lain-ENTRY  -j ACCEPT (as acl.go's initChain)
///
/// and the INPUT policy DROP while the ACL is active. Rules are written in
/// the form iptables-save prints them, so a read-back compares equal.
namespace networkd::acl {

// -- keys ---------------------------------------------------------------------

inline constexpr std::string_view whitelist_ips_prefix
  = "/lain/config/whitelist_ips/";
inline constexpr std::string_view ex_ports_prefix
  = "/lain/config/whitelist_ex_ports/";
inline constexpr std::string_view in_ports_prefix
  = "/lain/config/whitelist_in_ports/";

/// Longer lists are rejected as "too_many" (README: limits).
constexpr size_t max_whitelist_sources = 4096; ///< sources of one whitelist
constexpr size_t max_ports_per_list = 1024;    ///< ports of one port list

enum class key_kind : uint8_t { whitelist_ips, ex_ports, in_ports, unknown };

struct classified_key {
  key_kind kind = key_kind::unknown;
  std::string suffix; ///< what follows the prefix
};

/// Which ACL key family a full etcd key belongs to.
classified_key classify(std::string_view full_key);

/// A source address set: a CIDR (a single IP is a /32) or a range.
struct source {
  enum class kind : uint8_t { cidr, range };
  kind type = kind::cidr;
  /// Canonical text as iptables-save prints it: "10.0.0.1/32",
  /// "10.0.0.0/8" (host bits cleared), "10.0.0.1-10.0.0.9".
  std::string text;

  friend bool operator==(const source& a, const source& b) {
    return a.type == b.type && a.text == b.text;
  }
  friend bool operator!=(const source& a, const source& b) { return !(a == b); }
};

/// "10.0.0.1", "10.0.0.0/8" (prefix 0..32) or "10.0.0.1-10.0.0.9".
result<source> parse_source(std::string_view text);

/// One port (first == last) or an inclusive range, for multiport.
struct port_range {
  uint16_t first = 0;
  uint16_t last = 0;
  friend bool operator==(const port_range& a, const port_range& b) {
    return a.first == b.first && a.last == b.last;
  }
  friend bool operator<(const port_range& a, const port_range& b) {
    return a.first != b.first ? a.first < b.first : a.last < b.last;
  }
};

/// "80", or "8000:8100" (first < last; "80:80" is taken as 80).
result<port_range> parse_port_range(std::string_view text);

/// /lain/config/whitelist_ips/{name}.
struct whitelist {
  std::string name;
  std::vector<source> sources; ///< in the list's order, duplicates dropped
};

/// Failure codes as config: "bad_key", "bad_json", "bad_field", "too_large";
/// the message starts with the full key.
result<whitelist> parse_whitelist_ips(std::string_view name,
                                      std::string_view value);

/// /lain/config/whitelist_ex_ports/{proto}.
struct ex_ports {
  config::proto protocol = config::proto::tcp;
  std::vector<port_range> ports; ///< sorted, duplicates dropped
};

result<ex_ports> parse_ex_ports(std::string_view proto, std::string_view value);

/// /lain/config/whitelist_in_ports/{source}.
struct in_ports {
  std::string key; ///< the key suffix as written
  source from;
  std::vector<port_range> tcp; ///< sorted, duplicates dropped
  std::vector<port_range> udp;
};

result<in_ports> parse_in_ports(std::string_view source_key,
                                std::string_view value);

/// Everything the ACL keys say, by key; what the rules are built from.
struct inputs {
  std::map<std::string, whitelist> whitelists;  ///< by {name}
  std::map<config::proto, ex_ports> open_ports; ///< by {proto}
  std::map<std::string, in_ports> source_ports; ///< by {source} key
};

/// Parses one ACL key and stores it in `in`. On failure `in` is unchanged
/// (the last good value of that key stays).
result<unit> put(inputs& in, std::string_view full_key, std::string_view value);

/// Forgets one ACL key; false when `in` did not have it.
bool erase(inputs& in, std::string_view full_key);

/// Adds what `from` holds (one key's entry, as put() into an empty inputs
/// leaves it) to `into`, replacing entries of the same keys.
void merge(inputs& into, inputs from);

// -- rules --------------------------------------------------------------------

inline constexpr const char* input_chain = "lain-INPUT";
inline constexpr const char* entry_chain = "lain-ENTRY";

/// Rule specs (what follows `-A CHAIN `) of our two chains, in order.
struct ruleset {
  std::vector<std::string> input; ///< lain-INPUT
  std::vector<std::string> entry; ///< lain-ENTRY
  friend bool operator==(const ruleset& a, const ruleset& b) {
    return a.input == b.input && a.entry == b.entry;
  }
};

/// The base rules that head lain-INPUT, in order.
const std::vector<std::string>& base_rules();

/// Rules for `in`: base rules, whitelisted sources (by name, then list
/// order), ex ports (tcp, udp), in ports (by key; tcp, udp). Multiport takes
/// 15 ports per rule (a range counts 2), so long lists span several rules.
/// A rule that equals an earlier one is dropped.
ruleset build(const inputs& in);

/// Refuses a rule set that could lock the node out or break a batch:
/// lain-INPUT must start with base_rules() (loopback, established/related
/// and ssh accepted before anything else); specs must be printable ASCII,
/// non-empty and at most 4096 bytes. Code "unsafe" or "invalid".
result<unit> validate(const ruleset& r);

/// A spec in a comparable form: tokens re-joined by single blanks, the
/// implicit `-m tcp`/`-m udp` after `-p tcp`/`-p udp` dropped.
std::string normalize(std::string_view spec);

/// A rule elsewhere in the filter table that jumps into one of our chains.
struct foreign_jump {
  std::string chain; ///< e.g. "INPUT"
  std::string spec;  ///< verbatim, after `-A CHAIN `
};

/// Our part of the filter table as iptables-save printed it.
struct state {
  std::string input_policy; ///< "ACCEPT", "DROP", or "" when not printed
  bool has_input_chain = false;
  bool has_entry_chain = false;
  std::vector<std::string> input; ///< lain-INPUT specs, verbatim
  std::vector<std::string> entry; ///< lain-ENTRY specs, verbatim
  int hooks = 0;                  ///< `-A INPUT -j lain-INPUT` lines
  /// Other jumps into our chains, e.g. the old daemon's `-A INPUT -s ...
  /// -j lain-ENTRY`; apply() and remove_all() delete them.
  std::vector<foreign_jump> foreign;
};

/// Reads `iptables-save -t filter` output (other tables are skipped).
state parse_save(std::string_view text);

/// True when the chains of `s` hold exactly `r` (compared normalized).
bool same_rules(const state& s, const ruleset& r);

/// Batch lines (without `*filter` / `COMMIT`).
struct plan {
  std::vector<std::string> lines;
  bool rewrites_chains = false; ///< flush and refill of both chains
  bool hooks = false;           ///< hook added or duplicates removed
  size_t foreign_removed = 0;
  bool sets_policy = false;
  bool empty() const { return lines.empty(); }
};

/// What turns `actual` into `desired`, active. Order rules matter in a
/// filter chain, so there is no rule-by-rule diff: when our chains differ
/// at all, both are flushed (created when missing) and refilled in full;
/// then the hook is made single, foreign jumps are deleted, and last the
/// INPUT policy is set to DROP. Empty when all is as desired. Applied as
/// one iptables-restore batch, all of it is atomic.
plan diff(const state& actual, const ruleset& desired);

/// `:INPUT ACCEPT` when the policy is not ACCEPT (else empty).
plan open_policy(const state& actual);

/// Unhooks, deletes foreign jumps, flushes and deletes our chains (empty
/// when none of it is there). Leaves the policy alone.
plan teardown(const state& actual);

/// `*filter`, the plan's lines, `COMMIT`: for iptables-restore --noflush.
std::string batch(const plan& p);

// -- effect -------------------------------------------------------------------

/// What an apply() did.
struct report {
  bool changed = false;        ///< a batch ran
  bool rewrote_chains = false; ///< chains (and with nft, sets) made anew
  bool hooked = false;
  size_t foreign_removed = 0;
  bool set_policy = false;
  size_t elements_added = 0;   ///< nft: set elements added
  size_t elements_removed = 0; ///< nft: set elements deleted
  std::chrono::microseconds read_time{0};
  std::chrono::microseconds apply_time{0};
};

/// Our ACL as a read of the kernel found it, for GET /v1/acl: never our
/// desired state.
struct applied {
  std::string backend;  ///< "nft" or "iptables"
  bool present = false; ///< our chain is there
  /// nft: our chain's policy ("drop"/"accept"); iptables: INPUT's.
  std::string policy;
  /// In chain order: the base rules, then the others. nft: each rule's
  /// comment (what it does, in nft syntax); iptables: the rule spec.
  std::vector<std::string> base;
  std::vector<std::string> rules;
  struct set {
    std::string name;
    std::string type;                  ///< in nft's words
    std::vector<std::string> elements; ///< as ranges/CIDRs, sorted
  };
  std::vector<set> sets; ///< nft only
};

/// The node ACL in the kernel: iptables_filter_table or
/// nft::nft_filter_table (net/kernel/nft_acl.hpp).
class filter_table {
public:
  virtual ~filter_table() = default;

  /// "nft" or "iptables".
  virtual const char* backend() const = 0;

  /// Reads our rules, and when they differ from what `in` asks for makes
  /// them so, active (dropping what no rule accepts), in one transaction.
  /// On a failure the rules in the kernel stay as they were.
  virtual result<report> apply(const inputs& in) = 0;

  /// apply() after reading what is in the kernel now (apply() may trust
  /// what it knows from its last read or transaction): what the periodic
  /// audit calls, to put back what someone else changed.
  virtual result<report> audit(const inputs& in) { return apply(in); }

  /// Reads our rules now.
  virtual result<applied> show() = 0;

  /// Removes everything of ours; the node accepts again. No error when
  /// nothing is there.
  virtual result<unit> remove_all() = 0;
};

/// filter_table over iptables-save / iptables-restore --noflush.
class iptables_filter_table final : public filter_table {
public:
  struct options {
    /// Run the tools in this named network namespace (`ip netns exec`).
    std::string netns;
    std::chrono::milliseconds timeout{10000};
    std::string save_command = "iptables-save";
    std::string restore_command = "iptables-restore";
  };

  iptables_filter_table();
  explicit iptables_filter_table(options opts);

  const char* backend() const override { return "iptables"; }
  /// build(in), then apply() of that rule set.
  result<report> apply(const inputs& in) override;
  result<applied> show() override;
  /// Sets the INPUT policy to ACCEPT (one batch), then unhooks, flushes and
  /// deletes our chains (a second batch).
  result<unit> remove_all() override;

  /// Validates `desired`, reads the chains, and when they differ installs
  /// `desired` with the hook and INPUT policy DROP in one batch.
  result<report> apply(const ruleset& desired);
  /// Reads our part of the filter table now.
  result<state> read();

private:
  result<state> read_locked();
  result<unit> restore(const plan& p);

  options opts_;
  std::mutex mtx_;
};

} // namespace networkd::acl
