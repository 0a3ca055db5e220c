#pragma once
// A one-line progress bar on stderr for long stats reads: bytes, records, rate and ETA. Drawn
// only when enabled (stderr is a terminal and --quiet is off); the library only reports numbers.

#include <functional>

#include "eplb/stats.hpp"

namespace eplb::cli {

/// Draws stats_read_progress updates on stderr, and clears its line when the read ends.
class progress_bar {
 public:
  /// A bar that draws only when `enabled`.
  explicit progress_bar(bool enabled) : enabled_(enabled) {}
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;
  /// Clears the line if something is still drawn.
  ~progress_bar();

  /// Returns the callback for stats_read_options::progress, or an empty one when disabled.
  std::function<void(const stats_read_progress&)> callback();
  /// Draws one update (or clears the line when `p.done`).
  void update(const stats_read_progress& p);
  /// Draws "<what> <done> of <total>" (work counted in items, such as plans).
  void count(const char* what, int done, int total);
  /// Clears the line if something is drawn.
  void clear();

  /// Returns true when stderr is a terminal and not `quiet`.
  static bool wanted(bool quiet);

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace eplb::cli
