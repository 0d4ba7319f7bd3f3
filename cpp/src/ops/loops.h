// The one piece of code that walks shapes: iteration over operands broadcast against an
// iteration shape (serial, or split across the thread pool), the elementwise `map` built on
// it, the walk over a GatherMap's rows that gather and scatter-add run on, a parallel fill,
// and the streaming stores of large outputs. Internal to the ops.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernels/vecmath.h"
#include "tapegrad/ops/index.h"
#include "tapegrad/parallel.h"
#include "tapegrad/shape.h"

namespace tg::loops {

// outs[k][i] = values(i)[k] for i < n and each of the N outputs, with stores past the caches
// (kernels::kStreamingBytes says when that pays): the values are computed for 128 bytes of
// each output at a time into local chunks, which go out in aligned 32-byte non-temporal
// stores. The outputs share their alignment (else the stores are plain). The fence at the end
// orders those stores (the usual release and acquire do not) before whatever tells another
// thread the rows are done.
template <class T, size_t N, class Values>
void stream_rows(const std::array<T*, N>& outs, int64_t n, Values values) {
  const auto store = [&](int64_t i) {
    const std::array<T, N> value = values(i);
    for (size_t k = 0; k < N; ++k) outs[k][i] = value[k];
  };
  const auto misalignment = [](const T* out) { return reinterpret_cast<uintptr_t>(out) % 32; };
  int64_t i = 0;
#if defined(__AVX__)
  bool aligned_alike = true;
  for (size_t k = 1; k < N; ++k) aligned_alike = aligned_alike && misalignment(outs[k]) == misalignment(outs[0]);
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    constexpr int64_t kVector = 32 / sizeof(T), kChunk = 4 * kVector;
    if (aligned_alike) {
      for (; i < n && misalignment(outs[0] + i) != 0; ++i) store(i);
      for (; i + kChunk <= n; i += kChunk) {
        alignas(32) T chunks[N][kChunk];
#pragma GCC unroll 1  // unrolled, it inlines values() 32 times: compile time, no speed
        for (int64_t j = 0; j < kChunk; ++j) {
          const std::array<T, N> value = values(i + j);
          for (size_t k = 0; k < N; ++k) chunks[k][j] = value[k];
        }
        for (size_t k = 0; k < N; ++k) {
          for (int64_t j = 0; j < kChunk; j += kVector) {
            if constexpr (sizeof(T) == 4)
              _mm256_stream_ps(outs[k] + i + j, _mm256_load_ps(chunks[k] + j));
            else
              _mm256_stream_pd(outs[k] + i + j, _mm256_load_pd(chunks[k] + j));
          }
        }
      }
      _mm_sfence();
    }
  }
#endif
  for (; i < n; ++i) store(i);
}

// stream_rows for one output: out[i] = value(i).
template <class T, class Value>
void stream_row(T* out, int64_t n, Value value) {
  stream_rows<T, 1>({out}, n, [&value](int64_t i) { return std::array<T, 1>{static_cast<T>(value(i))}; });
}

// The rows of an iteration over `shape`: size-1 dims dropped and dims that stay contiguous
// for every operand merged, innermost first. Operand k is a contiguous tensor whose shape
// broadcasts to `shape` (right-aligned); strides[k][d] is its stride along dim d, in
// elements, 0 along broadcast dims.
template <size_t N>
struct Rows {
  int ndim = 0;
  int64_t sizes[Shape::kMaxDims + 1];
  int64_t strides[N][Shape::kMaxDims + 1];
};

