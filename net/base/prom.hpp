// SPDX-License-Identifier: MIT
// Prometheus text exposition (format 0.0.4) without a client library: a
// writer for families and samples, a duration histogram whose observe()
// is two relaxed atomic adds (no lock, no allocation), and the standard
// process_* set read from /proc/self with bounded reads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace networkd::prom {

/// Label pairs of one sample, in the order written.
using labels
  = std::initializer_list<std::pair<std::string_view, std::string_view>>;

/// A label value escaped for the text format (backslash, quote, newline).
std::string escape(std::string_view value);

/// A sample value: integers without a fraction, "+Inf", "-Inf", "NaN".
std::string number(double v);

/// Builds one exposition text. Every family is written once with its HELP
/// and TYPE lines, then its samples.
class writer {
public:
  /// Starts a family: type is counter, gauge, histogram or untyped.
  writer& family(std::string_view name, std::string_view type,
                 std::string_view help);
  writer& sample(std::string_view name, labels l, double v);
  writer& sample(std::string_view name, labels l, uint64_t v);
  writer& sample(std::string_view name, double v) {
    return sample(name, {}, v);
  }
  writer& sample(std::string_view name, uint64_t v) {
    return sample(name, {}, v);
  }
  /// A one-sample gauge or counter family.
  writer& single(std::string_view name, std::string_view type,
                 std::string_view help, double v);
  /// A state set (Prometheus' enum pattern): one sample per state of
  /// `states`, 1 for `current` and 0 for the others, with `state` as the
  /// last label after `l`.
  template <class States>
  writer& state_set(std::string_view name, labels l, const States& states,
                    std::string_view current) {
    for (auto& s : states)
      sample_with(name, l, "state", s, s == current ? 1.0 : 0.0);
    return *this;
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

  /// A sample with `l` plus one more label.
  writer& sample_with(std::string_view name, labels l, std::string_view key,
                      std::string_view value, double v);

private:
  void name_and_labels(std::string_view name, labels l,
                       std::string_view extra_key = {},
                       std::string_view extra_value = {});
  std::string out_;
};

/// Upper bounds of the duration histogram, in nanoseconds: 25 µs to 5 s,
/// covering a table answer (microseconds) up to a slow upstream.
inline constexpr std::array<uint64_t, 16> duration_bounds_ns{
  25'000,      50'000,      100'000,      250'000,     500'000,    1'000'000,
  2'500'000,   5'000'000,   10'000'000,   25'000'000,  50'000'000, 100'000'000,
  250'000'000, 500'000'000, 1000'000'000, 5000'000'000};

/// What a histogram held at one moment: per-bucket (not cumulative)
/// counts, the last one past every bound (+Inf), and the sum.
struct histogram_counts {
  std::array<uint64_t, duration_bounds_ns.size() + 1> buckets{};
  uint64_t sum_ns = 0;
  uint64_t count() const;
  histogram_counts& operator+=(const histogram_counts& o);
};

/// The index of the bucket a duration falls in.
size_t bucket_of(uint64_t ns);

/// A duration histogram over duration_bounds_ns. observe() is safe from
/// any number of threads (relaxed fetch_add); observe_single_writer() is
/// for a histogram only one thread writes (a load and a store, no locked
/// instruction). Readers call counts() at any time.
class duration_histogram {
public:
  void observe(uint64_t ns) {
    buckets_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  void observe_single_writer(uint64_t ns) {
    bump(buckets_[bucket_of(ns)], 1);
    bump(sum_ns_, ns);
  }
  histogram_counts counts() const;

private:
  static void bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, duration_bounds_ns.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

/// Writes the _bucket (cumulative, with le), _sum (seconds) and _count
/// samples of one histogram series; the family line is the caller's.
void write_histogram(writer& w, std::string_view name, labels l,
                     const histogram_counts& h);

// -- process_* ----------------------------------------------------------------

/// The fields of /proc/self/stat the process_* set needs.
struct proc_stat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0; ///< since boot
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;
};

/// Parses /proc/<pid>/stat (the command may hold spaces and parentheses:
/// fields are counted after the last ')'). Empty on a malformed text.
std::optional<proc_stat> parse_proc_stat(std::string_view text);
/// The boot time (btime, seconds since the epoch) from /proc/stat.
std::optional<uint64_t> parse_boot_time(std::string_view text);
/// The soft "Max open files" limit from /proc/<pid>/limits ("unlimited":
/// empty).
std::optional<uint64_t> parse_max_fds(std::string_view text);

/// The process_* families for this process, read from /proc/self.
/// Values that cannot be read are left out (never an error).
void write_process_metrics(writer& w);

/// networkd_build_info{version,compiler,build_type} 1.
void write_build_info(writer& w, std::string_view version,
                      std::string_view build_type);

} // namespace networkd::prom
