// Element types: float32 and float64 carry gradients; int64 and bool hold indices and
// comparison results. Also the one place that turns a runtime dtype into a C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "tapegrad/error.h"

namespace tg {

enum class DType : uint8_t { Float32, Float64, Int64, Bool };

constexpr size_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

constexpr bool is_floating(DType dtype) { return dtype == DType::Float32 || dtype == DType::Float64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

// torch's promotion between tensors: bool < int64 < float32 < float64.
constexpr int promotion_rank(DType dtype) {
  switch (dtype) {
    case DType::Bool: return 0;
    case DType::Int64: return 1;
    case DType::Float32: return 2;
    case DType::Float64: return 3;
  }
  return 0;
}
constexpr DType promote_types(DType a, DType b) { return promotion_rank(a) >= promotion_rank(b) ? a : b; }

// bool < integer < floating: a 0-d operand changes a result's dtype only by category.
constexpr int category(DType dtype) { return dtype == DType::Bool ? 0 : dtype == DType::Int64 ? 1 : 2; }

// Calls fn(T{}) with T the C++ type of `dtype`, among the floating types only.
template <class Fn>
decltype(auto) dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    default:
      throw TypeError(detail::concat(op, ": expected a floating point tensor (float32 or float64), got ",
                                     dtype_name(dtype)));
  }
}

// Calls fn(T{}) for the arithmetic types: the floating types and int64.
template <class Fn>
decltype(auto) dispatch_arithmetic(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::Int64) return fn(int64_t{});
  return dispatch_floating(dtype, op, std::forward<Fn>(fn));
}

// Calls fn(T{}) for every dtype.
template <class Fn>
decltype(auto) dispatch_all(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::Int64: return fn(int64_t{});
    case DType::Bool: break;
  }
  return fn(bool{});
}

}  // namespace tg
