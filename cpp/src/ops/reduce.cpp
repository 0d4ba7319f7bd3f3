// Reductions and softmax. One machinery serves them all: a Reduction says which input elements
// reduce into which result element, and `fold` runs an accumulation over it with
// loops::for_each_row. Each op's forward kernel is followed by its backward node.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>

#include "kernels/vecmath.h"
#include "loops.h"
#include "rules.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

// --- the machinery ---

// Which elements of `input` reduce into which result element. `kept` is `input` with each
// reduced dim of size 1, so it broadcasts to `input`; `result` is `kept` without the reduced
// dims (unless keepdim). Both list the same elements in the same order, so a buffer of the
// result's shape is indexed by offsets into `kept`.
struct Reduction {
  Shape input;
  Shape kept;
  Shape result;
  int64_t count = 1;  // input elements per result element
};

// The reduction of `input` over `dims` (all dims when empty); `op` names the caller in errors.
Reduction reduction(const Shape& input, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  uint32_t reduced = dims.empty() ? ~0u : 0u;  // bit d: dim d is reduced
  for (const int64_t dim : dims) {
    const int d = wrap_dim(dim, input.ndim(), op);
    TG_CHECK(!(reduced >> d & 1u), op, ": dim ", d, " appears multiple times in the list of dims");
    reduced |= 1u << d;
  }
  Reduction r;
  r.input = input;
  for (int d = 0; d < input.ndim(); ++d) {
    const bool is_reduced = reduced >> d & 1u;
    r.kept.push_back(is_reduced ? 1 : input[d]);
    if (is_reduced) r.count *= input[d];
    if (!is_reduced || keepdim) r.result.push_back(r.kept[d]);
  }
  return r;
}

// Calls row(result_offset, input_offset, n, along) once per row of n contiguous input elements.
// A row along the reduced dims (`along`) reduces into the one result element result_offset;
// any other row runs along a kept dim, and its element k reduces into result element
// result_offset + k (for_each_row drops size-1 dims first, so such a row is contiguous in both).
// Big inputs split across the pool along an outer kept dim (a split of the rows, which `sum(0)`
// of a matrix would need, took 1.5x the one-thread time on 2 threads): each result element
// still sees its rows in the serial order, so results are bitwise the one-thread ones, and
// `row` may write the result elements and the input elements of its own row.
template <class Row>
void for_each_reduced_row(const Reduction& r, Row&& row) {
  loops::parallel_for_each_row<2>(
      r.input, {&r.kept, &r.input},
      [&](const std::array<int64_t, 2>& offsets, int64_t n, const std::array<int64_t, 2>& steps) {
        row(offsets[0], offsets[1], n, steps[0] == 0);
      },
      /*may_split_rows=*/false);
}

// op over f(0), ..., f(n - 1), in eight independent lanes so that the loop pipelines (and a
// float32 sum accumulated in double lanes stays accurate); `identity` is op's.
template <class Acc, class F, class Op>
Acc reduce_row(int64_t n, Acc identity, F f, Op op) {
  Acc lanes[8];
  std::fill_n(lanes, 8, identity);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    // Kept a loop, so that GCC vectorises it as one, selects included (unrolled, as it is by
    // default, only add and multiply vectorise): with `Best`'s `|`, max(dim=1) of a 2048 x 2048
    // float32 matrix took 5.4 ms where it took 11.1 (bench/reductions.py).
#pragma GCC unroll 1
    for (int lane = 0; lane < 8; ++lane) lanes[lane] = op(lanes[lane], f(k + lane));
  }
  for (; k < n; ++k) lanes[0] = op(lanes[0], f(k));
  return op(op(op(lanes[0], lanes[1]), op(lanes[2], lanes[3])), op(op(lanes[4], lanes[5]), op(lanes[6], lanes[7])));
}

// acc[o] = op(acc[o], f(i, o)) for each input element i and the result element o it reduces
// into; `identity` is op's.
template <class Acc, class F, class Op>
void fold(const Reduction& r, Acc* acc, Acc identity, F f, Op op) {
  for_each_reduced_row(r, [&](int64_t o, int64_t i, int64_t n, bool along) {
    if (along) {
      acc[o] = op(acc[o], reduce_row(n, identity, [&](int64_t k) { return f(i + k, o); }, op));
    } else {
      Acc* out = acc + o;
      for (int64_t k = 0; k < n; ++k) out[k] = op(out[k], f(i + k, o + k));
    }
  });
}

