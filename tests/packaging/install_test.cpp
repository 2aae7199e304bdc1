// SPDX-License-Identifier: MIT
// Packaging: the man page (docs/networkd.8) documents exactly the flags of
// `networkd --help`, with the same defaults, and renders without groff
// warnings; `cmake --install` of this build (into a DESTDIR) puts the
// binary, the unit, the environment file, the man page and the docs where
// the installed unit says they are.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/util.hpp"

using namespace networkd::test;
namespace fs = std::filesystem;

namespace {

const std::string man_file
  = std::string{NETWORKD_SOURCE_DIR} + "/docs/networkd.8";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

/// Flag name -> default ("" when none) from `networkd --help`.
std::map<std::string, std::string> help_flags() {
  std::string out;
  REQUIRE(sh(std::string{"'"} + NETWORKD_BINARY + "' --help 2>&1", &out) == 0);
  INFO(out);
  std::map<std::string, std::string> flags;
  auto lines = lines_of(out);
  const std::regex flag_line{"^  -([^ ]+)( string)?$"};
  const std::regex default_re{"\\(default \"([^\"]*)\"\\)"};
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i], m, flag_line))
      continue;
    std::string def;
    std::smatch d;
    if (i + 1 < lines.size() && std::regex_search(lines[i + 1], d, default_re))
      def = d[1].str();
    flags[m[1].str()] = def;
  }
  REQUIRE(flags.size() >= 20);
  return flags;
}

/// roff text with `\-` as `-` and `\&` dropped.
std::string unescape(std::string s) {
  s = std::regex_replace(s, std::regex{"\\\\-"}, "-");
  return std::regex_replace(s, std::regex{"\\\\&"}, "");
}

/// One entry of the OPTIONS section: the flags of its tag lines (.TP and
/// the .TQ lines after it) and its body, macro names, quotes and spaces
/// removed (so a default reads as one word whatever the font changes).
struct man_entry {
  std::set<std::string> flags;
  std::string body;
};

std::vector<man_entry> man_options() {
  auto text = read_file(man_file);
  REQUIRE_FALSE(text.empty());
  std::vector<man_entry> entries;
  bool in_options = false;
  bool open = false;
  bool tag_next = false;
  const std::regex flag_re{"(^|[\\s\"])--?([a-z][a-z0-9.-]*)"};
  for (auto& raw : lines_of(text)) {
    auto line = unescape(raw);
    if (line.rfind(".SH", 0) == 0) {
      in_options = line == ".SH OPTIONS";
      open = false;
      continue;
    }
    if (!in_options)
      continue;
    if (tag_next) {
      tag_next = false;
      auto tag = std::regex_replace(line, std::regex{"^\\.[A-Z]+ "}, "");
      for (std::sregex_iterator it{tag.begin(), tag.end(), flag_re}, end;
           it != end; ++it)
        entries.back().flags.insert((*it)[2].str());
      continue;
    }
    if (line == ".TP") {
      entries.emplace_back();
      open = true;
      tag_next = true;
    } else if (line == ".TQ" && open) {
      tag_next = true;
    } else if (line.rfind(".PP", 0) == 0 || line.rfind(".SS", 0) == 0) {
      open = false;
    } else if (open) {
      auto body = std::regex_replace(line, std::regex{"^\\.[A-Z]+ "}, "");
      body = std::regex_replace(body, std::regex{"[\"\\s]"}, "");
      entries.back().body += body;
    }
  }
  return entries;
}

/// Every regular file under dir, relative to it.
std::set<std::string> files_under(const std::string& dir) {
  std::set<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out.insert(fs::relative(e.path(), dir).string());
  return out;
}

/// The value of the unit's `key=` line (the first), "" when absent.
std::string unit_value(const std::string& unit, const std::string& key) {
  for (auto& line : lines_of(unit))
    if (line.rfind(key + "=", 0) == 0)
      return line.substr(key.size() + 1);
  return {};
}

} // namespace

TEST_CASE("every flag of networkd --help has an entry in the man page "
          "and every entry names a flag",
          "[packaging][man]") {
  auto flags = help_flags();
  std::set<std::string> documented;
  for (auto& e : man_options())
    documented.insert(e.flags.begin(), e.flags.end());
  for (auto& [name, def] : flags) {
    INFO("flag -" << name << " of --help");
    CHECK(documented.count(name) == 1);
  }
  for (auto& name : documented) {
    INFO("man page entry -" << name);
    // -h is the short form of -help; --help lists only -help.
    CHECK((flags.count(name) == 1 || name == "h"));
  }
}

