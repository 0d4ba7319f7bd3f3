// Shape and dtype changes with their backward rules: views that share the buffer, copies
// that reorder dims (through the gather kernel of index.cpp), broadcast copies, cat and
// stack, conversions.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"
#include "tapegrad/ops/index.h"

namespace tg {
namespace {

// A tensor of `shape` (same numel) over a's buffer and version counter; not recorded.
Tensor alias(const Tensor& a, const Shape& shape) {
  return Tensor(std::make_shared<TensorImpl>(shape, a.dtype(), a.storage()));
}

std::string sizes_text(const std::vector<int64_t>& sizes) {
  std::string text = "[";
  for (size_t d = 0; d < sizes.size(); ++d) text += (d ? ", " : "") + std::to_string(sizes[d]);
  return text + "]";
}

}  // namespace

// --- views: a new shape over the same buffer ---

namespace {
// The backward rule of every view: the gradient is the output's gradient seen in the
// input's shape (no copy either).
struct ViewBackward final : Node {
  const char* name_ = "ViewBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override { accumulate_grad(*next[0], alias(grad, next[0]->shape)); }
};
}  // namespace

std::shared_ptr<Node> view_node(std::shared_ptr<Node> input, const Shape& shape, DType dtype, const char* name) {
  auto node = std::make_shared<ViewBackward>();
  node->name_ = name;
  node->next.push_back(std::move(input));
  node->shape = shape;
  node->dtype = dtype;
  return node;
}

void rederive_view_history(const std::shared_ptr<TensorImpl>& view) {
  const std::shared_ptr<TensorImpl>& base = view->view_base;
  view->history_version = base->history_version;
  if (base->requires_grad)
    set_history(view, view_node(gradient_edge(Tensor(base)), view->shape, view->dtype, "ViewBackward0"));
}

namespace {

Tensor view_with_shape(const Tensor& a, const Shape& shape, const char* node_name) {
  Tensor out = alias(a, shape);
  TensorImpl* impl = out.impl();
  impl->view_base = a.impl()->view_base ? a.impl()->view_base : a.impl_ptr();
  impl->history_version = impl->view_base->history_version;
  if (auto* node = record<ViewBackward>(out, {&a})) node->name_ = node_name;
  return out;
}

// The shape `sizes` asks for, with a -1 inferred from a's numel.
Shape inferred_shape(const Tensor& a, const std::vector<int64_t>& sizes, const char* op) {
  const auto invalid = [&] {
    return detail::concat(op, ": shape '", sizes_text(sizes), "' is invalid for input of size ", a.numel());
  };
  int64_t known = 1;
  int inferred = -1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == -1) {
      TG_CHECK(inferred < 0, op, ": only one dimension can be inferred, got ", sizes_text(sizes));
      inferred = static_cast<int>(d);
      continue;
    }
    TG_CHECK(sizes[d] >= 0, op, ": invalid shape dimension ", sizes[d], " in ", sizes_text(sizes));
    TG_CHECK(sizes[d] == 0 || known <= a.numel() || known <= std::numeric_limits<int64_t>::max() / sizes[d],
             invalid());  // no overflow on the way to a product that cannot match anyway
    known *= sizes[d];
  }
  Shape shape;
  for (size_t d = 0; d < sizes.size(); ++d) {
    const bool infer = static_cast<int>(d) == inferred;
    TG_CHECK(!infer || known != 0 || a.numel() != 0, op, ": cannot reshape tensor of 0 elements into shape ",
             sizes_text(sizes), " because the unspecified dimension size -1 can be any value and is ambiguous");
    TG_CHECK(!infer || (known != 0 && a.numel() % known == 0), invalid());
    shape.push_back(infer ? a.numel() / known : sizes[d]);
  }
  TG_CHECK(shape.numel() == a.numel(), invalid());
  return shape;
}

}  // namespace

Tensor reshape(const Tensor& a, const std::vector<int64_t>& sizes) {
  return view_with_shape(a, inferred_shape(a, sizes, "reshape"), "ViewBackward0");
}

Tensor view(const Tensor& a, const std::vector<int64_t>& sizes) {
  return view_with_shape(a, inferred_shape(a, sizes, "view"), "ViewBackward0");
}