// A new buffer of the result's shape, starting at `identity`, with `fold` run into it.
template <class Acc, class F, class Op>
Tensor fold_new(const Reduction& r, Acc identity, F f, Op op) {
  Tensor acc = Tensor::empty(r.result, dtype_of<Acc>());
  std::fill_n(acc.data<Acc>(), acc.numel(), identity);
  fold(r, acc.data<Acc>(), identity, f, op);
  return acc;
}

// The sums over the reduced dims, in double. A row along them goes through kernels::sum
// (blocks in independent lanes, block sums pairwise); a row across them adds one element into
// each of n sums. So a float32 sum is exact to within float32's final rounding for any
// length a buffer can have, and a float64 sum along a dim errs by at most
// (kSumBlock / 16 + log2(n / kSumBlock) + 1) * 2^-53 * sum |x|.
template <class T>
Tensor sums_in_double(const Reduction& r, const T* x) {
  Tensor sums = Tensor::empty(r.result, DType::Float64);
  double* acc = sums.data<double>();
  std::fill_n(acc, sums.numel(), 0.0);
  for_each_reduced_row(r, [&](int64_t o, int64_t i, int64_t n, bool along) {
    if (along) {
      acc[o] += kernels::sum(x + i, n);
    } else {
      for (int64_t k = 0; k < n; ++k) acc[o + k] += double(x[i + k]);
    }
  });
  return sums;
}

// out = exp(x - shift) over `shape`, with `shift` in `kept` broadcast to it: the exponentials
// that softmax and logsumexp sum, through the vectorised exp.
template <class T>
void shifted_exp(const Shape& shape, const T* x, const Shape& kept, const T* shift, T* out) {
  loops::map(out, shape, [](T v, T m) { return v - m; }, loops::Input<T>{x, shape}, loops::Input<T>{shift, kept});
  kernels::exp(out, out, shape.numel());
}

// A gradient (or saved result) of the result's shape, viewed in `kept` so that it broadcasts
// to the input.
Tensor as_kept(const Tensor& t, const Shape& kept) { return reshape(t, std::vector<int64_t>(kept.begin(), kept.end())); }

// A reduction along one dim, with what an index along it needs: consecutive indices lie
// `inner` elements apart, and `size` of them make the dim (1 for a 0-d input).
struct AlongDim {
  Reduction r;
  int dim = 0;
  int64_t size = 1;
  int64_t inner = 1;
  // The index along the dim of input element `offset`.
  int64_t index_of(int64_t offset) const { return offset / inner % size; }
};

AlongDim along_dim(const Shape& input, int64_t dim, bool keepdim, const char* op) {
  AlongDim along;
  along.r = reduction(input, {dim}, keepdim, op);
  along.dim = wrap_dim(dim, input.ndim(), op);
  if (input.ndim() > 0) {
    along.size = input[along.dim];
    for (int d = along.dim + 1; d < input.ndim(); ++d) along.inner *= input[d];
  }
  return along;
}

// Calls slice(result_index, offset, stride, n) for each 1-D slice of `shape` along `dim`, or,
// for dim -1, once for all elements as one flat slice. For scans, whose order along the slice
// matters in both directions (for_each_row serves everything else).
template <class Slice>
void for_each_slice(const Shape& shape, int dim, Slice&& slice) {
  if (dim < 0) return slice(0, 0, 1, shape.numel());
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= shape[d];
  for (int d = dim + 1; d < shape.ndim(); ++d) inner *= shape[d];
  const int64_t size = shape[dim];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) slice(o * inner + j, o * size * inner + j, inner, size);
}

template <class T>
bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(x);
  else
    return false;
}

// The orders of max and min: `beats` compares numbers, nan beats every number (as in torch),
// and `worst` loses to all.
struct Greatest {
  static constexpr const char* name = "max";
  template <class T>
  static bool beats(T x, T y) { return x > y; }
  template <class T>
  static T worst() {
    if constexpr (std::numeric_limits<T>::has_infinity)
      return -std::numeric_limits<T>::infinity();
    else
      return std::numeric_limits<T>::lowest();
  }
};

struct Least {
  static constexpr const char* name = "min";
  template <class T>
  static bool beats(T x, T y) { return x < y; }
  template <class T>
  static T worst() {
    if constexpr (std::numeric_limits<T>::has_infinity)
      return std::numeric_limits<T>::infinity();
    else
      return std::numeric_limits<T>::max();
  }
};

// Whether x replaces `best` in a scan that keeps the first of equal extremes.
template <class Order, class T>
bool better(T x, T best) {
  return Order::beats(x, best) | (is_nan(x) & !is_nan(best));
}

