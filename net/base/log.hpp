// SPDX-License-Identifier: MIT
// Project log macros: one line per event, with level and component name, to
// stderr (journald picks it up). spdlog underneath; header-only so dns/ and
// net/ use it without linking CAF.
#pragma once

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace networkd::log {

/// Sets up the global logger once: stderr, "LEVEL component: message".
inline void init(bool verbose) {
  auto logger = spdlog::stderr_logger_mt("networkd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

inline void set_level(const std::string& name) {
  spdlog::set_level(spdlog::level::from_str(name));
}

} // namespace networkd::log

#define NWD_LOG_DEBUG(component, ...)                                          \
  spdlog::debug("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_INFO(component, ...)                                           \
  spdlog::info("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_WARN(component, ...)                                           \
  spdlog::warn("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_ERROR(component, ...)                                          \
  spdlog::error("{}: {}", component, fmt::format(__VA_ARGS__))
