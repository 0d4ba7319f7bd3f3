// Dtype conversion as a recorded op: t.to(dtype), t.float(), t.double(), t.long().
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {

namespace {

struct ToCopyBackward final : Node {
  const char* name() const override { return "ToCopyBackward0"; }
  // The gradient is the incoming one in the input's dtype, which accumulate_grad converts to.
  void apply(Tensor grad) override { accumulate_grad(*next[0], std::move(grad)); }
};

}  // namespace

Tensor to(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;  // as torch: the same tensor, no copy
  Tensor out = to_dtype(a, dtype);
  if (is_floating(dtype)) record<ToCopyBackward>(out, {&a});
  return out;
}

}  // namespace tg