// The better of two values in `Order`, as a fold operator: of two equal values it may keep
// either, since only the value counts.
template <class Order>
struct Best {
  template <class T>
  T operator()(T best, T x) const { return Order::beats(x, best) | is_nan(x) ? x : best; }  // `|`: no branch, so rows vectorise
};

// The maximum along the reduced dims (nan if any is nan): what softmax subtracts.
template <class T>
Tensor maxima(const Reduction& r, const T* x) {
  return fold_new<T>(r, Greatest::worst<T>(), [x](int64_t i, int64_t) { return x[i]; }, Best<Greatest>());
}

// The dtype torch gives a sum or product: integers and bools reduce to int64.
DType sum_dtype(DType dtype) { return is_floating(dtype) ? dtype : DType::Int64; }

void check_floating(const Tensor& a, const char* op, const char* what) {
  TG_CHECK_AS(TypeError, is_floating(a.dtype()), op, "(): ", what, " Got: ", dtype_name(a.dtype()));
}

}  // namespace

// --- sum ---

namespace {
Tensor sum_kernel(const Tensor& a, const Reduction& r) {
  return dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    if constexpr (std::is_floating_point_v<T>) {
      return to_dtype(sums_in_double(r, x), a.dtype());
    } else {
      return fold_new<int64_t>(r, 0, [x](int64_t i, int64_t) { return int64_t(x[i]); }, std::plus<int64_t>());
    }
  });
}
}  // namespace

Tensor sum_to_shape(const Tensor& a, const Shape& shape) {
  // Keep a dim where `shape` keeps it; sum leading dims `shape` lacks and dims where it has 1.
  Reduction r;
  r.input = a.shape();
  for (int d = 0; d < shape.ndim(); ++d) {
    const int da = d - (shape.ndim() - a.ndim());
    r.kept.push_back(shape[d] == 1 || da < 0 ? 1 : a.shape()[da]);
  }
  r.result = r.kept;
  return sum_kernel(a, r);
}

namespace {
struct SumBackward final : Node {
  Shape kept;
  const char* name_ = "SumBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override { accumulate_grad(*next[0], as_kept(grad, kept)); }  // d(sum a)/da = 1, broadcast
};

Tensor sum_recorded(const Tensor& a, const Reduction& r, const char* node_name) {
  Tensor out = sum_kernel(a, r);
  if (auto* node = record<SumBackward>(out, {&a})) {
    node->kept = r.kept;
    node->name_ = node_name;
  }
  return out;
}
}  // namespace

Tensor sum(const Tensor& a) { return sum_recorded(a, reduction(a.shape(), {}, false, "sum"), "SumBackward0"); }

Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_recorded(a, reduction(a.shape(), dims, keepdim, "sum"), "SumBackward1");
}

// --- mean ---

namespace {
struct MeanBackward final : Node {
  Shape kept;
  int64_t count = 0;
  const char* name_ = "MeanBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {  // d(mean a)/da = 1/n, broadcast
    accumulate_grad(*next[0], div(as_kept(grad, kept), scalar_tensor(double(count), grad.dtype())));
  }
};

Tensor mean_recorded(const Tensor& a, const Reduction& r, const char* node_name) {
  check_floating(a, "mean", "could not infer output dtype. Input dtype must be a floating point dtype.");
  Tensor sums = dispatch_floating(a.dtype(), "mean", [&](auto zero) {
    return sums_in_double(r, a.data<decltype(zero)>());
  });
  loops::update(sums.data<double>(), sums.shape(), [count = double(r.count)](double s) { return s / count; });  // 0 / 0 = nan for nothing
  Tensor out = to_dtype(sums, a.dtype());
  if (auto* node = record<MeanBackward>(out, {&a})) {
    node->kept = r.kept;
    node->count = r.count;
    node->name_ = node_name;
  }
  return out;
}
}  // namespace

Tensor mean(const Tensor& a) { return mean_recorded(a, reduction(a.shape(), {}, false, "mean"), "MeanBackward0"); }

Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return mean_recorded(a, reduction(a.shape(), dims, keepdim, "mean"), "MeanBackward1");
}

// --- norm ---

