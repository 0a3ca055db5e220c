// Second translation unit: the same inline code, used again, must link without clashes.
#include <string>

#include "eplb/recorder.hpp"

/// Returns the recorder's message for slots that do not divide among the ranks.
std::string odr_bad_options(const std::string& path) {
  eplb::recorder_options o;
  o.path = path;
  o.num_layers = 1;
  o.num_slots = 5;
  o.num_ranks = 2;
  eplb::recorder rec(o);
  return rec.ok() ? std::string() : rec.last_error();
}