Tensor flatten(const Tensor& a, int64_t start_dim, int64_t end_dim) {
  const int start = wrap_dim(start_dim, a.ndim(), "flatten"), end = wrap_dim(end_dim, a.ndim(), "flatten");
  if (a.ndim() == 0) return view_with_shape(a, Shape{1}, "ViewBackward0");
  TG_CHECK(start <= end, "flatten() has invalid args: start_dim cannot come after end_dim (start_dim=", start_dim,
           ", end_dim=", end_dim, " for a tensor of shape ", a.shape().str(), ")");
  if (start == end) return a;
  Shape shape;
  int64_t merged = 1;
  for (int d = 0; d < a.ndim(); ++d) {
    if (d < start || d > end) shape.push_back(a.shape()[d]);
    if (d >= start && d <= end) merged *= a.shape()[d];
    if (d == end) shape.push_back(merged);
  }
  return view_with_shape(a, shape, "ViewBackward0");
}

Tensor squeeze(const Tensor& a) {
  Shape shape;
  for (int64_t size : a.shape())
    if (size != 1) shape.push_back(size);
  return view_with_shape(a, shape, "SqueezeBackward0");
}

Tensor squeeze(const Tensor& a, int64_t dim) {
  const int d = wrap_dim(dim, a.ndim(), "squeeze");
  Shape shape;
  for (int k = 0; k < a.ndim(); ++k)
    if (k != d || a.shape()[k] != 1) shape.push_back(a.shape()[k]);
  return view_with_shape(a, shape, "SqueezeBackward1");
}

Tensor squeeze(const Tensor& a, const std::vector<int64_t>& dims) {
  bool listed[Shape::kMaxDims] = {};
  for (int64_t dim : dims) {
    const int d = wrap_dim(dim, a.ndim(), "squeeze");
    TG_CHECK(!listed[d], "squeeze: dim ", d, " appears multiple times in the list of dims");
    listed[d] = true;
  }
  Shape shape;
  for (int k = 0; k < a.ndim(); ++k)
    if (!listed[k] || a.shape()[k] != 1) shape.push_back(a.shape()[k]);
  return view_with_shape(a, shape, "SqueezeBackward2");
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  const int d = wrap_dim(dim, a.ndim() + 1, "unsqueeze");
  Shape shape;
  for (int k = 0; k < a.ndim(); ++k) {
    if (k == d) shape.push_back(1);
    shape.push_back(a.shape()[k]);
  }
  if (d == a.ndim()) shape.push_back(1);
  return view_with_shape(a, shape, "UnsqueezeBackward0");
}

// --- permute, transpose: one strided gather ---

namespace {
struct PermuteBackward final : Node {
  std::vector<int64_t> dims;  // the forward's order: result dim i was input dim dims[i]
  const char* name_ = "PermuteBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {  // the gradient goes back through the inverse permutation
    std::vector<int64_t> inverse(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inverse[dims[i]] = static_cast<int64_t>(i);
    accumulate_grad(*next[0], permute(grad, inverse));
  }
};

Tensor permute_recorded(const Tensor& a, const std::vector<int64_t>& dims, const char* op, const char* node_name) {
  TG_CHECK(dims.size() == static_cast<size_t>(a.ndim()), op, "(): the number of dims given (", dims.size(),
           ") must equal the number of dims of the tensor (", a.ndim(), "): got ", sizes_text(dims),
           " for a tensor of shape ", a.shape().str());
  std::vector<int64_t> order(dims.size());
  bool seen[Shape::kMaxDims] = {};
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = wrap_dim(dims[i], a.ndim(), op);
    TG_CHECK(!seen[d], op, "(): duplicate dims are not allowed, got ", sizes_text(dims));
    seen[d] = true;
    order[i] = d;
  }
  detail::GatherMap map;
  const std::array<int64_t, Shape::kMaxDims> contiguous = detail::contiguous_strides(a.shape());
  for (size_t i = 0; i < order.size(); ++i) {
    map.shape.push_back(a.shape()[order[i]]);
    map.strides[i] = contiguous[order[i]];
  }
  Tensor out = detail::gather(a, map);
  if (auto* node = record<PermuteBackward>(out, {&a})) {
    node->dims = std::move(order);
    node->name_ = node_name;
  }
  return out;
}

