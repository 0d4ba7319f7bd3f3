// In-place ops: they write into their first argument and bump its version counter, so
// a backward that saved the old value notices.
#include <cstring>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

using loops::Input;


void check_inplace(const char* name, const Tensor& self) {
  TG_CHECK(!(is_grad_enabled() && self.requires_grad() && self.is_leaf()), name,
           ": a leaf Variable that requires grad is being used in an in-place operation.");
  TG_CHECK(!(is_grad_enabled() && self.requires_grad()), name,
           ": in-place operations on tensors that are part of a graph are not supported yet; "
           "use the out-of-place form");
}

}  // namespace

Tensor& zero_(Tensor& a) {
  check_inplace("zero_", a);
  std::memset(a.raw_data(), 0, a.numel() * itemsize(a.dtype()));
  a.storage()->bump_version();
  return a;
}

Tensor& add_(Tensor& a, const Tensor& b) {
  check_inplace("add_", a);
  TG_CHECK(broadcast_shapes(a.shape(), b.shape(), "add_") == a.shape(), "add_: output with shape ",
           a.shape().str(), " doesn't match the broadcast shape ", broadcast_shapes(a.shape(), b.shape(), "add_").str());
  TG_CHECK(category(b.dtype()) <= category(a.dtype()), "add_: result type ", dtype_name(b.dtype()),
           " can't be cast to the desired output type ", dtype_name(a.dtype()));
  const Tensor b_cast = to_dtype(b, a.dtype());
  dispatch_arithmetic(a.dtype(), "add_", [&](auto zero) {
    using T = decltype(zero);
    loops::map(a.data<T>(), a.shape(), [](T x, T y) { return x + y; }, Input<T>{a.data<T>(), a.shape()},
               Input<T>{b_cast.data<T>(), b.shape()});
  });
  a.storage()->bump_version();
  return a;
}

}  // namespace tg