namespace {
struct NormBackward final : Node {
  SavedTensor input, result;
  Shape kept;
  const char* name() const override { return "LinalgVectorNormBackward0"; }
  // d|a|/da = a / |a|, taken as 0 where |a| == 0; a NaN or infinite gradient stays NaN there, as torch's does.
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    accumulate_grad(*next[0], gradient_map(*this, x.shape(), as_kept(grad, kept),
                                           [](auto g, auto v, auto n) { return v * (n == 0 ? g * decltype(g)(0) : g / n); },
                                           x, as_kept(result.unpack(*this), kept)));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(result);
  }
};

Tensor norm_recorded(const Tensor& a, const Reduction& r) {
  check_floating(a, "norm", "Expected a floating point tensor as input.");
  Tensor squares = dispatch_floating(a.dtype(), "norm", [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    return fold_new<double>(r, 0.0, [x](int64_t i, int64_t) { return double(x[i]) * double(x[i]); }, std::plus<double>());
  });
  loops::update(squares.data<double>(), squares.shape(), [](double s) { return std::sqrt(s); });
  Tensor out = to_dtype(squares, a.dtype());
  if (auto* node = record<NormBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->result = SavedTensor(out, true);
    node->kept = r.kept;
  }
  return out;
}
}  // namespace

Tensor norm(const Tensor& a) { return norm_recorded(a, reduction(a.shape(), {}, false, "norm")); }

Tensor norm(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return norm_recorded(a, reduction(a.shape(), dims, keepdim, "norm"));
}

// --- var, std ---

namespace {
struct VarBackward final : Node {
  SavedTensor input, mean, result;  // mean in `kept`, made by the forward; result for std only
  Shape kept;
  int64_t count = 0;
  double correction = 1;
  bool all_dims = false;  // no dims given: torch's rule for n - correction <= 0 differs
  bool is_std = false;
  const char* name() const override { return is_std ? "StdBackward0" : "VarBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    const double dof = double(count) - correction;
    const bool degenerate = all_dims && dof <= 0;
    const double scale = 2 / dof;
    // d var/da = 2 (a - mean) / (n - correction); with no dims and n - correction <= 0, torch
    // takes it as inf, and as nan where a == mean (inf * 0).
    const auto var_rule = [degenerate, scale](auto g, auto v, auto m) {
      using T = decltype(g);
      if (degenerate) return g * (v == m ? std::numeric_limits<T>::quiet_NaN() : std::numeric_limits<T>::infinity());
      return T(scale) * g * (v - m);
    };
    const Tensor grad_kept = as_kept(grad, kept);
    if (!is_std) {
      accumulate_grad(*next[0], gradient_map(*this, x.shape(), grad_kept, var_rule, x, mean.unpack(*this)));
      return;
    }
    // d std/d var = 1 / (2 std), taken as 0 where std == 0
    accumulate_grad(*next[0], gradient_map(*this, x.shape(), grad_kept, [var_rule](auto g, auto v, auto m, auto s) {
                      return var_rule(s == 0 ? decltype(g)(0) : g / (s * 2), v, m);
                    }, x, mean.unpack(*this), as_kept(result.unpack(*this), kept)));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(mean);
    visit(result);
  }
};

Tensor variance(const Tensor& a, const std::vector<int64_t>& dims, double correction, bool keepdim, bool is_std) {
  const char* op = is_std ? "std" : "var";
  check_floating(a, op, "std and var only support floating point dtypes.");
  const Reduction r = reduction(a.shape(), dims, keepdim, op);
  Tensor means, variances;  // in double: two passes, so no cancellation
  dispatch_floating(a.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    means = sums_in_double(r, x);
    loops::update(means.data<double>(), means.shape(), [count = double(r.count)](double s) { return s / count; });
    const double* m = means.data<double>();
    variances = fold_new<double>(r, 0.0, [x, m](int64_t i, int64_t o) {
      const double deviation = double(x[i]) - m[o];
      return deviation * deviation;
    }, std::plus<double>());
  });
  // torch divides by 0 rather than by a negative count, giving inf (or nan for 0 / 0)
  const double dof = std::max(0.0, double(r.count) - correction);
  loops::update(variances.data<double>(), variances.shape(),
                [dof, is_std](double v) { return is_std ? std::sqrt(v / dof) : v / dof; });
  Tensor out = to_dtype(variances, a.dtype());
  if (auto* node = record<VarBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->mean = SavedTensor(as_kept(to_dtype(means, a.dtype()), r.kept), false);
    if (is_std) node->result = SavedTensor(out, true);
    node->kept = r.kept;
    node->count = r.count;
    node->correction = correction;
    node->all_dims = dims.empty() || a.ndim() == 0;
    node->is_std = is_std;
  }
  return out;
}
}  // namespace

