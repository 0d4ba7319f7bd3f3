// Indexing: t[...] as torch does it (ints, slices, new axes, an ellipsis, integer and bool
// index tensors), its primitives, and the gather / scatter-add pair that every copying
// shape op runs through.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

// One entry of an index expression t[e0, e1, ...]: what each Python form becomes.
struct IndexSpec {
  enum class Kind {
    Select,    // an int: picks one position and drops the dim
    Slice,     // start:stop:step, clamped as Python clamps; step > 0
    NewAxis,   // None: inserts a dim of size 1
    Ellipsis,  // ...: as many full slices as the other entries leave dims
    Tensor,    // int64 indices gather along a dim; a bool mask picks its true positions
  };

  static IndexSpec select(int64_t index);
  static IndexSpec slice(std::optional<int64_t> start = std::nullopt, std::optional<int64_t> stop = std::nullopt,
                         int64_t step = 1);
  static IndexSpec new_axis();
  static IndexSpec ellipsis();
  static IndexSpec tensor(Tensor indices);

  Kind kind = Kind::Ellipsis;
  int64_t index = 0;                   // Select
  std::optional<int64_t> start, stop;  // Slice
  int64_t step = 1;                    // Slice
  Tensor indices;                      // Tensor
};

// a[indices...] with torch's semantics: ints, slices and new axes apply first, left to
// right; then the index tensors (int64, or bool masks standing for their true positions)
// broadcast against each other and gather. Their dims replace the indexed dims where those
// are adjacent, and come first otherwise. A 0-d int64 tensor is an int. The result is a new
// contiguous tensor; its gradient scatter-adds back, so a repeated index accumulates.
// Recorded under torch's name for the last step taken: SelectBackward0, SliceBackward0,
// UnsqueezeBackward0, AliasBackward0 (no step: t[...]), IndexBackward0 (index tensors).
Tensor index(const Tensor& a, const std::vector<IndexSpec>& indices);

// a[..., index] along `dim`, dropping it (SelectBackward0).
Tensor select(const Tensor& a, int64_t dim, int64_t index);
// a[..., start:stop:step] along `dim` (SliceBackward0, even for a full slice).
Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start = std::nullopt,
             std::optional<int64_t> stop = std::nullopt, int64_t step = 1);

namespace detail {

// Where each element of a result lies in a contiguous source: element (i0, ..., in) of
// `shape` is source[offset + sum_d i_d * strides[d]], except over the dims
// [table_begin, table_begin + table.ndim()), which are the dims of `table` (int64 source
// offsets, contiguous) and contribute table[i_tb, ...] in place of strides. A stride of 0
// repeats an element; a repeated offset in the table reads one element twice.
struct GatherMap {
  Shape shape;
  std::array<int64_t, Shape::kMaxDims> strides{};
  int64_t offset = 0;
  Tensor table;  // undefined when no dim is indexed by a table
  int table_begin = 0;
};

// The strides of a contiguous tensor of `shape`, in elements.
std::array<int64_t, Shape::kMaxDims> contiguous_strides(const Shape& shape);

// A new contiguous tensor of map.shape: result[i] = source[position of i].
Tensor gather(const Tensor& source, const GatherMap& map);
// The adjoint of gather: a tensor of `source_shape` that is zero except where the map
// points, where it holds the sum of the `values` gathered from there.
Tensor scatter_add(const Tensor& values, const GatherMap& map, const Shape& source_shape);

}  // namespace detail

}  // namespace tg
