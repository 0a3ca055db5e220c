#include "progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace eplb::cli {

namespace {

std::string human_bytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.0f} kB", bytes / 1e3);
}

std::string clock_time(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

progress_bar::~progress_bar() { clear(); }

bool progress_bar::wanted(bool quiet) { return !quiet && ::isatty(STDERR_FILENO) == 1; }

std::function<void(const stats_read_progress&)> progress_bar::callback() {
  if (!enabled_) return {};
  return [this](const stats_read_progress& p) { update(p); };
}

void progress_bar::clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

void progress_bar::count(const char* what, int done, int total) {
  if (!enabled_) return;
  fmt::print(stderr, "\r{} {} of {}\033[K", what, done, total);
  std::fflush(stderr);
  drawn_ = true;
}

void progress_bar::update(const stats_read_progress& p) {
  if (!enabled_) return;
  if (p.done) {
    clear();
    return;
  }
  // Short reads finish before a bar would be worth drawing.
  if (p.seconds < 0.5) return;
  const double rate = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds : 0;
  std::string line;
  if (p.bytes_total > 0) {
    const double frac =
        std::min(1.0, static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total));
    constexpr int width = 24;
    const int filled = static_cast<int>(frac * width);
    line = fmt::format("[{}{}] {:3.0f}% {} / {}", std::string(filled, '#'),
                       std::string(width - filled, '.'), 100 * frac,
                       human_bytes(static_cast<double>(p.bytes_done)),
                       human_bytes(static_cast<double>(p.bytes_total)));
  } else {
    line = human_bytes(static_cast<double>(p.bytes_done));
  }
  line += fmt::format("  {} records  {}/s", p.records, human_bytes(rate));
  if (p.text_bytes != p.bytes_done && p.seconds > 0) {
    // Compressed input: the rate of the JSONL text too.
    line +=
        fmt::format(" ({}/s of JSONL)", human_bytes(static_cast<double>(p.text_bytes) / p.seconds));
  }
  if (p.bytes_total > p.bytes_done && rate > 0) {
    line += "  ETA " + clock_time(static_cast<double>(p.bytes_total - p.bytes_done) / rate);
  }
  fmt::print(stderr, "\r{}\033[K", line);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace eplb::cli