Tensor var(const Tensor& a, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return variance(a, dims, correction, keepdim, /*is_std=*/false);
}

Tensor std(const Tensor& a, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  return variance(a, dims, correction, keepdim, /*is_std=*/true);
}

// --- logsumexp ---

namespace {
struct LogsumexpBackward final : Node {
  SavedTensor input, result;
  // The result's two parts, in `kept`: the shift and log(sum(exp(a - shift))). The softmax
  // is computed from them apart, since the result rounded at the logits' magnitude (1e4,
  // say) would cost its low digits.
  SavedTensor shift, log_sums;
  Shape kept;
  const char* name() const override { return "LogsumexpBackward0"; }
  void apply(Tensor grad) override {  // d logsumexp(a)/da = exp(a - logsumexp(a)), the softmax
    result.unpack(*this);  // not read, but an in-place change of the result is an error, as in torch
    const Tensor x = to_dtype(input.unpack(*this), dtype);
    const Tensor& shift_values = shift.unpack(*this);
    const Tensor& log_sum_values = log_sums.unpack(*this);
    Tensor softmax = Tensor::empty(x.shape(), dtype);
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      T* p = softmax.data<T>();
      loops::map(p, x.shape(), [](T v, T m, T l) { return (v - m) - l; }, loops::Input<T>{x.data<T>(), x.shape()},
                 loops::Input<T>{shift_values.data<T>(), kept}, loops::Input<T>{log_sum_values.data<T>(), kept});
      kernels::exp(p, p, softmax.numel());
    });
    accumulate_grad_map(*next[0], *this, x.shape(), as_kept(grad, kept), [](auto g, auto p) { return g * p; }, softmax);
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(result);
    visit(shift);
    visit(log_sums);
  }
};
}  // namespace

Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  const Reduction r = reduction(a.shape(), dims, keepdim, "logsumexp");
  const Tensor input = is_floating(a.dtype()) ? a : to_dtype(a, DType::Float32);
  // log sum exp(a) = log sum exp(a - shift) + shift, with the maximum as the shift, or 0 where
  // it is infinite (as torch); the empty sum gives log 0 = -inf
  Tensor shift, log_sums;
  Tensor out = dispatch_floating(input.dtype(), "logsumexp", [&](auto zero) {
    using T = decltype(zero);
    const T* x = input.data<T>();
    shift = maxima(r, x);
    loops::update(shift.data<T>(), shift.shape(), [](T m) { return std::isinf(m) ? T(0) : m; });
    const T* s = shift.data<T>();
    Tensor exps = Tensor::empty(r.input, input.dtype());
    shifted_exp(r.input, x, r.kept, s, exps.data<T>());
    const Tensor sums = sums_in_double(r, exps.data<T>());
    log_sums = Tensor::empty(r.result, input.dtype());
    Tensor result = Tensor::empty(r.result, input.dtype());
    for (int64_t o = 0; o < result.numel(); ++o) {
      const double log_sum = std::log(sums.data<double>()[o]);
      log_sums.data<T>()[o] = static_cast<T>(log_sum);
      result.data<T>()[o] = static_cast<T>(log_sum + s[o]);
    }
    return result;
  });
  if (auto* node = record<LogsumexpBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->result = SavedTensor(out, true);
    node->shift = SavedTensor(shift, false);
    node->log_sums = SavedTensor(log_sums, false);
    node->kept = r.kept;
  }
  return out;
}

// --- prod ---

namespace {
struct ProdBackward final : Node {
  SavedTensor input, result;
  Shape kept;
  int dim = -1;  // the dim reduced, or -1 for the whole input (ProdBackward0)
  const char* name() const override { return dim < 0 ? "ProdBackward0" : "ProdBackward1"; }
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    // Unpacked whether or not the rule reads it, as torch's is: an in-place change raises.
    const Tensor& product = result.unpack(*this);
    if (x.ndim() == 0) return accumulate_grad(*next[0], std::move(grad));  // the product of one element is itself
    const Tensor g = as_kept(grad, kept);
    accumulate_grad(*next[0], dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      const T* xs = x.data<T>();
      const int64_t zeros_count = std::count(xs, xs + x.numel(), T(0));
      if (zeros_count == 0)  // d(prod a)/da_k = prod(a) / a_k
        return gradient_map(*this, x.shape(), g, [](auto gv, auto v, auto p) { return gv * (p / v); }, x,
                            as_kept(product, kept));
      if (dim < 0 && zeros_count > 1) return zeros(x.shape(), dtype);  // every product of the others has a zero
      // With a zero anywhere, torch takes the product of the others without dividing, as the
      // product of the elements before a_k along its slice times those after, for every slice.
      Tensor out = Tensor::empty(x.shape(), dtype);
      T* o = out.data<T>();
      const T* gs = g.data<T>();
      for_each_slice(x.shape(), dim, [&](int64_t result_index, int64_t offset, int64_t stride, int64_t n) {
        T before = 1;
        for (int64_t k = 0; k < n; ++k) {
          o[offset + k * stride] = before;
          before *= xs[offset + k * stride];
        }
        T after = 1;
        for (int64_t k = n - 1; k >= 0; --k) {
          o[offset + k * stride] = gs[result_index] * (o[offset + k * stride] * after);
          after *= xs[offset + k * stride];
        }
      });
      return out;
    }));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(result);
  }
};