std::vector<int64_t> swapped(int ndim, int d0, int d1) {
  std::vector<int64_t> dims(ndim);
  for (int d = 0; d < ndim; ++d) dims[d] = d;
  if (ndim > 0) std::swap(dims[d0], dims[d1]);
  return dims;
}

}  // namespace

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  return permute_recorded(a, dims, "permute", "PermuteBackward0");
}

Tensor transpose(const Tensor& a, int64_t dim0, int64_t dim1) {
  const int d0 = wrap_dim(dim0, a.ndim(), "transpose"), d1 = wrap_dim(dim1, a.ndim(), "transpose");
  return permute_recorded(a, swapped(a.ndim(), d0, d1), "transpose", "TransposeBackward0");
}

Tensor t(const Tensor& a) {
  TG_CHECK(a.ndim() <= 2, "t() expects a tensor with <= 2 dimensions, but self is ", a.ndim(), "D");
  return permute_recorded(a, swapped(a.ndim(), 0, a.ndim() - 1 > 0 ? 1 : 0), "t", "TBackward0");
}

// --- expand ---

namespace {
struct ExpandBackward final : Node {
  const char* name() const override { return "ExpandBackward0"; }
  void apply(Tensor grad) override {  // each input element fed every copy of it: their gradients sum
    accumulate_grad(*next[0], sum_to_shape(grad, next[0]->shape));
  }
};
}  // namespace

Tensor expand(const Tensor& a, const std::vector<int64_t>& sizes) {
  const int count = static_cast<int>(sizes.size());
  TG_CHECK(count >= a.ndim(), "expand: the number of sizes provided (", count,
           ") must be greater or equal to the number of dimensions in the tensor (", a.ndim(), "): sizes ",
           sizes_text(sizes), ", tensor shape ", a.shape().str());
  Shape shape;
  for (int d = 0; d < count; ++d) {
    const int da = d - (count - a.ndim());
    if (da < 0) {
      TG_CHECK(sizes[d] >= 0, "expand: the expanded size of the tensor (", sizes[d],
               ") isn't allowed in a leading, non-existing dimension ", d);
      shape.push_back(sizes[d]);
      continue;
    }
    const int64_t existing = a.shape()[da];
    const int64_t size = sizes[d] == -1 ? existing : sizes[d];
    TG_CHECK(size == existing || (existing == 1 && size >= 0), "expand: the expanded size of the tensor (", size,
             ") must match the existing size (", existing, ") at non-singleton dimension ", d, ".  Target sizes: ",
             sizes_text(sizes), ".  Tensor sizes: ", a.shape().str());
    shape.push_back(size);
  }
  Tensor out = expand_copy(a, shape);
  record<ExpandBackward>(out, {&a});
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

// --- cat, stack ---

namespace {

// torch still accepts 1-D empty tensors in cat whatever the other shapes are, and skips them.
bool skipped_in_cat(const Tensor& t) { return t.ndim() == 1 && t.numel() == 0; }

// Copies `inputs` one after the other along `dim` of `out` (every other dim matches; skipped
// inputs are left out): for each index of the dims before `dim`, one block of each input.
void concatenate_into(Tensor& out, const std::vector<Tensor>& inputs, int dim) {
  int64_t outer = 1, inner = itemsize(out.dtype());  // inner counts bytes
  for (int d = 0; d < dim; ++d) outer *= out.shape()[d];
  for (int d = dim + 1; d < out.ndim(); ++d) inner *= out.shape()[d];
  const int64_t out_block = out.shape()[dim] * inner;
  auto* out_bytes = static_cast<char*>(out.raw_data());
  int64_t start = 0;
  for (const Tensor& input : inputs) {
    if (skipped_in_cat(input) && out.ndim() != 1) continue;
    const Tensor converted = to_dtype(input, out.dtype());
    const int64_t block = input.shape()[dim] * inner;
    const auto* in_bytes = static_cast<const char*>(converted.raw_data());
    for (int64_t o = 0; o < outer; ++o) std::memcpy(out_bytes + o * out_block + start, in_bytes + o * block, block);
    start += block;
  }
}

DType promoted_dtype(const std::vector<Tensor>& tensors) {
  DType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype());
  return dtype;
}

struct CatBackward final : Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;  // each input's size along dim; -1 for a skipped empty input
  const char* name() const override { return "CatBackward0"; }
  void apply(Tensor grad) override {  // each input's gradient is its slice of the output's
    int64_t start = 0;
    for (size_t i = 0; i < next.size(); ++i) {
      const int64_t size = std::max<int64_t>(sizes[i], 0);
      if (next[i])
        accumulate_grad(*next[i], sizes[i] < 0 ? zeros(Shape{0}, grad.dtype()) : slice(grad, dim, start, start + size));
      start += size;
    }
  }
};
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  TG_CHECK_AS(ValueError, !tensors.empty(), "cat(): expected a non-empty list of Tensors");
  const Tensor* reference = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TG_CHECK(tensors[i].ndim() > 0, "cat(): zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    if (!reference && !skipped_in_cat(tensors[i])) reference = &tensors[i];
  }
  if (!reference) reference = &tensors[0];  // all 1-D and empty
  const int d = wrap_dim(dim, reference->ndim(), "cat");
  Shape shape = reference->shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_in_cat(t) && reference->ndim() != 1) continue;
    TG_CHECK(t.ndim() == reference->ndim(), "cat(): tensors must have same number of dimensions: got ",
             reference->ndim(), " and ", t.ndim(), " (shapes ", reference->shape().str(), " and ", t.shape().str(),
             " for tensor number ", i, " in the list)");
    for (int k = 0; k < t.ndim(); ++k)
      TG_CHECK(k == d || t.shape()[k] == reference->shape()[k],
               "cat(): sizes of tensors must match except in dimension ", d, ". Expected size ", reference->shape()[k],
               " but got size ", t.shape()[k], " for tensor number ", i, " in the list (shapes ",
               reference->shape().str(), " and ", t.shape().str(), ")");
    shape[d] += t.shape()[d];
  }
  Tensor out = Tensor::empty(shape, promoted_dtype(tensors));
  concatenate_into(out, tensors, d);
  if (auto* node = record<CatBackward>(out, tensors)) {
    node->dim = d;
    for (const Tensor& t : tensors) node->sizes.push_back(skipped_in_cat(t) && shape.ndim() != 1 ? -1 : t.shape()[d]);
  }
  return out;
}