TEST_CASE("the man page gives the default of every flag as --help does",
          "[packaging][man]") {
  auto flags = help_flags();
  auto entries = man_options();
  for (auto& [name, def] : flags) {
    if (def.empty())
      continue;
    INFO("flag -" << name << " default \"" << def << "\"");
    // A flag may have more than one entry (-godns.addr also under "Old
    // forms"); one of them gives the default.
    bool found = false;
    for (auto& e : entries)
      if (e.flags.count(name) == 1)
        found = found || e.body.find(def) != std::string::npos;
    CHECK(found);
  }
}

TEST_CASE("the man page renders with groff without a warning",
          "[packaging][man]") {
  std::string out;
  int rc = sh("groff -man -ww -z '" + man_file + "' 2>&1", &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.empty());
}

TEST_CASE("cmake --install puts every file where the installed unit "
          "says it is",
          "[packaging][install]") {
  temp_dir dest{"networkd-install"};
  std::string out;
  int rc = sh("DESTDIR='" + dest.path() + "' '" + CMAKE_COMMAND
                + "' --install '" + NETWORKD_BINARY_DIR + "' 2>&1",
              &out);
  INFO(out);
  REQUIRE(rc == 0);

  // Exactly these eight files, wherever the configured prefix put them.
  auto files = files_under(dest.path());
  INFO("installed: " << [&] {
    std::string all;
    for (auto& f : files)
      all += f + " ";
    return all;
  }());
  REQUIRE(files.size() == 8);
  std::map<std::string, std::string> by_suffix;
  for (auto& f : files)
    for (auto suffix :
         {"sbin/networkd", "systemd/system/networkd.service",
          "default/networkd", "man8/networkd.8.gz", "doc/networkd/README.md",
          "doc/networkd/LICENSE", "doc/networkd/copyright",
          "doc/networkd/changelog.gz"}) {
      std::string s = suffix;
      if (f.size() >= s.size()
          && f.compare(f.size() - s.size(), s.size(), s) == 0)
        by_suffix[s] = dest.path() + "/" + f;
    }
  REQUIRE(by_suffix.size() == 8);

  // The unit names the installed binary, environment file and docs.
  auto unit = read_file(by_suffix["systemd/system/networkd.service"]);
  auto exec = unit_value(unit, "ExecStart");
  REQUIRE(exec.find(' ') != std::string::npos);
  auto binary = exec.substr(0, exec.find(' '));
  CHECK(dest.path() + binary == by_suffix["sbin/networkd"]);
  struct stat st {};
  REQUIRE(::stat((dest.path() + binary).c_str(), &st) == 0);
  CHECK((st.st_mode & 0111) == 0111);
  CHECK(sh("cmp -s '" + dest.path() + binary + "' '" + NETWORKD_BINARY + "'")
        == 0);

  auto env = unit_value(unit, "EnvironmentFile");
  REQUIRE(env.rfind("-", 0) == 0);
  CHECK(dest.path() + env.substr(1) == by_suffix["default/networkd"]);
  CHECK(
    read_file(dest.path() + env.substr(1))
    == read_file(std::string{NETWORKD_SOURCE_DIR} + "/deploy/networkd.env"));

  auto doc = unit_value(unit, "Documentation");
  CHECK(doc.find("man:networkd(8)") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(doc, m, std::regex{"file://(\\S+)"}));
  CHECK(dest.path() + m[1].str() == by_suffix["doc/networkd/README.md"]);

  // Only those three lines differ from deploy/networkd.service.
  auto src = lines_of(
    read_file(std::string{NETWORKD_SOURCE_DIR} + "/deploy/networkd.service"));
  auto inst = lines_of(unit);
  REQUIRE(src.size() == inst.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == inst[i])
      continue;
    INFO("unit line " << i + 1 << ": " << inst[i]);
    CHECK((inst[i].rfind("ExecStart=", 0) == 0
           || inst[i].rfind("EnvironmentFile=", 0) == 0
           || inst[i].rfind("Documentation=", 0) == 0));
  }

  // The man page is docs/networkd.8, compressed.
  std::string man;
  REQUIRE(sh("gzip -dc '" + by_suffix["man8/networkd.8.gz"] + "'", &man) == 0);
  CHECK(man == read_file(man_file));
  CHECK(read_file(by_suffix["doc/networkd/LICENSE"])
        == read_file(std::string{NETWORKD_SOURCE_DIR} + "/LICENSE"));
}