template <size_t N>
Rows<N> rows_of(const Shape& shape, const std::array<const Shape*, N>& operands) {
  Rows<N> rows;
  int64_t contiguous[N];  // product of operand k's sizes inside the current dim
  for (size_t k = 0; k < N; ++k) contiguous[k] = 1;
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
    const int last = rows.ndim - 1;
    bool mergeable = rows.ndim > 0;
    for (size_t k = 0; k < N && mergeable; ++k)
      mergeable = dim_strides[k] == rows.strides[k][last] * rows.sizes[last];
    if (mergeable) {
      rows.sizes[last] *= shape[d];
    } else {
      rows.sizes[rows.ndim] = shape[d];
      for (size_t k = 0; k < N; ++k) rows.strides[k][rows.ndim] = dim_strides[k];
      ++rows.ndim;
    }
  }
  if (rows.ndim == 0) {  // one element
    rows.sizes[0] = 1;
    for (size_t k = 0; k < N; ++k) rows.strides[k][0] = 0;
    rows.ndim = 1;
  }
  return rows;
}

// Calls row(offsets, n, steps) for each row of `rows`, operand k's first row at offsets[k].
template <size_t N, class Row>
void walk_rows(const Rows<N>& rows, std::array<int64_t, N> offsets, Row& row) {
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = rows.strides[k][0];
  int64_t counters[Shape::kMaxDims + 1] = {};
  for (;;) {
    row(offsets, rows.sizes[0], steps);
    int d = 1;
    for (; d < rows.ndim; ++d) {  // odometer over the outer dims
      for (size_t k = 0; k < N; ++k) offsets[k] += rows.strides[k][d];
      if (++counters[d] < rows.sizes[d]) break;
      for (size_t k = 0; k < N; ++k) offsets[k] -= rows.strides[k][d] * rows.sizes[d];
      counters[d] = 0;
    }
    if (d >= rows.ndim) return;
  }
}

// Calls row(offsets, n, steps) once per innermost row of `shape`: offsets[k] is where the
// row starts in operand k (in elements), steps[k] its stride along the row; operands as in
// Rows. Same-shape operands run as one row.
template <size_t N, class Row>
void for_each_row(const Shape& shape, const std::array<const Shape*, N>& operands, Row&& row) {
  if (shape.numel() == 0) return;
  walk_rows(rows_of(shape, operands), std::array<int64_t, N>{}, row);
}

// for_each_row, split across the thread pool when `shape` has at least 2 * kParallelGrain
// elements. The split runs along one dim where operand 0 is not broadcast, and each chunk
// walks its part in for_each_row's order, so every element of operand 0 sees exactly the
// rows, in exactly the order, that it sees in for_each_row. Hence `row` may write the
// elements of operand 0 that its row covers (one element, if operand 0 is broadcast along the
// row) and read anything, and results are bitwise those of for_each_row. Without
// `may_split_rows`, only an outer dim splits: a chunk of every row strides across memory.
template <size_t N, class Row>
void parallel_for_each_row(const Shape& shape, const std::array<const Shape*, N>& operands, Row&& row,
                           bool may_split_rows = true) {
  const int64_t numel = shape.numel();
  if (numel == 0) return;
  const Rows<N> rows = rows_of(shape, operands);
  if (numel < 2 * kParallelGrain) return walk_rows(rows, std::array<int64_t, N>{}, row);
  // The outermost dim long enough to feed every thread keeps each chunk's memory in one
  // block; failing that, the longest. Either must be one along which operand 0 moves.
  int split = -1;
  for (int d = rows.ndim - 1; d >= (may_split_rows ? 0 : 1); --d) {
    if (rows.strides[0][d] == 0) continue;
    if (rows.sizes[d] >= 4 * get_num_threads()) {
      split = d;
      break;
    }
    if (split < 0 || rows.sizes[d] > rows.sizes[split]) split = d;
  }
  if (split < 0) return walk_rows(rows, std::array<int64_t, N>{}, row);
  const int64_t per_index = numel / rows.sizes[split];
  parallel_for(rows.sizes[split], (kParallelGrain + per_index - 1) / per_index, [&](int64_t begin, int64_t end) {
    Rows<N> part = rows;
    part.sizes[split] = end - begin;
    std::array<int64_t, N> offsets;
    for (size_t k = 0; k < N; ++k) offsets[k] = begin * rows.strides[k][split];
    walk_rows(part, offsets, row);
  });
}

