// Linear algebra: dot, matrix products through BLAS (batched, with broadcast batch dims)
// and outer, with their backward rules.
#include <algorithm>
#include <climits>

#include "blas.h"
#include "loops.h"
#include "rules.h"

namespace tg {
namespace {

// A view of `a` with another shape, outside any graph: the products' internal 2-D forms.
Tensor view_as_shape(const Tensor& a, const Shape& shape) {
  return Tensor(std::make_shared<TensorImpl>(shape, a.dtype(), a.storage()));
}

Shape batch_dims(const Shape& shape) { return Shape(shape.begin(), shape.end() - 2); }

// The shape of op(a) @ op(b) for operands of at least 2 dims, batch dims broadcast as
// numpy's matmul does.
Shape product_shape(const Shape& sa, bool trans_a, const Shape& sb, bool trans_b) {
  Shape shape = broadcast_shapes(batch_dims(sa), batch_dims(sb), "matmul");
  shape.push_back(trans_a ? sa[sa.ndim() - 1] : sa[sa.ndim() - 2]);
  shape.push_back(trans_b ? sb[sb.ndim() - 2] : sb[sb.ndim() - 1]);
  return shape;
}

// out[i] = op(a[i]) @ op(b[i]) (or out[i] += ..., with `accumulate`) over the batch dims;
// a, b and out have one floating dtype and out has product_shape(a, b).
void batched_matmul_into(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& out, bool accumulate) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const Shape& so = out.shape();
  const int64_t m = so[so.ndim() - 2], n = so[so.ndim() - 1];
  const int64_t k = trans_a ? sa[sa.ndim() - 2] : sa[sa.ndim() - 1];
  TG_CHECK(std::max({m, n, k}) < INT_MAX, "matmul: matrix dims of ", sa.str(), " and ", sb.str(),
           " exceed what BLAS can index");
  if (out.numel() == 0) return;
  if (k == 0) {
    if (!accumulate) fill_(out, 0.0);
    return;
  }
  const Shape batch = batch_dims(so), batch_a = batch_dims(sa), batch_b = batch_dims(sb);
  dispatch_floating(a.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    const T* a_data = a.data<T>();
    const T* b_data = b.data<T>();
    T* out_data = out.data<T>();
    loops::for_each_row<3>(batch, {&batch, &batch_a, &batch_b},
                           [&](const std::array<int64_t, 3>& offsets, int64_t count, const std::array<int64_t, 3>& steps) {
                             for (int64_t i = 0; i < count; ++i)
                               blas::gemm(trans_a, trans_b, int(m), int(n), int(k),
                                          a_data + (offsets[1] + i * steps[1]) * m * k,
                                          b_data + (offsets[2] + i * steps[2]) * k * n,
                                          out_data + (offsets[0] + i * steps[0]) * m * n, accumulate);
                           });
  });
}

Tensor batched_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  Tensor out = Tensor::empty(product_shape(a.shape(), trans_a, b.shape(), trans_b), a.dtype());
  batched_matmul_into(a, trans_a, b, trans_b, out, false);
  return out;
}

// Adds op(a) @ op(b) into the gradient of `input`, whose matrix form has `matrix_shape`.
// When the input already has a gradient buffer and no batch dims need summing, one GEMM
// adds into it (beta = 1): no temporary, no second pass. Otherwise through accumulate_grad.
void accumulate_product(Node& input, const Shape& matrix_shape, const Tensor& a, bool trans_a, const Tensor& b,
                        bool trans_b) {
  const Shape shape = product_shape(a.shape(), trans_a, b.shape(), trans_b);
  if (input.grad.defined() && shape == matrix_shape && input.dtype == a.dtype()) {
    Tensor buffer = view_as_shape(input.grad, shape);
    batched_matmul_into(a, trans_a, b, trans_b, buffer, true);
    return;
  }
  Tensor product = batched_matmul(a, trans_a, b, trans_b);
  if (shape != matrix_shape) product = sum_to_shape(product, matrix_shape);  // broadcast batch dims
  accumulate_grad(input, view_as_shape(product, input.shape));
}

// The matrix form of a matmul operand: a vector becomes a row (left) or a column (right).
Shape as_matrix(const Shape& shape, bool left) {
  if (shape.ndim() != 1) return shape;
  return left ? Shape{1, shape[0]} : Shape{shape[0], 1};
}

