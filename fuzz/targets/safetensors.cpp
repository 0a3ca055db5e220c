// The safetensors container (TensorRT-LLM expert statistics): parse_safetensors on arbitrary
// bytes, then every tensor converted with safetensors_to_int64.
// Oracles: errors name the file; every accepted tensor's byte range lies inside the data section
// and matches its shape; a conversion yields one value per element.
#include <string>

#include "eplb/import.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

int safetensors(const std::uint8_t* data, std::size_t size) {
  constexpr const char* name = "fuzz.safetensors";
  auto file = parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), name);
  if (!file.ok()) {
    EPLB_FUZZ_CHECK(file.code() != errc::internal, file.message());
    EPLB_FUZZ_CHECK(names_input(file.message(), name), file.message());
    return 0;
  }
  EPLB_FUZZ_CHECK(file->data_start >= 8 && file->data_start <= size, "data_start");
  for (const auto& entry : file->entries) {
    EPLB_FUZZ_CHECK(entry.begin <= entry.end && entry.end <= size - file->data_start, entry.name);
    auto values = safetensors_to_int64(*file, entry);
    if (!values.ok()) {
      EPLB_FUZZ_CHECK(names_input(values.message(), name), values.message());
      continue;
    }
    std::uint64_t numel = 1;
    for (auto d : entry.shape) numel *= d;
    EPLB_FUZZ_CHECK(values->size() == numel, entry.name);
  }
  return 0;
}

}  // namespace eplb::fuzz