Tensor prod_recorded(const Tensor& a, const Reduction& r, int dim) {
  Tensor out = dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;  // as torch: float32 overflows as float32
    const T* x = a.data<T>();
    return to_dtype(fold_new<Acc>(r, Acc(1), [x](int64_t i, int64_t) { return Acc(x[i]); }, std::multiplies<Acc>()),
                    sum_dtype(a.dtype()));
  });
  if (auto* node = record<ProdBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->result = SavedTensor(out, true);
    node->kept = r.kept;
    node->dim = dim;
  }
  return out;
}
}  // namespace

Tensor prod(const Tensor& a) { return prod_recorded(a, reduction(a.shape(), {}, false, "prod"), -1); }

Tensor prod(const Tensor& a, int64_t dim, bool keepdim) {
  const AlongDim along = along_dim(a.shape(), dim, keepdim, "prod");
  return prod_recorded(a, along.r, a.ndim() == 0 ? -1 : along.dim);
}

// --- max, min, argmax, argmin ---

namespace {
// Over all elements: the gradient is shared evenly by the elements equal to the result (the nan
// ones when it is nan), as torch's evenly_distribute_backward.
struct ExtremeBackward final : Node {
  SavedTensor input, result;
  const char* name_ = "MaxBackward1";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    Tensor out = Tensor::empty(x.shape(), dtype);
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      const T* xs = x.data<T>();
      T* o = out.data<T>();
      const T extreme = *result.unpack(*this).template data<T>();
      const bool nan = std::isnan(extreme);
      const int64_t n = x.numel();
      int64_t ties = 0;
      for (int64_t i = 0; i < n; ++i) ties += nan ? std::isnan(xs[i]) : xs[i] == extreme;
      const T share = *grad.data<T>() / T(ties);  // d max/da_k = 1 / ties where a_k is a maximum
      for (int64_t i = 0; i < n; ++i) o[i] = (nan ? std::isnan(xs[i]) : xs[i] == extreme) ? share : T(0);
    });
    accumulate_grad(*next[0], std::move(out));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(result);
  }
};

// Along a dim: the gradient goes to the index the forward returned.
struct ExtremeAlongBackward final : Node {
  SavedTensor indices;
  AlongDim along;
  const char* name_ = "MaxBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    Tensor out = zeros(along.r.input, dtype);
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      const T* g = grad.data<T>();
      const int64_t* index = indices.unpack(*this).template data<int64_t>();
      T* o = out.data<T>();
      for_each_reduced_row(along.r, [&](int64_t r, int64_t i, int64_t n, bool is_along) {
        if (is_along) {
          o[i + index[r]] = g[r];  // d max/da_k = 1 at the index returned
        } else {
          const int64_t k = along.index_of(i);
          for (int64_t j = 0; j < n; ++j)
            if (index[r + j] == k) o[i + j] = g[r + j];
        }
      });
    });
    accumulate_grad(*next[0], std::move(out));
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(indices); }
};

template <class Order>
Tensor extreme(const Tensor& a) {
  TG_CHECK(a.numel() > 0, Order::name, "(): Expected reduction dim to be specified for input.numel() == 0. "
           "Specify the reduction dim with the 'dim' argument.");
  const Reduction r = reduction(a.shape(), {}, false, Order::name);
  Tensor out = dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    return fold_new<T>(r, Order::template worst<T>(), [x](int64_t i, int64_t) { return x[i]; }, Best<Order>());
  });
  if (auto* node = record<ExtremeBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->result = SavedTensor(out, true);
    node->name_ = std::is_same_v<Order, Greatest> ? "MaxBackward1" : "MinBackward1";
  }
  return out;
}

