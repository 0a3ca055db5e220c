// Links two translation units that both include loader.hpp (C++17) and checks what each returns.
#include <cstdio>
#include <string>
#include <vector>

std::vector<int> odr_a();
std::string odr_b();

int main() {
  int failures = 0;
  // Layer 0 is [0, 2, 0, 1]; rank 1 of 2 owns slots 2 and 3.
  if (odr_a() != std::vector<int>{0, 1}) {
    std::fprintf(stderr, "odr_a: wrong experts for rank 1\n");
    ++failures;
  }
  const std::string expected =
      "b.jsonl: mapping does not fit EP size 3: num_slots=4 is not divisible by num_ranks=3";
  if (odr_b() != expected) {
    std::fprintf(stderr, "odr_b: got \"%s\"\n", odr_b().c_str());
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