namespace {
struct StackBackward final : Node {
  int64_t dim = 0;
  const char* name() const override { return "StackBackward0"; }
  void apply(Tensor grad) override {  // each input's gradient is its entry of the output's (unbind)
    for (size_t i = 0; i < next.size(); ++i)
      if (next[i]) accumulate_grad(*next[i], select(grad, dim, static_cast<int64_t>(i)));
  }
};
}  // namespace

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  TG_CHECK(!tensors.empty(), "stack(): expects a non-empty list of Tensors");
  const Shape& shape = tensors[0].shape();
  for (size_t i = 1; i < tensors.size(); ++i)
    TG_CHECK(tensors[i].shape() == shape, "stack(): expects each tensor to be equal size, but got ", shape.str(),
             " at entry 0 and ", tensors[i].shape().str(), " at entry ", i);
  const int d = wrap_dim(dim, shape.ndim() + 1, "stack");
  Shape entry;  // each input seen with a size-1 dim at d
  for (int k = 0; k <= shape.ndim(); ++k) {
    if (k == d) entry.push_back(1);
    if (k < shape.ndim()) entry.push_back(shape[k]);
  }
  std::vector<Tensor> entries;
  for (const Tensor& t : tensors) entries.push_back(alias(t, entry));
  Shape out_shape = entry;
  out_shape[d] = static_cast<int64_t>(tensors.size());
  Tensor out = Tensor::empty(out_shape, promoted_dtype(tensors));
  concatenate_into(out, entries, d);
  if (auto* node = record<StackBackward>(out, tensors)) node->dim = d;
  return out;
}

// --- conversions ---

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