// Calls row(source_offset, result_offset, n, step, table) once per innermost row of `map`,
// in result order: the row's n elements lie in the source at source_offset + j * step, or
// at source_offset + table[j] when `table` is not null. Size-1 dims are dropped and dims
// that stay contiguous in the source are merged first, so a slice of whole rows is one row.
template <class Row>
void for_each_gather_row(const detail::GatherMap& map, Row&& row) {
  if (map.shape.numel() == 0) return;
  struct Dim {
    int64_t size, stride;
    bool by_table;
  };
  Dim dims[Shape::kMaxDims + 1];  // innermost first
  int ndim = 0;
  const int64_t* table = map.table.defined() ? map.table.data<int64_t>() : nullptr;
  const int table_end = table ? map.table_begin + map.table.ndim() : -1;
  for (int d = map.shape.ndim() - 1; d >= 0; --d) {
    if (table && map.table.ndim() > 0 && d == table_end - 1) {  // the table's dims, as one
      dims[ndim++] = {map.table.numel(), 0, true};
      d = map.table_begin;
      continue;
    }
    const int64_t size = map.shape[d], stride = map.strides[d];
    if (size == 1) continue;
    Dim* inner = ndim > 0 ? &dims[ndim - 1] : nullptr;
    if (inner && !inner->by_table && stride == inner->stride * inner->size)
      inner->size *= size;
    else
      dims[ndim++] = {size, stride, false};
  }
  if (table && map.table.ndim() == 0) dims[ndim++] = {1, 0, true};  // a 0-d table: one offset
  if (ndim == 0) dims[ndim++] = {1, 0, false};                       // one element

  int64_t counters[Shape::kMaxDims + 1] = {};
  const Dim& row_dim = dims[0];
  for (int64_t result_offset = 0;; result_offset += row_dim.size) {
    int64_t source_offset = map.offset;
    for (int k = 1; k < ndim; ++k)
      source_offset += dims[k].by_table ? table[counters[k]] : counters[k] * dims[k].stride;
    row(source_offset, result_offset, row_dim.size, row_dim.stride, row_dim.by_table ? table : nullptr);
    int k = 1;
    for (; k < ndim; ++k) {  // odometer over the outer dims
      if (++counters[k] < dims[k].size) break;
      counters[k] = 0;
    }
    if (k >= ndim) return;
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
template <class Reader>
constexpr bool is_contiguous = false;
template <class T>
constexpr bool is_contiguous<Contiguous<T>> = true;

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

// kStreamable: whether a large output may be streamed. Only rows whose operands are all
// contiguous stream, and in-place updates never do: a streaming loop is a second loop body
// to compile, and with one for every reader pattern and every update, elementwise.cpp took
// 303 s to compile at -O3 against 146 s without streaming (143 s as it is).
template <bool kStreamable, class Out, class Op, size_t... K, class... In>
void map_rows(std::index_sequence<K...>, Out* out, const Shape& shape, Op op, Input<In>... inputs) {
  constexpr size_t N = 1 + sizeof...(In);
  constexpr bool kMayStream = kStreamable && std::is_floating_point_v<Out>;
  bool stream = false;
  if constexpr (kMayStream)
    stream = kernels::streams(int64_t(sizeof(Out)) * shape.numel()) &&
             ((static_cast<const void*>(out) != static_cast<const void*>(inputs.data)) && ...);
  parallel_for_each_row<N>(shape, {&shape, &inputs.shape...},
                           [&](const std::array<int64_t, N>& offsets, int64_t n, const std::array<int64_t, N>& steps) {
                             Out* o = out + offsets[0];
                             with_readers(
                                 steps.data() + 1,
                                 [&](auto... readers) {
                                   if constexpr (kMayStream && (is_contiguous<decltype(readers)> && ...))
                                     if (stream) return stream_row(o, n, [&](int64_t i) { return op(readers[i]...); });
                                   for (int64_t i = 0; i < n; ++i) o[i] = op(readers[i]...);
                                 },
                                 (inputs.data + offsets[K + 1])...);
                           });
}

// out[i] = op(inputs[i]...) over `shape` (the shape of `out`), inputs broadcast to it; split
// across the thread pool when large, so `op` must be safe to call from several threads.
// A large floating `out` that is none of the inputs is streamed past the caches, in the rows
// where no input is broadcast.
template <class Out, class Op, class... In>
void map(Out* out, const Shape& shape, Op op, Input<In>... inputs) {
  map_rows<true>(std::index_sequence_for<In...>{}, out, shape, op, inputs...);
}

// data[i] = op(data[i], inputs[i]...) over `shape` (the shape of `data`), inputs broadcast
// to it, in place: as map, but never streamed (each line written was just read).
template <class T, class Op, class... In>
void update(T* data, const Shape& shape, Op op, Input<In>... inputs) {
  map_rows<false>(std::index_sequence_for<T, In...>{}, data, shape, op, Input<T>{data, shape}, inputs...);
}

template <class T, class FirstOp, class SecondOp, size_t... K, class... In>
void update_pair_rows(std::index_sequence<K...>, T* first, T* second, const Shape& shape, bool overwrite,
                      FirstOp first_op, SecondOp second_op, Input<In>... inputs) {
  constexpr size_t N = 1 + sizeof...(In);
  const bool stream = overwrite && kernels::streams(int64_t(sizeof(T)) * shape.numel());
  parallel_for_each_row<N>(shape, {&shape, &inputs.shape...},
                           [&](const std::array<int64_t, N>& offsets, int64_t n, const std::array<int64_t, N>& steps) {
                             T* f = first + offsets[0];  // both buffers are operand 0: they have its shape
                             T* s = second + offsets[0];
                             with_readers(
                                 steps.data() + 1,
                                 [&](auto... readers) {
                                   if (stream)
                                     return stream_rows<T, 2>({f, s}, n, [&](int64_t i) {
                                       return std::array<T, 2>{static_cast<T>(first_op(T(0), readers[i]...)),
                                                               static_cast<T>(second_op(T(0), readers[i]...))};
                                     });
                                   for (int64_t i = 0; i < n; ++i) {
                                     f[i] = first_op(f[i], readers[i]...);
                                     s[i] = second_op(s[i], readers[i]...);
                                   }
                                 },
                                 (inputs.data + offsets[K + 1])...);
                           });
}

// first[i] = first_op(first[i], inputs[i]...) and second[i] = second_op(second[i],
// inputs[i]...) over `shape` (the shape of both buffers, which do not overlap), in one pass
// over the inputs: update for two buffers at once. `overwrite` says that the ops ignore the
// buffers' values (both were zeroed lazily): large buffers are then streamed, never read, the
// ops given zeros in their place (for any reader pattern: the pair has few callers to compile
// it for).
template <class T, class FirstOp, class SecondOp, class... In>
void update_pair(T* first, T* second, const Shape& shape, bool overwrite, FirstOp first_op, SecondOp second_op,
                 Input<In>... inputs) {
  update_pair_rows(std::index_sequence_for<In...>{}, first, second, shape, overwrite, first_op, second_op, inputs...);
}

// data[i] = value for i in [0, n), split across the thread pool and streamed when large.
template <class T>
void fill(T* data, int64_t n, T value) {
  const bool stream = kernels::streams(int64_t(sizeof(T)) * n);
  parallel_for(n, kParallelGrain, [&](int64_t begin, int64_t end) {
    if (stream) return stream_row(data + begin, end - begin, [value](int64_t) { return value; });
    std::fill(data + begin, data + end, value);
  });
}

// `op` with integers wrapping around on overflow, as torch's kernels do (two's complement):
// C++ leaves a signed overflow undefined, so a signed type is computed in its unsigned one.
template <class Op>
auto wrapping(Op op) {
  return [op](auto... x) {
    using T = std::common_type_t<decltype(x)...>;
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      using Unsigned = std::make_unsigned_t<T>;
      return static_cast<T>(op(static_cast<Unsigned>(x)...));
    } else {
      return op(x...);
    }
  };
}

}  // namespace tg::loops