// The first extreme element of each slice along the dim, and its index there.
template <class Order, class T>
void select_along(const AlongDim& along, const T* x, T* values, int64_t* indices) {
  std::fill_n(values, along.r.result.numel(), Order::template worst<T>());
  std::fill_n(indices, along.r.result.numel(), int64_t(0));
  for_each_reduced_row(along.r, [&](int64_t r, int64_t i, int64_t n, bool is_along) {
    if (is_along) {  // the whole slice, index k at element k: the extreme, then its first index
      const T best = reduce_row(n, Order::template worst<T>(), [&](int64_t k) { return x[i + k]; }, Best<Order>());
      int64_t first = 0;
      while (first < n - 1 && !(x[i + first] == best || (is_nan(best) && is_nan(x[i + first])))) ++first;
      values[r] = best;
      indices[r] = first;
    } else {  // one index of n slices
      const int64_t k = along.index_of(i);
      for (int64_t j = 0; j < n; ++j) {  // selects, not a branch: the loop vectorises
        const bool replaces = better<Order>(x[i + j], values[r + j]);
        values[r + j] = replaces ? x[i + j] : values[r + j];
        indices[r + j] = replaces ? k : indices[r + j];
      }
    }
  });
}

AlongDim nonempty_along_dim(const Shape& input, int64_t dim, bool keepdim, const char* op) {
  AlongDim along = along_dim(input, dim, keepdim, op);
  TG_CHECK_AS(IndexError, along.size > 0, op, "(): Expected reduction dim ", along.dim, " to have non-zero size.");
  return along;
}

template <class Order>
ValuesIndices extreme_along(const Tensor& a, int64_t dim, bool keepdim) {
  const AlongDim along = nonempty_along_dim(a.shape(), dim, keepdim, Order::name);
  ValuesIndices out{Tensor::empty(along.r.result, a.dtype()), Tensor::empty(along.r.result, DType::Int64)};
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    select_along<Order>(along, a.data<T>(), out.values.data<T>(), out.indices.data<int64_t>());
  });
  if (auto* node = record<ExtremeAlongBackward>(out.values, {&a})) {
    node->indices = SavedTensor(out.indices, false);
    node->along = along;
    node->name_ = std::is_same_v<Order, Greatest> ? "MaxBackward0" : "MinBackward0";
  }
  return out;
}

template <class Order>
Tensor arg_extreme(const Tensor& a, std::optional<int64_t> dim, bool keepdim, const char* op) {
  TG_CHECK_AS(TypeError, a.dtype() != DType::Bool, op, "(): does not support bool input");
  TG_CHECK_AS(IndexError, dim || a.numel() > 0, op, "(): Expected reduction dim to be specified for input.numel() == 0.");
  // Without a dim, the index into the flattened input; keepdim keeps every dim with size 1.
  const AlongDim along = dim ? nonempty_along_dim(a.shape(), *dim, keepdim, op) : along_dim(Shape{a.numel()}, 0, false, op);
  Shape shape = along.r.result;
  if (!dim) {
    shape = Shape{};
    for (int d = 0; keepdim && d < a.ndim(); ++d) shape.push_back(1);
  }
  Tensor indices = Tensor::empty(shape, DType::Int64);
  dispatch_arithmetic(a.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    Tensor values = Tensor::empty(shape, a.dtype());
    select_along<Order>(along, a.data<T>(), values.data<T>(), indices.data<int64_t>());
  });
  return indices;
}

}  // namespace

Tensor max(const Tensor& a) { return extreme<Greatest>(a); }
Tensor min(const Tensor& a) { return extreme<Least>(a); }
ValuesIndices max(const Tensor& a, int64_t dim, bool keepdim) { return extreme_along<Greatest>(a, dim, keepdim); }
ValuesIndices min(const Tensor& a, int64_t dim, bool keepdim) { return extreme_along<Least>(a, dim, keepdim); }

Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme<Greatest>(a, dim, keepdim, "argmax");
}

Tensor argmin(const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme<Least>(a, dim, keepdim, "argmin");
}

// --- softmax, log_softmax ---

