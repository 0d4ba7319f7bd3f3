// Indexing: the gather and scatter-add kernels over a GatherMap (also used by permute),
// t[...] turned into one GatherMap, and its backward rule: scatter-add through the same map.
#include <algorithm>
#include <string>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"
#include "tapegrad/ops/index.h"

namespace tg {

IndexSpec IndexSpec::select(int64_t index) {
  IndexSpec spec;
  spec.kind = Kind::Select;
  spec.index = index;
  return spec;
}

IndexSpec IndexSpec::slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  IndexSpec spec;
  spec.kind = Kind::Slice;
  spec.start = start;
  spec.stop = stop;
  spec.step = step;
  return spec;
}

IndexSpec IndexSpec::new_axis() {
  IndexSpec spec;
  spec.kind = Kind::NewAxis;
  return spec;
}

IndexSpec IndexSpec::ellipsis() {
  IndexSpec spec;
  spec.kind = Kind::Ellipsis;
  return spec;
}

IndexSpec IndexSpec::tensor(Tensor indices) {
  IndexSpec spec;
  spec.kind = Kind::Tensor;
  spec.indices = std::move(indices);
  return spec;
}

// --- the kernels ---

namespace detail {

std::array<int64_t, Shape::kMaxDims> contiguous_strides(const Shape& shape) {
  std::array<int64_t, Shape::kMaxDims> strides{};
  int64_t stride = 1;
  for (int d = shape.ndim() - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

Tensor gather(const Tensor& source, const GatherMap& map) {
  Tensor out = Tensor::empty(map.shape, source.dtype());
  dispatch_all(source.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = source.data<T>();
    T* result = out.data<T>();
    loops::for_each_gather_row(map, [&](int64_t source_offset, int64_t result_offset, int64_t n, int64_t step,
                                        const int64_t* table) {
      const T* from = in + source_offset;
      T* to = result + result_offset;
      if (table)
        for (int64_t j = 0; j < n; ++j) to[j] = from[table[j]];
      else if (step == 1)
        std::copy(from, from + n, to);
      else
        for (int64_t j = 0; j < n; ++j) to[j] = from[j * step];
    });
  });
  return out;
}

Tensor scatter_add(const Tensor& values, const GatherMap& map, const Shape& source_shape) {
  TG_ASSERT(values.shape() == map.shape);
  Tensor out = zeros(source_shape, values.dtype());
  dispatch_arithmetic(values.dtype(), "scatter_add", [&](auto zero) {
    using T = decltype(zero);
    const T* in = values.data<T>();
    T* result = out.data<T>();
    loops::for_each_gather_row(map, [&](int64_t source_offset, int64_t values_offset, int64_t n, int64_t step,
                                        const int64_t* table) {
      const T* from = in + values_offset;
      T* to = result + source_offset;
      if (table)  // sequential, so a repeated offset accumulates
        for (int64_t j = 0; j < n; ++j) to[table[j]] += from[j];
      else if (step == 1)
        for (int64_t j = 0; j < n; ++j) to[j] += from[j];
      else
        for (int64_t j = 0; j < n; ++j) to[j * step] += from[j];
    });
  });
  return out;
}

}  // namespace detail

// --- t[...] ---

namespace {
struct IndexBackward final : Node {
  detail::GatherMap map;  // without its table, which is saved apart
  SavedTensor table;      // the offsets of the index tensors' picks, when there are some
  bool has_table = false;
  const char* name_ = "IndexBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {  // d a[map] / d a: each gradient goes back where its element came from
    detail::GatherMap full = map;
    if (has_table) full.table = table.unpack(*this);
    accumulate_grad(*next[0], detail::scatter_add(grad, full, next[0]->shape));
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(table); }
};

constexpr const char* kZeroDimIndex =
    "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ to convert a "
    "0-dim tensor to a number";

// A result dim before the index tensors are placed: a stride into the source, or the slot
// of an index tensor (`indexed` >= 0, its position in the list of index tensors).
struct ResultDim {
  int64_t size, stride;
  int indexed;
};

// An index tensor (int64) and the source dim it picks along.
struct IndexTensor {
  Tensor indices;
  int dim;  // -1 for the size-1 dim a 0-d bool index adds
  int64_t size, stride;
};

bool is_zero_dim_int(const IndexSpec& spec) {
  return spec.kind == IndexSpec::Kind::Tensor && spec.indices.ndim() == 0 && spec.indices.dtype() == DType::Int64;
}

// The number of source dims an entry consumes.
int consumed_dims(const IndexSpec& spec) {
  switch (spec.kind) {
    case IndexSpec::Kind::Select:
    case IndexSpec::Kind::Slice: return 1;
    case IndexSpec::Kind::Tensor: return spec.indices.dtype() == DType::Bool ? spec.indices.ndim() : 1;
    default: return 0;
  }
}

int64_t select_offset(int64_t index, int dim, int64_t size, int64_t stride) {
  TG_CHECK_AS(IndexError, index >= -size && index < size, "index ", index, " is out of bounds for dimension ", dim,
              " with size ", size);
  return (index < 0 ? index + size : index) * stride;
}

// The positions of a bool mask's true elements, one int64 tensor of them per mask dim.
std::vector<Tensor> nonzero_positions(const Tensor& mask) {
  const bool* data = mask.data<bool>();
  const int64_t count = std::count(data, data + mask.numel(), true);
  std::vector<Tensor> positions;
  std::vector<int64_t*> out;
  for (int d = 0; d < mask.ndim(); ++d) {
    positions.push_back(Tensor::empty(Shape{count}, DType::Int64));
    out.push_back(positions.back().data<int64_t>());
  }
  int64_t found = 0;
  for (int64_t i = 0; i < mask.numel(); ++i) {
    if (!data[i]) continue;
    for (int64_t rest = i, d = mask.ndim() - 1; d >= 0; --d) {
      out[d][found] = rest % mask.shape()[d];
      rest /= mask.shape()[d];
    }
    ++found;
  }
  return positions;
}

// The int64 tensor of source offsets that the index tensors pick, broadcast together.
// When the result has no elements (another dim is empty), nothing is picked and, as in
// torch, the indices are checked only against dims of size 0: the table stays zero.
Tensor offset_table(const std::vector<IndexTensor>& index_tensors, bool result_is_empty) {
  Shape shape = index_tensors[0].indices.shape();
  bool broadcastable = true;
  for (const IndexTensor& it : index_tensors) {
    const Shape& s = it.indices.shape();
    for (int k = 1; k <= std::min(shape.ndim(), s.ndim()); ++k) {
      const int64_t x = shape[shape.ndim() - k], y = s[s.ndim() - k];
      broadcastable = broadcastable && (x == y || x == 1 || y == 1);
    }
    if (broadcastable) shape = broadcast_shapes(shape, s, "index");
  }
  if (!broadcastable) {
    std::string shapes;
    for (const IndexTensor& it : index_tensors) shapes += (shapes.empty() ? "" : ", ") + it.indices.shape().str();
    throw IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes " + shapes);
  }
  Tensor table = zeros(shape, DType::Int64);
  if (result_is_empty) {
    for (const IndexTensor& it : index_tensors)
      if (it.size == 0 && table.numel() > 0) select_offset(*it.indices.data<int64_t>(), it.dim, 0, 0);
    return table;
  }
  for (const IndexTensor& it : index_tensors) {
    loops::update(
        table.data<int64_t>(), shape,
        [&](int64_t offset, int64_t index) { return offset + select_offset(index, it.dim, it.size, it.stride); },
        loops::Input<int64_t>{it.indices.data<int64_t>(), it.indices.shape()});
  }
  return table;
}

// An index expression read left to right: the result's dims before the index tensors are
// placed, the index tensors, where the first element lies, and torch's name for the last step.
struct IndexWalk {
  std::vector<ResultDim> dims;
  std::vector<IndexTensor> index_tensors;
  int64_t offset = 0;
  const char* last_step = "AliasBackward0";
};

IndexWalk walk(const Tensor& a, const std::vector<IndexSpec>& specs) {
  int consumed = 0;
  bool has_ellipsis = false, has_select = false;
  for (const IndexSpec& spec : specs) {
    consumed += consumed_dims(spec);
    has_select = has_select || spec.kind == IndexSpec::Kind::Select || is_zero_dim_int(spec);
    if (spec.kind == IndexSpec::Kind::Ellipsis) {
      TG_CHECK_AS(IndexError, !has_ellipsis, "an index can only have a single ellipsis ('...')");
      has_ellipsis = true;
    }
    if (spec.kind == IndexSpec::Kind::Tensor)
      TG_CHECK_AS(IndexError, spec.indices.dtype() == DType::Int64 || spec.indices.dtype() == DType::Bool,
                  "tensors used as indices must be long, int, byte or bool tensors, got ",
                  dtype_name(spec.indices.dtype()));
  }
  TG_CHECK_AS(IndexError, a.ndim() > 0 || !has_select, kZeroDimIndex);
  TG_CHECK_AS(IndexError, consumed <= a.ndim(), "too many indices for tensor of dimension ", a.ndim(), " (got ",
              consumed, " for shape ", a.shape().str(), ")");

  const std::array<int64_t, Shape::kMaxDims> strides = detail::contiguous_strides(a.shape());
  IndexWalk walk;
  int d = 0;  // the next source dim
  const auto keep = [&](int source_dim) { walk.dims.push_back({a.shape()[source_dim], strides[source_dim], -1}); };
  const auto add_index_tensor = [&](Tensor indices, int source_dim, int64_t size, int64_t stride) {
    walk.dims.push_back({0, 0, static_cast<int>(walk.index_tensors.size())});
    walk.index_tensors.push_back({std::move(indices), source_dim, size, stride});
  };
  const auto select = [&](int64_t index) {
    walk.offset += select_offset(index, d, a.shape()[d], strides[d]);
    ++d;
    walk.last_step = "SelectBackward0";
  };
  for (const IndexSpec& spec : specs) {
    switch (spec.kind) {
      case IndexSpec::Kind::Select:
        select(spec.index);
        break;
      case IndexSpec::Kind::Slice: {
        TG_CHECK_AS(ValueError, spec.step != 0, "slice step cannot be zero");
        TG_CHECK_AS(ValueError, spec.step > 0, "step must be greater than zero, got ", spec.step);
        const int64_t size = a.shape()[d];
        const auto clamp = [size](int64_t position) {
          if (position < 0) position += size;
          return std::min(std::max<int64_t>(position, 0), size);
        };
        const int64_t start = clamp(spec.start.value_or(0)), stop = clamp(spec.stop.value_or(size));
        const int64_t length = stop > start ? (stop - start - 1) / spec.step + 1 : 0;
        walk.dims.push_back({length, strides[d] * spec.step, -1});
        walk.offset += start * strides[d];
        // torch takes no step for a slice whose bounds, as given, are 0 and at least the size.
        const bool full = spec.step == 1 && spec.start.value_or(0) == 0 && (!spec.stop || *spec.stop >= size);
        if (!full) walk.last_step = "SliceBackward0";
        ++d;
        break;
      }
      case IndexSpec::Kind::NewAxis:
        walk.dims.push_back({1, 0, -1});
        walk.last_step = "UnsqueezeBackward0";
        break;
      case IndexSpec::Kind::Ellipsis:
        for (int k = 0; k < a.ndim() - consumed; ++k) keep(d++);
        break;
      case IndexSpec::Kind::Tensor: {
        const Tensor& indices = spec.indices;
        if (is_zero_dim_int(spec)) {  // a 0-d int64 tensor is an int
          select(*indices.data<int64_t>());
        } else if (indices.dtype() == DType::Int64) {
          add_index_tensor(indices, d, a.shape()[d], strides[d]);
          ++d;
        } else if (indices.ndim() == 0) {  // True adds a size-1 dim and picks it; False picks nothing
          add_index_tensor(zeros(Shape{*indices.data<bool>() ? 1 : 0}, DType::Int64), -1, 1, 0);
        } else {  // a mask: the positions of its true elements, one index tensor per dim it covers
          for (int k = 0; k < indices.ndim(); ++k)
            TG_CHECK_AS(IndexError, indices.shape()[k] == a.shape()[d + k], "The shape of the mask ",
                        indices.shape().str(), " at index ", k, " does not match the shape of the indexed tensor ",
                        a.shape().str(), " at index ", d + k);
          for (Tensor& positions : nonzero_positions(indices)) {
            add_index_tensor(std::move(positions), d, a.shape()[d], strides[d]);
            ++d;
          }
        }
        break;
      }
    }
  }
  while (d < a.ndim()) keep(d++);
  return walk;
}

// Where the walk's elements lie: its plain dims, with the index tensors' broadcast dims
// where the indexed dims were if those are adjacent, and first otherwise (torch's rule).
detail::GatherMap gather_map(const IndexWalk& walk) {
  detail::GatherMap map;
  map.offset = walk.offset;
  const auto add_plain = [&](const ResultDim& dim) {
    map.shape.push_back(dim.size);
    map.strides[map.shape.ndim() - 1] = dim.stride;
  };
  if (walk.index_tensors.empty()) {
    for (const ResultDim& dim : walk.dims) add_plain(dim);
    return map;
  }
  int first = -1, last = -1;
  int64_t plain_numel = 1;
  for (int k = 0; k < static_cast<int>(walk.dims.size()); ++k) {
    if (walk.dims[k].indexed < 0) {
      plain_numel *= walk.dims[k].size;
      continue;
    }
    if (first < 0) first = k;
    last = k;
  }
  const bool adjacent = last - first + 1 == static_cast<int>(walk.index_tensors.size());
  map.table = offset_table(walk.index_tensors, plain_numel == 0);
  map.table_begin = 0;  // the number of plain dims before the table's
  for (int k = 0; k < (adjacent ? first : 0); ++k) map.table_begin += walk.dims[k].indexed < 0;
  const auto add_table = [&] {
    for (int64_t size : map.table.shape()) map.shape.push_back(size);
  };
  int plain = 0;
  for (const ResultDim& dim : walk.dims) {
    if (dim.indexed >= 0) continue;
    if (plain++ == map.table_begin) add_table();
    add_plain(dim);
  }
  if (plain == map.table_begin) add_table();
  return map;
}

// `a[specs]`; `node_name` overrides the name torch gives the last step when not null.
Tensor index_recorded(const Tensor& a, const std::vector<IndexSpec>& specs, const char* node_name) {
  const IndexWalk steps = walk(a, specs);
  detail::GatherMap map = gather_map(steps);
  Tensor out = detail::gather(a, map);
  if (auto* node = record<IndexBackward>(out, {&a})) {
    node->name_ = node_name ? node_name : map.table.defined() ? "IndexBackward0" : steps.last_step;
    node->has_table = map.table.defined();
    if (node->has_table) node->table = SavedTensor(map.table, false);
    map.table = Tensor();
    node->map = std::move(map);
  }
  return out;
}

// `dim` full slices, then `spec`: the entry applied along `dim`.
std::vector<IndexSpec> along(int dim, IndexSpec spec) {
  std::vector<IndexSpec> specs(dim, IndexSpec::slice());
  specs.push_back(std::move(spec));
  return specs;
}

}  // namespace

Tensor index(const Tensor& a, const std::vector<IndexSpec>& indices) { return index_recorded(a, indices, nullptr); }

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  TG_CHECK_AS(IndexError, a.ndim() > 0, "select(): cannot be applied to a 0-dim tensor");
  return index_recorded(a, along(wrap_dim(dim, a.ndim(), "select"), IndexSpec::select(index)), "SelectBackward0");
}

Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  TG_CHECK_AS(IndexError, a.ndim() > 0, "slice(): cannot be applied to a 0-dim tensor");
  return index_recorded(a, along(wrap_dim(dim, a.ndim(), "slice"), IndexSpec::slice(start, stop, step)),
                        "SliceBackward0");
}

}  // namespace tg
