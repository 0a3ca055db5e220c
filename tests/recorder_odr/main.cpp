// Links two translation units that both include recorder.hpp (C++17) and checks what each did:
// the recorded file must equal the spec's vLLM example byte for byte.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

std::uint64_t odr_record(const std::string& path);
std::string odr_bad_options(const std::string& path);

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: recorder_odr_test OUT.jsonl EXPECTED.jsonl\n");
    return 2;
  }
  const std::string out = argv[1];
  std::remove(out.c_str());  // the recorder appends
  int failures = 0;
  if (odr_record(out) != 2) {
    std::fprintf(stderr, "odr_record: expected 2 records written\n");
    ++failures;
  }
  if (slurp(out) != slurp(argv[2])) {
    std::fprintf(stderr, "odr_record: %s differs from %s\n", out.c_str(), argv[2]);
    ++failures;
  }
  const std::string message = odr_bad_options(out + ".unused");
  if (message != "recorder: num_slots=5 must be divisible by num_ranks=2") {
    std::fprintf(stderr, "odr_bad_options: got \"%s\"\n", message.c_str());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