struct MatmulBackward final : Node {
  SavedTensor a, b;
  const char* name_ = "MmBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    const Tensor& left = a.unpack(*this);
    const Tensor& right = b.unpack(*this);
    const Tensor left_matrix = view_as_shape(left, as_matrix(left.shape(), true));
    const Tensor right_matrix = view_as_shape(right, as_matrix(right.shape(), false));
    const Shape grad_shape = product_shape(left_matrix.shape(), false, right_matrix.shape(), false);
    const Tensor grad_matrix = view_as_shape(to_dtype(grad, left.dtype()), grad_shape);
    if (next[0]) accumulate_product(*next[0], left_matrix.shape(), grad_matrix, false, right_matrix, true);  // dA = G B^T
    if (next[1]) accumulate_product(*next[1], right_matrix.shape(), left_matrix, true, grad_matrix, false);  // dB = A^T G
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(a);
    visit(b);
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.ndim() >= 1 && b.ndim() >= 1, "matmul: both arguments need at least 1 dimension, but got ",
           a.ndim(), "D and ", b.ndim(), "D");
  if (a.ndim() == 1 && b.ndim() == 1) return dot(a, b);
  TG_CHECK(a.dtype() == b.dtype(), "matmul: expected both arguments to have the same dtype, but got ",
           dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  dispatch_floating(a.dtype(), "matmul", [](auto) {});
  const Tensor left = view_as_shape(a, as_matrix(a.shape(), true));
  const Tensor right = view_as_shape(b, as_matrix(b.shape(), false));
  const int64_t inner_a = left.shape()[left.ndim() - 1], inner_b = right.shape()[right.ndim() - 2];
  TG_CHECK(inner_a == inner_b, "matmul: shapes ", a.shape().str(), " and ", b.shape().str(),
           " cannot be multiplied (", inner_a, " != ", inner_b, ")");
  Tensor product = batched_matmul(left, false, right, false);
  // Drop the dims that vectors gained.
  Shape out_shape = batch_dims(product.shape());
  if (a.ndim() > 1) out_shape.push_back(left.shape()[left.ndim() - 2]);
  if (b.ndim() > 1) out_shape.push_back(right.shape()[right.ndim() - 1]);
  Tensor out = view_as_shape(product, out_shape);
  if (auto* node = record<MatmulBackward>(out, {&a, &b})) {
    node->name_ = a.ndim() == 2 && b.ndim() == 2 ? "MmBackward0" : a.ndim() == 2 && b.ndim() == 1 ? "MvBackward0" : "BmmBackward0";
    node->a = SavedTensor(a, false);  // both: each gradient's shape comes from both operands
    node->b = SavedTensor(b, false);
  }
  return out;
}

// x (..., in) as a matrix (M, in): leading dims flattened.
Tensor as_rows(const Tensor& x) {
  const Shape leading(x.shape().begin(), x.shape().end() - 1);
  return view_as_shape(x, Shape{leading.numel(), x.shape()[x.ndim() - 1]});
}

