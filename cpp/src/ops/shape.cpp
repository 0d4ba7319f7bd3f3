// Shape and dtype changes: views that share the buffer, broadcast copies, conversions.
#include <string>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {

struct ViewBackward final : Node {
  const char* name() const override { return "ViewBackward0"; }
  void apply(Tensor grad) override {  // the input's gradient is the gradient reshaped back
    const Shape& input_shape = next[0]->shape;
    accumulate_grad(*next[0], reshape(grad, std::vector<int64_t>(input_shape.begin(), input_shape.end())));
  }
};

Tensor reshape(const Tensor& a, const std::vector<int64_t>& sizes) {
  const auto invalid = [&] {
    std::string text = "[";
    for (size_t d = 0; d < sizes.size(); ++d) text += (d ? ", " : "") + std::to_string(sizes[d]);
    return detail::concat("reshape: shape '", text, "]' is invalid for input of size ", a.numel());
  };
  int64_t known = 1;
  int inferred = -1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == -1 && inferred < 0) {
      inferred = static_cast<int>(d);
      continue;
    }
    TG_CHECK(sizes[d] >= 0, invalid());
    known *= sizes[d];
  }
  Shape shape;
  for (size_t d = 0; d < sizes.size(); ++d) {
    const bool infer = static_cast<int>(d) == inferred;
    TG_CHECK(!infer || (known != 0 && a.numel() % known == 0), invalid());
    shape.push_back(infer ? a.numel() / known : sizes[d]);
  }
  TG_CHECK(shape.numel() == a.numel(), invalid());
  Tensor out(std::make_shared<TensorImpl>(shape, a.dtype(), a.storage()));
  record<ViewBackward>(out, {&a});
  return out;
}

Tensor expand_copy(const Tensor& a, const Shape& shape) {
  TG_CHECK(broadcast_shapes(a.shape(), shape, "expand") == shape, "expand: the shape ", a.shape().str(),
           " cannot be expanded to ", shape.str());
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), shape, [](T x) { return x; }, loops::Input<T>{a.data<T>(), a.shape()});
  });
  return out;
}

Tensor to_dtype(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;
  Tensor out = Tensor::empty(a.shape(), dtype);
  dispatch_all(a.dtype(), [&](auto in_zero) {
    using In = decltype(in_zero);
    dispatch_all(dtype, [&](auto out_zero) {
      using Out = decltype(out_zero);
      loops::map(out.data<Out>(), a.shape(), [](In x) { return static_cast<Out>(x); },
                 loops::Input<In>{a.data<In>(), a.shape()});
    });
  });
  return out;
}

Tensor clone(const Tensor& a) { return expand_copy(a, a.shape()); }

}  // namespace tg
