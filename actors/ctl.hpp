// SPDX-License-Identifier: MIT
// `networkd ctl`: a command line client of the admin HTTP API. Parsing the
// command line, choosing the endpoint and turning its answer into text and
// an exit code are pure functions; only http_get and run() touch a socket.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "net/base/result.hpp"

namespace networkd::ctl {

/// Exit codes (README: networkd ctl).
enum exit_code : int {
  exit_ok = 0,          ///< done; for `vip IP`: this node serves the VIP
  exit_no = 1,          ///< `vip IP` not served here, or the API said no
  exit_usage = 2,       ///< bad command line
  exit_unreachable = 3, ///< no usable answer from the API
};

/// A parsed `networkd ctl ...` command line.
struct command {
  std::string api;               ///< HOST:PORT of the admin API
  bool json = false;             ///< print the endpoint's JSON as is
  bool help = false;             ///< --help: print usage, exit 0
  std::string verb;              ///< status, vips, vip, procs, dns, ...
  std::vector<std::string> args; ///< the operands after the verb
};

/// Parses the arguments after "ctl". --json, --api HOST:PORT (or
/// --api=HOST:PORT, one dash works too) may come anywhere. Fails with code
/// "usage" and a one-line message.
result<command> parse_args(const std::vector<std::string>& args,
                           const std::string& default_api);

/// The help text.
std::string usage();

/// `text` with every byte but unreserved ones as %XX.
std::string percent_encode(std::string_view text);

/// The request target the command asks for ("/v1/vips/10.0.0.5").
std::string target_of(const command& c);

/// An HTTP answer: its status and body.
struct answer {
  int status = 0;
  std::string body;
};

/// What to print and the exit code.
struct outcome {
  int code = exit_ok;
  std::string out; ///< for stdout
  std::string err; ///< for stderr
};

/// The answer of the command's endpoint turned into text and an exit code.
outcome judge(const command& c, const answer& a);

/// Aligned columns, two blanks apart, no trailing blanks; the first row is
/// the header. Cells are made printable (control characters as \xNN).
std::string table(const std::vector<std::vector<std::string>>& rows);

/// "key   value" lines, keys padded to the longest.
std::string pairs(const std::vector<std::pair<std::string, std::string>>& rows);

/// `text` safe for a terminal: control characters (C0, DEL, C1) as \xNN.
std::string printable_cell(std::string_view text);

// The formatters of the endpoints' JSON; a failure when it is not the JSON
// they expect ("bad_json").
result<std::string> format_status(const std::string& state_json);
result<std::string> format_vips(const std::string& vips_json);
result<std::string> format_vip(const std::string& vip_json);
result<std::string> format_procs(const std::string& procs_json);
result<std::string> format_leader(const std::string& state_json);
result<std::string> format_rejected(const std::string& state_json);
/// Any JSON as "a.b[0].c  value" lines (dns lookup, acl).
result<std::string> format_flat(const std::string& json);

/// The VIP state that counts as "this node serves it" for `vip IP`.
inline constexpr std::string_view serving_state = "serving";

/// Limits of the client.
struct http_limits {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{10000};
  /// Bytes of an answer (a /v1/state of 50000 VIP keys fits).
  size_t max_body = 64 * 1024 * 1024;
};

/// GET http://HOST:PORT{target}, blocking, within the limits. Failure codes:
/// "bad_api" (not HOST:PORT), "unreachable", "timeout", "too_large".
result<answer> http_get(const std::string& api, const std::string& target,
                        const http_limits& lim = {});

/// networkd ctl: parses, asks, prints; returns the exit code.
int run(const std::vector<std::string>& args, const std::string& default_api,
        std::ostream& out, std::ostream& err);

} // namespace networkd::ctl
