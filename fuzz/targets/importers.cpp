// The whole-file stats importers: SGLang logical_count JSON, matrix JSON and matrix CSV.
// Oracles: errors name the file and are not internal; a result is a non-empty, non-negative
// matrix within the limits whose info agrees with it.
#include <string>

#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

namespace {

using importer = result<imported_stats> (*)(const std::string&, const std::string&,
                                            const import_options&);

void check(const result<imported_stats>& r, const char* name, const import_options& options) {
  if (!r.ok()) {
    EPLB_FUZZ_CHECK(r.code() != errc::internal, r.message());
    EPLB_FUZZ_CHECK(names_input(r.message(), name), r.message());
    return;
  }
  const imported_stats& s = *r;
  EPLB_FUZZ_CHECK(s.load.rows() >= 1 && s.load.rows() <= limits::max_layers,
                  std::to_string(s.load.rows()));
  EPLB_FUZZ_CHECK(s.load.cols() >= 1 && s.load.cols() <= limits::max_experts,
                  std::to_string(s.load.cols()));
  EPLB_FUZZ_CHECK((s.load.array() >= 0).all(), "negative count");
  EPLB_FUZZ_CHECK(s.info.num_layers == s.load.rows() && s.info.num_experts == s.load.cols(),
                  "info shape");
  EPLB_FUZZ_CHECK(s.info.layer_ids.size() == static_cast<std::size_t>(s.load.rows()), "layer ids");
  EPLB_FUZZ_CHECK(s.info.layer_ids.front() == options.skip_layers, "first layer id");
  EPLB_FUZZ_CHECK(s.info.leading_zero_rows >= 0 && s.info.leading_zero_rows <= s.load.rows(),
                  "leading zero rows");
  EPLB_FUZZ_CHECK(s.info.steps_used >= 1 && s.info.steps_used <= s.info.steps_total, "steps");
}

int run_importer(importer fn, const char* name, const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  import_options plain;
  check(fn(text, name, plain), name, plain);
  import_options some;  // steps 1..2 of a 3-D SGLang array; one dense row dropped
  some.steps.first = 1;
  some.steps.last = 2;
  some.skip_layers = 1;
  check(fn(text, name, some), name, some);
  return 0;
}

}  // namespace

int sglang(const std::uint8_t* data, std::size_t size) {
  return run_importer(import_sglang_text, "fuzz.json", data, size);
}

int matrix_json(const std::uint8_t* data, std::size_t size) {
  return run_importer(import_matrix_json_text, "fuzz.json", data, size);
}

int matrix_csv(const std::uint8_t* data, std::size_t size) {
  return run_importer(import_matrix_csv_text, "fuzz.csv", data, size);
}

}  // namespace eplb::fuzz