namespace {

// The weight as a matrix (out_features, in_features): a 1-D weight is one output's row.
Tensor weight_matrix(const Tensor& weight) {
  return weight.ndim() == 1 ? view_as_shape(weight, Shape{1, weight.shape()[0]}) : weight;
}

struct LinearBackward final : Node {
  // As torch's: the input only when the weight needs its gradient, the weight only when the
  // input does, so that a graph needing neither (only the bias's) saves nothing and can be
  // run again after a backward freed what graphs saved.
  SavedTensor x, weight;
  Shape rows_shape;  // the input as a matrix (rows, in_features)
  Shape x_shape, weight_shape;  // weight_shape as a matrix (out_features, in_features)
  Shape bias_broadcast;  // what the bias was added over: the output, or the product's matrix form
  const char* name() const override { return "AddmmBackward0"; }
  void apply(Tensor grad) override {
    const Tensor grad_rows = view_as_shape(grad, Shape{rows_shape[0], weight_shape[0]});
    if (next[0])  // d(x W^T)/dx = G W
      accumulate_grad(*next[0], view_as_shape(batched_matmul(grad_rows, false, weight_matrix(weight.unpack(*this)), false),
                                              x_shape));
    if (next[1])  // dW = G^T x
      accumulate_product(*next[1], weight_shape, grad_rows, true, view_as_shape(x.unpack(*this), rows_shape), false);
    if (next[2]) accumulate_grad(*next[2], view_as_shape(grad, bias_broadcast));  // db = G summed over broadcast dims
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(x);
    visit(weight);
  }
};

// torch computes linear one of two ways, which take different biases, and tapegrad follows
// the way torch takes for a contiguous input. With a 2-D input, or a bias that is 1-D or has
// exactly one dim of size other than 1, it is addmm over the input's rows: the bias must have
// the input's dtype and broadcast to the product's matrix form (rows, out_features). Any other
// bias is added in place to the product: it must broadcast to the output without growing it,
// and is cast to the output's dtype. addmm needs a 2-D weight, so a 1-D one takes only the latter.
bool bias_joins_addmm(const Tensor& x, const Tensor& bias) {
  if (x.ndim() == 2 || bias.ndim() == 1) return true;
  int sized_dims = 0;
  for (int64_t size : bias.shape()) sized_dims += size != 1;
  return sized_dims == 1;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TG_CHECK(x.ndim() >= 1 && (weight.ndim() == 1 || weight.ndim() == 2),
           "linear: expected an input of at least 1 dim and a weight of 1 or 2 dims, got shapes ", x.shape().str(),
           " and ", weight.shape().str());
  const Tensor matrix = weight_matrix(weight);
  const int64_t in_features = x.shape()[x.ndim() - 1], out_features = matrix.shape()[0];
  TG_CHECK(in_features == matrix.shape()[1], "linear: shapes ", x.shape().str(), " and ", weight.shape().str(),
           weight.ndim() == 2 ? "^T" : "", " cannot be multiplied (", in_features, " != ", matrix.shape()[1], ")");
  TG_CHECK(x.dtype() == weight.dtype(), "linear: expected input and weight of one dtype, got ", dtype_name(x.dtype()),
           " and ", dtype_name(weight.dtype()));
  const Tensor rows = as_rows(x);
  const Shape product_shape{rows.shape()[0], out_features};
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);  // a 1-D weight's one output drops out
  if (weight.ndim() == 2) out_shape.push_back(out_features);
  Shape bias_broadcast = out_shape;
  if (bias.defined()) {
    if (bias_joins_addmm(x, bias)) {
      TG_CHECK(weight.ndim() == 2, "linear: a bias of shape ", bias.shape().str(), " with an input of shape ",
               x.shape().str(), " is added through addmm, which needs a 2-D weight, got ", weight.shape().str(),
               "; with a 1-D weight, use a 0-d bias and an input that is not 2-D");
      TG_CHECK(bias.dtype() == x.dtype(), "linear: expected a bias of the input's dtype ", dtype_name(x.dtype()),
               ", got ", dtype_name(bias.dtype()), " (bias of shape ", bias.shape().str(), ", input of shape ",
               x.shape().str(), "); convert it with .to(tapegrad.", dtype_name(x.dtype()), ")");
      bias_broadcast = product_shape;
    }
    TG_CHECK(broadcast_shapes(bias_broadcast, bias.shape(), "linear") == bias_broadcast, "linear: bias of shape ",
             bias.shape().str(), " does not broadcast to ", bias_broadcast.str(),
             bias_broadcast == out_shape ? ", the output's shape" : ", the output's rows");
  }
  Tensor product = batched_matmul(rows, false, matrix, true);  // x W^T
  if (bias.defined()) {
    const Tensor addend = to_dtype(bias, product.dtype());
    dispatch_floating(product.dtype(), "linear", [&](auto zero) {
      using T = decltype(zero);
      loops::update(product.data<T>(), bias_broadcast, [](T y, T b) { return y + b; },
                    loops::Input<T>{addend.data<T>(), addend.shape()});
    });
  }
  Tensor out = view_as_shape(product, out_shape);
  if (auto* node = record<LinearBackward>(out, {&x, &weight, &bias})) {
    if (node->next[1]) node->x = SavedTensor(x, false);
    if (node->next[0]) node->weight = SavedTensor(weight, false);
    node->rows_shape = rows.shape();
    node->x_shape = x.shape();
    node->weight_shape = matrix.shape();
    node->bias_broadcast = bias_broadcast;
  }
  return out;
}

Tensor mm(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.ndim() == 2 && b.ndim() == 2, "mm: both arguments must be 2-D matrices, but got ", a.shape().str(),
           " and ", b.shape().str());
  TG_CHECK(a.shape()[1] == b.shape()[0], "mm: shapes ", a.shape().str(), " and ", b.shape().str(),
           " cannot be multiplied (", a.shape()[1], " != ", b.shape()[0], ")");
  return matmul(a, b);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.ndim() == 1 && b.ndim() == 1, "outer: 1D tensors expected, but got ", a.shape().str(), " and ",
           b.shape().str());
  return mul(reshape(a, {a.numel(), 1}), b);  // torch records outer as a broadcast product too
}

Tensor dot(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.ndim() == 1 && b.ndim() == 1, "dot: 1D tensors expected, but got ", a.ndim(), "D and ", b.ndim(),
           "D tensors of shapes ", a.shape().str(), " and ", b.shape().str());
  TG_CHECK(a.dtype() == b.dtype(), "dot: expected both vectors to have same dtype, but found ", dtype_name(a.dtype()),
           " and ", dtype_name(b.dtype()));
  TG_CHECK(a.numel() == b.numel(), "dot: inconsistent tensor size, expected tensor ", a.shape().str(),
           " and src ", b.shape().str(), " to have the same number of elements, but got ", a.numel(), " and ",
           b.numel(), " elements respectively");
  Tensor out = Tensor::empty(Shape{}, a.dtype());
  dispatch_arithmetic(a.dtype(), "dot", [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    const T* y = b.data<T>();
    T lanes[16] = {};  // independent partial sums, so the loop vectorises
    int64_t i = 0;
    const int64_t n = a.numel();
    for (; i + 16 <= n; i += 16)
      for (int k = 0; k < 16; ++k) lanes[k] += x[i + k] * y[i + k];
    for (; i < n; ++i) lanes[0] += x[i] * y[i];
    T total = 0;
    for (T lane : lanes) total += lane;
    *out.data<T>() = total;
  });
  record_product(out, a, b, "DotBackward0");  // d(a.b)/da = b, d(a.b)/db = a
  return out;
}

}  // namespace tg
