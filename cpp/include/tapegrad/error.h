// Error reporting: TG_CHECK for user errors (each becomes the Python exception a PyTorch
// user expects), TG_ASSERT for the engine's own invariants.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tg {

// std::runtime_error -> RuntimeError, std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError (pybind11's defaults); TypeError, MemoryError,
// OverflowError and NotImplementedError need their own types.
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct MemoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct OverflowError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct NotImplementedError : std::runtime_error {  // an op torch has no kernel for, for these dtypes
  using std::runtime_error::runtime_error;
};
using RuntimeError = std::runtime_error;
using ValueError = std::invalid_argument;
using IndexError = std::out_of_range;

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace tg

#define TG_CHECK_AS(Error, cond, ...)                          \
  do {                                                         \
    if (__builtin_expect(!(cond), 0))                          \
      throw Error(::tg::detail::concat(__VA_ARGS__));          \
  } while (0)
#define TG_CHECK(cond, ...) TG_CHECK_AS(::tg::RuntimeError, cond, __VA_ARGS__)

#define TG_ASSERT(cond)                                                                    \
  do {                                                                                     \
    if (__builtin_expect(!(cond), 0))                                                      \
      throw std::logic_error(::tg::detail::concat("tapegrad internal error: ", #cond,     \
                                                  " failed at ", __FILE__, ":", __LINE__, \
                                                  "; please report a bug"));             \
  } while (0)
