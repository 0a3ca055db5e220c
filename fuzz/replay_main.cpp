// Replays files through the fuzz harnesses without libFuzzer (any compiler): the regression inputs
// in tests/data/fuzz-regressions/<target>/ and the seed corpora in fuzz/corpus/<target>/. A
// harness aborts on a failed oracle, so a regression shows as a crash of this program.
//
//   eplb_fuzz_replay DIR...        every DIR/<target>/* through <target>
//   eplb_fuzz_replay TARGET FILE   one file through one harness

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "harness.hpp"

namespace fs = std::filesystem;

namespace {

bool replay(eplb::fuzz::target_fn run, const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return true;
}

const eplb::fuzz::target* find_target(const std::string& name) {
  for (const auto& t : eplb::fuzz::k_targets) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && find_target(argv[1]) != nullptr && fs::is_regular_file(argv[2])) {
    return replay(find_target(argv[1])->run, argv[2]) ? 0 : 1;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR... | %s TARGET FILE\n", argv[0], argv[0]);
    return 2;
  }
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path root(argv[i]);
    if (!fs::is_directory(root)) {
      std::fprintf(stderr, "not a directory: %s\n", argv[i]);
      return 2;
    }
    for (const auto& dir : fs::directory_iterator(root)) {
      if (!dir.is_directory()) continue;
      const auto* t = find_target(dir.path().filename().string());
      if (t == nullptr) {
        std::fprintf(stderr, "no harness named %s\n", dir.path().filename().c_str());
        return 2;
      }
      std::vector<fs::path> inputs;
      for (const auto& f : fs::directory_iterator(dir.path())) {
        if (f.is_regular_file() && f.path().filename().string()[0] != '.') {
          inputs.push_back(f.path());
        }
      }
      std::sort(inputs.begin(), inputs.end());  // a stable order for reproducible logs
      for (const auto& f : inputs) {
        if (!replay(t->run, f)) return 1;
        ++files;
      }
    }
  }
  std::printf("replayed %d inputs\n", files);
  return files > 0 ? 0 : 1;
}
