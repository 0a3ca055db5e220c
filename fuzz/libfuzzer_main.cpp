// libFuzzer entry point of one harness; EPLB_FUZZ_TARGET names the harness function.
#include "harness.hpp"

#ifndef EPLB_FUZZ_TARGET
#error "define EPLB_FUZZ_TARGET to a harness function of harness.hpp"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return eplb::fuzz::EPLB_FUZZ_TARGET(data, size);
}
