// SPDX-License-Identifier: MIT
#include "net/base/prom.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "net/base/file.hpp"

namespace networkd::prom {

namespace {

/// /proc/self/stat and /proc/self/limits are a few hundred bytes;
/// /proc/stat grows with the CPUs (a few KB per 64 of them).
constexpr size_t max_proc_file = 64 * 1024;
/// Open descriptors counted at most (a scrape never walks further).
constexpr uint64_t max_fds_counted = 1 << 20;

/// The unsigned decimal at the start of s; empty when there is none.
std::optional<uint64_t> leading_number(std::string_view s) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (v > (UINT64_MAX - 9) / 10)
      return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (i == 0)
    return std::nullopt;
  return v;
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  return s;
}

} // namespace

std::string escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  else if (std::snprintf(buf, sizeof(buf), "%.15g", v) > 0
           && std::strtod(buf, nullptr) != v)
    std::snprintf(buf, sizeof(buf), "%.17g", v); // the shortest exact one
  return buf;
}

writer& writer::family(std::string_view name, std::string_view type,
                       std::string_view help) {
  out_.append("# HELP ").append(name).append(" ");
  // HELP text escapes backslash and newline only.
  for (char c : help)
    out_.append(c == '\\' ? "\\\\" : c == '\n' ? "\\n" : std::string(1, c));
  out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
  return *this;
}

void writer::name_and_labels(std::string_view name, labels l,
                             std::string_view extra_key,
                             std::string_view extra_value) {
  out_.append(name);
  if (l.size() == 0 && extra_key.empty()) {
    out_ += ' ';
    return;
  }
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first)
      out_ += ',';
    first = false;
    out_.append(k).append("=\"").append(escape(v)).append("\"");
  };
  for (auto& [k, v] : l)
    one(k, v);
  if (!extra_key.empty())
    one(extra_key, extra_value);
  out_.append("} ");
}

writer& writer::sample(std::string_view name, labels l, double v) {
  name_and_labels(name, l);
  out_.append(number(v)).append("\n");
  return *this;
}

writer& writer::sample(std::string_view name, labels l, uint64_t v) {
  name_and_labels(name, l);
  out_.append(std::to_string(v)).append("\n");
  return *this;
}

writer& writer::sample_with(std::string_view name, labels l,
                            std::string_view key, std::string_view value,
                            double v) {
  name_and_labels(name, l, key, value);
  out_.append(number(v)).append("\n");
  return *this;
}

writer& writer::single(std::string_view name, std::string_view type,
                       std::string_view help, double v) {
  family(name, type, help);
  return sample(name, {}, v);
}

// -- histogram ----------------------------------------------------------------

size_t bucket_of(uint64_t ns) {
  size_t i = 0;
  while (i < duration_bounds_ns.size() && ns > duration_bounds_ns[i])
    ++i;
  return i;
}

uint64_t histogram_counts::count() const {
  uint64_t n = 0;
  for (auto b : buckets)
    n += b;
  return n;
}

histogram_counts& histogram_counts::operator+=(const histogram_counts& o) {
  for (size_t i = 0; i < buckets.size(); ++i)
    buckets[i] += o.buckets[i];
  sum_ns += o.sum_ns;
  return *this;
}

histogram_counts duration_histogram::counts() const {
  histogram_counts h;
  for (size_t i = 0; i < buckets_.size(); ++i)
    h.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  h.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  return h;
}

void write_histogram(writer& w, std::string_view name, labels l,
                     const histogram_counts& h) {
  std::string bucket{name};
  bucket += "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    auto le = i < duration_bounds_ns.size()
                ? number(static_cast<double>(duration_bounds_ns[i]) / 1e9)
                : std::string{"+Inf"};
    w.sample_with(bucket, l, "le", le, static_cast<double>(cumulative));
  }
  w.sample(std::string{name} + "_sum", l, static_cast<double>(h.sum_ns) / 1e9);
  w.sample(std::string{name} + "_count", l, cumulative);
}

