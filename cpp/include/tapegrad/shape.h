// Shape: the sizes of a tensor's dims, stored inline (no heap allocation per tensor).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace tg {

class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> sizes) : Shape(sizes.begin(), sizes.end()) {}
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(*first);
  }

  int ndim() const { return ndim_; }
  int64_t operator[](int dim) const { return sizes_[dim]; }
  int64_t& operator[](int dim) { return sizes_[dim]; }
  const int64_t* begin() const { return sizes_.data(); }
  const int64_t* end() const { return sizes_.data() + ndim_; }

  void push_back(int64_t size);  // raises past kMaxDims dims or for a negative size
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim_; ++d) n *= sizes_[d];
    return n;
  }

  bool operator==(const Shape& other) const {
    if (ndim_ != other.ndim_) return false;
    for (int d = 0; d < ndim_; ++d)
      if (sizes_[d] != other.sizes_[d]) return false;
    return true;
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

  std::string str() const;  // as Python prints a tuple: (), (3,), (2, 3)

 private:
  std::array<int64_t, kMaxDims> sizes_{};
  int ndim_ = 0;
};

// The shape two operands broadcast to, as in NumPy and PyTorch; `op` names the caller in errors.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Wraps a possibly negative dim into [0, ndim); IndexError names `op` otherwise.
int wrap_dim(int64_t dim, int ndim, const char* op);

}  // namespace tg
