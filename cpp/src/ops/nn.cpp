// Neural-network building blocks: linear layers and losses, each one fused kernel with a
// fused backward rule.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/vecmath.h"
#include "loops.h"
#include "rules.h"

namespace tg {
namespace {

// Rows of logits: a (C,) vector is one row.
struct Rows {
  int64_t count, classes;
};
Rows rows_of(const Tensor& logits) {
  return logits.ndim() == 1 ? Rows{1, logits.shape()[0]} : Rows{logits.shape()[0], logits.shape()[1]};
}

// log(sum(exp(row))) in two parts, the row's maximum and log(sum(exp(row - max))): taking
// the max out keeps exp from overflowing, and keeping the parts apart keeps the precision that
// rounding their sum at the logits' magnitude (1e4, say) would lose in a loss or a softmax.
template <class T>
struct LogSumExp {
  T top;
  T log_sum;  // 0 when top is infinite or nan: log(sum(exp(row))) is top then
};

// `exps` receives exp(row - max), n elements.
template <class T>
LogSumExp<T> log_sum_exp(const T* row, int64_t n, T* exps) {
  T top = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < n; ++c) top = std::max(top, row[c]);
  if (!std::isfinite(top)) return {top, T(0)};
  for (int64_t c = 0; c < n; ++c) exps[c] = row[c] - top;
  kernels::exp(exps, exps, n);
  return {top, static_cast<T>(std::log(kernels::sum(exps, n)))};
}

Tensor reduce(const Tensor& losses, LossReduction reduction) {
  if (reduction == LossReduction::None) return losses;
  NoGradGuard no_grad;  // the loss node already covers this step
  return reduction == LossReduction::Sum ? sum(losses) : mean(losses);
}

// The gradient of each sample's loss under `reduction`: g broadcast, or g / N for mean.
Tensor per_sample_gradient(const Tensor& grad, LossReduction reduction, int64_t count) {
  if (reduction != LossReduction::Mean) return grad;
  return div(grad, scalar_tensor(double(count), grad.dtype()));
}

struct CrossEntropyBackward final : Node {
  SavedTensor logits, target;
  LossReduction reduction = LossReduction::Mean;
  const char* name() const override { return "NllLossBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& x = logits.unpack(*this);
    const Tensor& classes = target.unpack(*this);
    const Rows rows = rows_of(x);
    const Tensor scale = per_sample_gradient(grad, reduction, rows.count);
    Tensor contribution = Tensor::empty(x.shape(), x.dtype());
    dispatch_floating(x.dtype(), name(), [&](auto zero) {
      using T = decltype(zero);
      const T* scale_data = scale.data<T>();
      const bool per_row = scale.numel() > 1;
      for (int64_t i = 0; i < rows.count; ++i) {
        const T* row = x.data<T>() + i * rows.classes;
        T* out = contribution.data<T>() + i * rows.classes;
        const T g = scale_data[per_row ? i : 0];
        const LogSumExp<T> lse = log_sum_exp(row, rows.classes, out);
        for (int64_t c = 0; c < rows.classes; ++c) out[c] = (row[c] - lse.top) - lse.log_sum;
        kernels::exp(out, out, rows.classes);
        for (int64_t c = 0; c < rows.classes; ++c) out[c] *= g;  // d/dx = softmax(x) - one_hot
        out[classes.data<int64_t>()[i]] -= g;
      }
    });
    accumulate_grad(*next[0], std::move(contribution));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(logits);
    visit(target);
  }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, LossReduction reduction) {
  TG_CHECK(logits.ndim() == 1 || logits.ndim() == 2, "cross_entropy: expected logits of shape (N, C) or (C,), got ",
           logits.shape().str());
  TG_CHECK_AS(TypeError, target.dtype() == DType::Int64, "cross_entropy: expected target of class indices of dtype int64, got ",
              dtype_name(target.dtype()), " (probabilities as targets are not supported)");
  const Rows rows = rows_of(logits);
  const auto target_mismatch = [&] {
    return detail::concat("cross_entropy: expected target of shape ", (logits.ndim() == 2 ? Shape{rows.count} : Shape{}).str(),
                          " for logits of shape ", logits.shape().str(), ", got ", target.shape().str());
  };
  TG_CHECK(target.ndim() == logits.ndim() - 1, target_mismatch());
  TG_CHECK_AS(ValueError, target.numel() == rows.count, target_mismatch());  // a batch size mismatch, as torch
  const int64_t* classes = target.data<int64_t>();
  for (int64_t i = 0; i < rows.count; ++i)
    TG_CHECK_AS(IndexError, classes[i] >= 0 && classes[i] < rows.classes, "cross_entropy: Target ", classes[i],
                " is out of bounds for ", rows.classes, " classes.");
  Tensor losses = Tensor::empty(target.shape(), logits.dtype());
  dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> exps(static_cast<size_t>(rows.classes));
    for (int64_t i = 0; i < rows.count; ++i) {
      const T* row = logits.data<T>() + i * rows.classes;
      const LogSumExp<T> lse = log_sum_exp(row, rows.classes, exps.data());
      losses.data<T>()[i] = (lse.top - row[classes[i]]) + lse.log_sum;  // -log softmax(x)[t]
    }
  });
  Tensor out = reduce(losses, reduction);
  if (auto* node = record<CrossEntropyBackward>(out, {&logits})) {
    node->logits = SavedTensor(logits, false);
    node->target = SavedTensor(target, false);
    node->reduction = reduction;
  }
  return out;
}

namespace {

struct MseLossBackward final : Node {
  SavedTensor input, target;
  LossReduction reduction = LossReduction::Mean;
  const char* name() const override { return "MseLossBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    const Tensor& y = target.unpack(*this);
    const Shape shape = broadcast_shapes(x.shape(), y.shape(), "mse_loss");
    const Tensor scale = per_sample_gradient(grad, reduction, shape.numel());
    const auto difference = [](auto g, auto a, auto b) { return 2 * g * (a - b); };  // d(a-b)^2/da = 2(a-b)
    if (next[0]) accumulate_grad(*next[0], gradient_map(*this, shape, scale, difference, x, y));
    if (next[1]) accumulate_grad(*next[1], gradient_map(*this, shape, scale, difference, y, x));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(target);
  }
};

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, LossReduction reduction) {
  TG_CHECK(is_floating(input.dtype()) && is_floating(target.dtype()), "mse_loss: expected floating point tensors, got ",
           dtype_name(input.dtype()), " and ", dtype_name(target.dtype()));
  Tensor losses;
  {
    NoGradGuard no_grad;  // one node for the loss
    broadcast_shapes(input.shape(), target.shape(), "mse_loss");  // raises naming this op rather than sub
    // The wider dtype of the two, as torch's: sub's rule would keep a 0-d operand's dtype out
    // (float32 input, 0-d float64 target: float64, not float32).
    const DType dtype = promote_types(input.dtype(), target.dtype());
    const Tensor difference = sub(to_dtype(input, dtype), to_dtype(target, dtype));
    losses = mul(difference, difference);
  }
  Tensor out = reduce(losses, reduction);
  if (auto* node = record<MseLossBackward>(out, {&input, &target})) {
    node->input = SavedTensor(input, false);
    node->target = SavedTensor(target, false);
    node->reduction = reduction;
  }
  return out;
}

}  // namespace tg