// -- process_* ----------------------------------------------------------------

std::optional<proc_stat> parse_proc_stat(std::string_view text) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos)
    return std::nullopt;
  auto rest = text.substr(close + 1);
  // Fields after the command, numbered as in proc(5): state is 3.
  std::array<std::string_view, 25> f{};
  size_t n = 3;
  while (n < f.size()) {
    rest = trim_left(rest);
    if (rest.empty())
      break;
    auto end = rest.find_first_of(" \n");
    f[n++] = rest.substr(0, end);
    if (end == std::string_view::npos)
      break;
    rest.remove_prefix(end);
  }
  if (n < f.size())
    return std::nullopt;
  proc_stat s;
  auto get = [&](size_t i, uint64_t& out) {
    auto v = leading_number(f[i]);
    if (v)
      out = *v;
    return v.has_value();
  };
  if (!get(14, s.utime_ticks) || !get(15, s.stime_ticks)
      || !get(22, s.start_ticks) || !get(23, s.vsize_bytes)
      || !get(24, s.rss_pages))
    return std::nullopt;
  return s;
}

std::optional<uint64_t> parse_boot_time(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    auto line
      = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (line.substr(0, 6) == "btime ")
      return leading_number(trim_left(line.substr(6)));
    if (end == std::string_view::npos)
      break;
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_max_fds(std::string_view text) {
  constexpr std::string_view label = "Max open files";
  auto at = text.find(label);
  if (at == std::string_view::npos)
    return std::nullopt;
  return leading_number(trim_left(text.substr(at + label.size())));
}

namespace {

std::optional<uint64_t> count_open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr)
    return std::nullopt;
  uint64_t n = 0;
  while (n < max_fds_counted) {
    auto e = ::readdir(d);
    if (e == nullptr)
      break;
    if (e->d_name[0] != '.')
      ++n;
  }
  ::closedir(d);
  return n > 0 ? n - 1 : n; // the descriptor opendir holds
}

} // namespace

void write_process_metrics(writer& w) {
  std::string text;
  auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::optional<proc_stat> st;
  if (read_file_bounded("/proc/self/stat", max_proc_file, text) == 0)
    st = parse_proc_stat(text);
  if (st && ticks > 0) {
    w.single("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.",
             static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks);
    w.single("process_resident_memory_bytes", "gauge",
             "Resident memory size in bytes.",
             static_cast<double>(st->rss_pages) * page);
    w.single("process_virtual_memory_bytes", "gauge",
             "Virtual memory size in bytes.",
             static_cast<double>(st->vsize_bytes));
    if (read_file_bounded("/proc/stat", max_proc_file, text) == 0)
      if (auto boot = parse_boot_time(text))
        w.single("process_start_time_seconds", "gauge",
                 "Start time of the process since unix epoch in seconds.",
                 static_cast<double>(*boot)
                   + static_cast<double>(st->start_ticks) / ticks);
  }
  if (auto fds = count_open_fds())
    w.single("process_open_fds", "gauge", "Number of open file descriptors.",
             static_cast<double>(*fds));
  if (read_file_bounded("/proc/self/limits", max_proc_file, text) == 0)
    if (auto max = parse_max_fds(text))
      w.single("process_max_fds", "gauge",
               "Maximum number of open file descriptors.",
               static_cast<double>(*max));
}

void write_build_info(writer& w, std::string_view version,
                      std::string_view build_type) {
  w.family("networkd_build_info", "gauge",
           "Always 1; the labels say which build runs");
  std::string compiler;
#if defined(__clang__)
  compiler = "clang-" + std::to_string(__clang_major__) + "."
             + std::to_string(__clang_minor__);
#elif defined(__GNUC__)
  compiler
    = "gcc-" + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__);
#else
  compiler = "unknown";
#endif
  w.sample(
    "networkd_build_info",
    {{"version", version}, {"compiler", compiler}, {"build_type", build_type}},
    1.0);
}

} // namespace networkd::prom
