#pragma once
// Fuzz harnesses (fuzz/README.md): one function per parser the outside world can feed. Each runs
// the library on arbitrary bytes and aborts when an oracle fails; the sanitizers catch the rest.
// libFuzzer drives them through libfuzzer_main.cpp; tests replay the seed corpora and every
// crashing input found so far (tests/data/fuzz-regressions/) through replay_main.cpp.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace eplb::fuzz {

using target_fn = int (*)(const std::uint8_t* data, std::size_t size);

/// One harness: the name of its corpus folder and its function.
struct target {
  const char* name;
  target_fn run;
};

int vllm_reader(const std::uint8_t* data, std::size_t size);
int sglang(const std::uint8_t* data, std::size_t size);
int matrix_json(const std::uint8_t* data, std::size_t size);
int matrix_csv(const std::uint8_t* data, std::size_t size);
int safetensors(const std::uint8_t* data, std::size_t size);
int loader(const std::uint8_t* data, std::size_t size);
int cli_args(const std::uint8_t* data, std::size_t size);

/// Every harness, in a fixed order.
inline constexpr target k_targets[] = {
    {"vllm_reader", vllm_reader}, {"sglang", sglang},           {"matrix_json", matrix_json},
    {"matrix_csv", matrix_csv},   {"safetensors", safetensors}, {"loader", loader},
    {"cli_args", cli_args},
};

/// Aborts with a message when an oracle does not hold (libFuzzer then saves the input).
[[noreturn]] inline void oracle_failed(const char* file, int line, const char* what,
                                       const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz oracle failed: %s\n%s\n", file, line, what, detail.c_str());
  std::abort();
}

#define EPLB_FUZZ_CHECK(cond, detail)                                              \
  do {                                                                             \
    if (!(cond)) ::eplb::fuzz::oracle_failed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

/// Returns true when `message` names the input: "NAME: ..." or "NAME:LINE..." (house rule).
inline bool names_input(const std::string& message, std::string_view name) {
  return message.size() > name.size() && message.compare(0, name.size(), name) == 0 &&
         message[name.size()] == ':';
}

/// Parses up to `max` space-separated decimal ints of a line; a token that is not one reads as 0.
inline std::vector<int> parse_ints(const std::string& line, std::size_t max) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos < line.size() && out.size() < max) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    if (pos == line.size()) break;
    std::size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    int v = 0;
    std::from_chars(line.data() + pos, line.data() + end, v);
    out.push_back(v);
    pos = end;
  }
  return out;
}

/// Takes values from the front of the input (for harnesses that need parameters besides text).
class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  /// Returns the next byte, 0 when the input is used up.
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  /// Returns the next 4 bytes as a little-endian int32 (missing bytes read as 0).
  std::int32_t i32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(byte()) << (8 * i);
    std::int32_t out;
    std::memcpy(&out, &v, sizeof out);
    return out;
  }
  /// Returns the rest of the input as text.
  std::string rest() {
    std::string out(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return out;
  }
  /// Returns the text up to the next '\n' (or the end), consuming the '\n'.
  std::string line() {
    std::string out;
    while (pos_ < size_ && data_[pos_] != '\n') out.push_back(static_cast<char>(data_[pos_++]));
    if (pos_ < size_) ++pos_;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace eplb::fuzz
