// The one piece of code that walks shapes: iteration over operands broadcast against an
// iteration shape, and the elementwise `map` built on it. Internal to the ops.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "tapegrad/shape.h"

namespace tg::loops {

// Calls row(offsets, n, steps) once per innermost row of `shape`: offsets[k] is where the
// row starts in operand k (in elements), steps[k] its stride along the row. Each operand
// is a contiguous tensor whose shape broadcasts to `shape` (right-aligned; stride 0 along
// broadcast dims). Size-1 dims are dropped and dims that stay contiguous for every operand
// are merged first, so same-shape operands run as one row.
template <size_t N, class Row>
void for_each_row(const Shape& shape, const std::array<const Shape*, N>& operands, Row&& row) {
  if (shape.numel() == 0) return;
  // Coalesced dims, innermost first.
  int64_t sizes[Shape::kMaxDims + 1];
  int64_t strides[N][Shape::kMaxDims + 1];
  int64_t contiguous[N];  // product of operand k's sizes inside the current dim
  for (size_t k = 0; k < N; ++k) contiguous[k] = 1;
  int ndim = 0;
  for (int d = shape.ndim() - 1; d >= 0; --d) {
    int64_t dim_strides[N];
    for (size_t k = 0; k < N; ++k) {
      const Shape& operand = *operands[k];
      const int dk = d - (shape.ndim() - operand.ndim());
      const int64_t size = dk >= 0 ? operand[dk] : 1;
      dim_strides[k] = size == 1 ? 0 : contiguous[k];
      contiguous[k] *= size;
    }
    if (shape[d] == 1) continue;
    bool mergeable = ndim > 0;
    for (size_t k = 0; k < N && mergeable; ++k)
      mergeable = dim_strides[k] == strides[k][ndim - 1] * sizes[ndim - 1];
    if (mergeable) {
      sizes[ndim - 1] *= shape[d];
    } else {
      sizes[ndim] = shape[d];
      for (size_t k = 0; k < N; ++k) strides[k][ndim] = dim_strides[k];
      ++ndim;
    }
  }
  if (ndim == 0) {  // one element
    sizes[0] = 1;
    for (size_t k = 0; k < N; ++k) strides[k][0] = 0;
    ndim = 1;
  }

  std::array<int64_t, N> offsets{}, steps{};
  for (size_t k = 0; k < N; ++k) steps[k] = strides[k][0];
  int64_t counters[Shape::kMaxDims + 1] = {};
  for (;;) {
    row(offsets, sizes[0], steps);
    int d = 1;
    for (; d < ndim; ++d) {  // odometer over the outer dims
      for (size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
      if (++counters[d] < sizes[d]) break;
      for (size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * sizes[d];
      counters[d] = 0;
    }
    if (d >= ndim) return;
  }
}

// Reads a row of an operand: contiguous, or one value repeated (a broadcast operand).
template <class T>
struct Contiguous {
  const T* data;
  T operator[](int64_t i) const { return data[i]; }
};
template <class T>
struct Repeated {
  T value;
  T operator[](int64_t) const { return value; }
};

// Calls fn(readers...) with each pointer wrapped as Contiguous or Repeated by its step, so
// the row loop is compiled (and vectorised) for each pattern.
template <class Fn>
void with_readers(const int64_t*, Fn&& fn) {
  fn();
}
template <class Fn, class T, class... Rest>
void with_readers(const int64_t* steps, Fn&& fn, const T* first, const Rest*... rest) {
  if (steps[0] == 0) {
    const Repeated<T> reader{*first};
    with_readers(steps + 1, [&](auto... readers) { fn(reader, readers...); }, rest...);
  } else {
    const Contiguous<T> reader{first};
    with_readers(steps + 1, [&](auto... readers) { fn(reader, readers...); }, rest...);
  }
}

template <class T>
struct Input {
  const T* data;
  const Shape& shape;
};

template <class Out, class Op, size_t... K, class... In>
void map_rows(std::index_sequence<K...>, Out* out, const Shape& shape, Op op, Input<In>... inputs) {
  constexpr size_t N = 1 + sizeof...(In);
  for_each_row<N>(shape, {&shape, &inputs.shape...},
                  [&](const std::array<int64_t, N>& offsets, int64_t n, const std::array<int64_t, N>& steps) {
                    Out* o = out + offsets[0];
                    with_readers(
                        steps.data() + 1,
                        [&](auto... readers) {
                          for (int64_t i = 0; i < n; ++i) o[i] = op(readers[i]...);
                        },
                        (inputs.data + offsets[K + 1])...);
                  });
}

// out[i] = op(inputs[i]...) over `shape` (the shape of `out`), inputs broadcast to it.
template <class Out, class Op, class... In>
void map(Out* out, const Shape& shape, Op op, Input<In>... inputs) {
  map_rows(std::index_sequence_for<In...>{}, out, shape, op, inputs...);
}

}  // namespace tg::loops