namespace {
struct SoftmaxBackward final : Node {
  SavedTensor result;
  Reduction r;  // along the softmax dim, keepdim
  bool log = false;
  const char* name() const override { return log ? "LogSoftmaxBackward0" : "SoftmaxBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& y = result.unpack(*this);
    Tensor out = Tensor::empty(r.input, dtype);
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      const T* g = grad.data<T>();
      const T* ys = y.data<T>();
      const loops::Input<T> grads{g, r.input};
      if (log) {  // d log_softmax(a)_j/da_k = [j == k] - softmax(a)_k: g - exp(y) * sum(g)
        const Tensor sums = sums_in_double(r, g);
        T* o = out.data<T>();
        kernels::exp(ys, o, out.numel());
        loops::map(o, r.input, [](T gv, T ev, double s) { return gv - ev * T(s); }, grads, loops::Input<T>{o, r.input},
                   loops::Input<double>{sums.data<double>(), r.kept});
      } else {  // d softmax(a)_j/da_k = y_j ([j == k] - y_k): y * (g - sum(g * y))
        const Tensor dots = fold_new<double>(r, 0.0, [g, ys](int64_t i, int64_t) { return double(g[i]) * double(ys[i]); },
                                             std::plus<double>());
        loops::map(out.data<T>(), r.input, [](T gv, T yv, double d) { return yv * (gv - T(d)); }, grads,
                   loops::Input<T>{ys, r.input},
                   loops::Input<double>{dots.data<double>(), r.kept});
      }
    });
    accumulate_grad(*next[0], std::move(out));
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(result); }
};

// softmax (or log_softmax) of one contiguous slice of n elements, with the operations and
// roundings of the whole-tensor passes below; after the first read of x, the slice's passes
// run in cache.
template <class T>
void softmax_slice(const T* x, T* y, int64_t n, bool log) {
  const T shift = reduce_row(n, Greatest::worst<T>(), [x](int64_t k) { return x[k]; }, Best<Greatest>());
  for (int64_t k = 0; k < n; ++k) y[k] = x[k] - shift;
  kernels::exp(y, y, n);
  const double sum = kernels::sum(y, n);
  if (log) {
    const T log_sum = T(std::log(sum));
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - shift) - log_sum;
  } else {
    const T inverse = T(1 / sum);
    for (int64_t k = 0; k < n; ++k) y[k] *= inverse;
  }
}

Tensor softmax_recorded(const Tensor& a, int64_t dim, std::optional<DType> dtype, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  const Tensor input = dtype ? to_dtype(a, *dtype) : a;
  const AlongDim along = along_dim(input.shape(), dim, /*keepdim=*/true, op);
  const Reduction& r = along.r;
  Tensor out = Tensor::empty(input.shape(), input.dtype());
  dispatch_floating(input.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* x = input.data<T>();
    T* y = out.data<T>();
    if (along.inner == 1 && along.size > 0) {  // slices along the dim are contiguous: one at a time
      const int64_t n = along.size;
      parallel_for(input.numel() / n, (kParallelGrain + n - 1) / n, [&](int64_t begin, int64_t end) {
        for (int64_t slice = begin; slice < end; ++slice) softmax_slice(x + slice * n, y + slice * n, n, log);
      });
      return;
    }
    // softmax(a) = softmax(a - max(a)), computed so: exp never overflows
    const Tensor shift = maxima(r, x);
    const T* s = shift.data<T>();
    shifted_exp(r.input, x, r.kept, s, y);  // exp(a - shift), into y until the result overwrites it
    Tensor sums = sums_in_double(r, y);
    if (log) {  // log_softmax(a) = (a - shift) - log(sum(exp(a - shift)))
      loops::update(sums.data<double>(), sums.shape(), [](double sum) { return std::log(sum); });
      loops::map(y, r.input, [](T v, T shift, double log_sum) { return (v - shift) - T(log_sum); },
                 loops::Input<T>{x, r.input}, loops::Input<T>{s, r.kept},
                 loops::Input<double>{sums.data<double>(), r.kept});
    } else {  // softmax(a) = exp(a - shift) * (1 / sum(exp(a - shift)))
      loops::update(sums.data<double>(), sums.shape(), [](double sum) { return 1 / sum; });
      loops::update(y, r.input, [](T e, double inverse) { return e * T(inverse); },
                    loops::Input<double>{sums.data<double>(), r.kept});
    }
  });
  if (auto* node = record<SoftmaxBackward>(out, {&a})) {
    node->result = SavedTensor(out, true);
    node->r = r;
    node->log = log;
  }
  return out;
}
}  // namespace

Tensor softmax(const Tensor& a, int64_t dim, std::optional<DType> dtype) { return softmax_recorded(a, dim, dtype, false); }

Tensor log_softmax(const Tensor& a, int64_t dim, std::optional<DType> dtype) {
  return softmax_recorded(a, dim, dtype, true);
}

}  // namespace tg
