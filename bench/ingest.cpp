// eplb-bench-ingest: the whole-process ingest benchmark's tool, driven by bench/ingest.sh.
//   gen SHAPE BYTES OUT [REMAP_EVERY]  write a synthetic trace (deepseek-v3 | qwen3-235b)
//   compress IN OUT                    gzip (.gz, level 1) or zstd (.zst, level 3) by OUT's name
//   run FILE THREADS DEVICE            read FILE into the aggregator, print one line of figures
//   cuda                               print "yes", or "no: <why>"
// `run` prints: text_bytes seconds cpu_seconds records checksum device (and on stderr the CPU
// time of the calling thread). The peak memory is taken by the caller from the child's rusage
// (/usr/bin/time), so it covers the whole process.

#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"
#include "ingest_gen.hpp"

namespace {

int usage() {
  std::fputs(
      "usage: eplb-bench-ingest gen SHAPE BYTES OUT [REMAP_EVERY] | compress IN OUT |\n"
      "       run FILE THREADS DEVICE | cuda\n",
      stderr);
  return 2;
}

std::uint64_t parse_bytes(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  const std::string unit(end);
  if (unit == "K" || unit == "k") v *= 1e3;
  if (unit == "M") v *= 1e6;
  if (unit == "G") v *= 1e9;
  return static_cast<std::uint64_t>(v);
}

int gen(const std::string& shape_name, const std::string& bytes, const std::string& out,
        int remap_every) {
  const eplb::bench::trace_shape* shape = nullptr;
  if (shape_name == "deepseek-v3") shape = &eplb::bench::deepseek_v3;
  if (shape_name == "qwen3-235b") shape = &eplb::bench::qwen3_235b;
  if (shape == nullptr) return usage();
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (f == nullptr) {
    std::perror(out.c_str());
    return 1;
  }
  std::vector<char> buf(std::size_t{4} << 20);
  std::setvbuf(f, buf.data(), _IOFBF, buf.size());
  eplb::bench::trace_writer writer(*shape, 42, remap_every);
  const std::uint64_t want = parse_bytes(bytes);
  const std::uint64_t got = writer.write(f, want);
  if (std::fclose(f) != 0 || got < want) {
    std::fprintf(stderr, "%s: write failed\n", out.c_str());
    return 1;
  }
  return 0;
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

int compress(const std::string& in_path, const std::string& out_path) {
  std::FILE* in = std::fopen(in_path.c_str(), "rb");
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (in == nullptr || out == nullptr) {
    std::perror("compress");
    return 1;
  }
  const std::size_t chunk = std::size_t{1} << 20;
  std::vector<char> src(chunk), dst(2 * chunk + 1024);
  bool ok = true;
  if (ends_with(out_path, ".gz")) {
    z_stream zs{};
    ok = deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    int flush = Z_NO_FLUSH;
    while (ok && flush != Z_FINISH) {
      const std::size_t n = std::fread(src.data(), 1, chunk, in);
      flush = n < chunk ? Z_FINISH : Z_NO_FLUSH;
      zs.next_in = reinterpret_cast<Bytef*>(src.data());
      zs.avail_in = static_cast<uInt>(n);
      do {
        zs.next_out = reinterpret_cast<Bytef*>(dst.data());
        zs.avail_out = static_cast<uInt>(dst.size());
        deflate(&zs, flush);
        const std::size_t have = dst.size() - zs.avail_out;
        ok = ok && std::fwrite(dst.data(), 1, have, out) == have;
      } while (ok && zs.avail_out == 0);
    }
    deflateEnd(&zs);
  } else if (ends_with(out_path, ".zst")) {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, 3);
    while (ok) {
      const std::size_t n = std::fread(src.data(), 1, chunk, in);
      const bool last = n < chunk;
      const ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
      ZSTD_inBuffer input{src.data(), n, 0};
      bool finished = false;
      while (ok && !finished) {
        ZSTD_outBuffer output{dst.data(), dst.size(), 0};
        const std::size_t remaining = ZSTD_compressStream2(ctx, &output, &input, mode);
        ok = !ZSTD_isError(remaining) && std::fwrite(dst.data(), 1, output.pos, out) == output.pos;
        finished = last ? remaining == 0 : input.pos == input.size;
      }
      if (last) break;
    }
    ZSTD_freeCCtx(ctx);
  } else {
    return usage();
  }
  std::fclose(in);
  ok = std::fclose(out) == 0 && ok;
  if (!ok) std::fprintf(stderr, "%s: compression failed\n", out_path.c_str());
  return ok ? 0 : 1;
}

double cpu_seconds(int who = RUSAGE_SELF) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int run(const std::string& file, int threads, const std::string& device) {
  auto agg = eplb::make_aggregator(device);
  if (!agg) {
    std::fprintf(stderr, "%s\n", agg.message().c_str());
    return 1;
  }
  eplb::stats_read_options options;
  options.threads = threads;
  eplb::stats_read_summary summary;
  const double cpu0 = cpu_seconds();
  const double main0 = cpu_seconds(RUSAGE_THREAD);
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = eplb::read_vllm_stats({file}, options, **agg, &summary);
  auto sums = (*agg)->finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const double main_cpu = cpu_seconds(RUSAGE_THREAD) - main0;
  if (!st.ok() || !sums.ok()) {
    std::fprintf(stderr, "%s\n", (!st.ok() ? st.message() : sums.message()).c_str());
    return 1;
  }
  // The same weighted checksum as bench/reference_reader.py, to compare every row's result.
  std::uint64_t checksum = 0;
  const auto experts = static_cast<std::uint64_t>(sums->cols());
  for (Eigen::Index l = 0; l < sums->rows(); ++l) {
    for (Eigen::Index e = 0; e < sums->cols(); ++e) {
      checksum += (static_cast<std::uint64_t>(l) * experts + static_cast<std::uint64_t>(e) + 1) *
                  static_cast<std::uint64_t>((*sums)(l, e));
    }
  }
  std::printf("%llu %.4f %.4f %llu %llu %s\n", static_cast<unsigned long long>(summary.bytes),
              seconds, cpu, static_cast<unsigned long long>(summary.records_selected),
              static_cast<unsigned long long>(checksum), (*agg)->name());
  // On stderr, for the curious: how the work split between the calling thread and the others.
  std::fprintf(stderr, "calling thread %.4f s of %.4f s CPU\n", main_cpu, cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  if (cmd == "gen" && (argc == 5 || argc == 6)) {
    return gen(argv[2], argv[3], argv[4], argc == 6 ? std::atoi(argv[5]) : 3000);
  }
  if (cmd == "compress" && argc == 4) return compress(argv[2], argv[3]);
  if (cmd == "run" && argc == 5) return run(argv[2], std::atoi(argv[3]), argv[4]);
  if (cmd == "cuda" && argc == 2) {
    std::string why;
    if (eplb::cuda_available(&why)) {
      std::puts("yes");
    } else {
      std::printf("no: %s\n", why.c_str());
    }
    return 0;
  }
  return usage();
}
