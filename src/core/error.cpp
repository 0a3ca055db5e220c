#include "eplb/error.hpp"

namespace eplb {

const char* errc_name(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::io_error: return "io_error";
    case errc::invalid_json: return "invalid_json";
    case errc::wrong_type: return "wrong_type";
    case errc::missing_field: return "missing_field";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::out_of_range: return "out_of_range";
    case errc::invalid_value: return "invalid_value";
    case errc::bad_sequence: return "bad_sequence";
    case errc::no_records: return "no_records";
    case errc::invalid_topology: return "invalid_topology";
    case errc::invalid_argument: return "invalid_argument";
    case errc::overflow: return "overflow";
    case errc::limit_exceeded: return "limit_exceeded";
    case errc::internal: return "internal";
  }
  return "unknown";
}

error make_error(errc code, const position& where, const std::string& field,
                 const std::string& what) {
  std::string msg;
  if (!where.file.empty()) {
    msg += where.file;
    if (where.line > 0) {
      msg += ':';
      msg += std::to_string(where.line);
    }
    msg += ": ";
  }
  if (!field.empty()) msg += field + ": ";
  msg += what;
  return error{code, std::move(msg)};
}

}  // namespace eplb
