// Shapes: printing, broadcasting and dim wrapping.
#include "tapegrad/shape.h"

#include "tapegrad/error.h"

namespace tg {

void Shape::push_back(int64_t size) {
  TG_CHECK(ndim_ < kMaxDims, "tapegrad supports at most ", kMaxDims, " dims, got more");
  TG_CHECK_AS(ValueError, size >= 0, "negative dimension ", size, " in a shape");
  sizes_[ndim_++] = size;
}

std::string Shape::str() const {
  std::string text = "(";
  for (int d = 0; d < ndim_; ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(sizes_[d]);
  }
  return text + (ndim_ == 1 ? ",)" : ")");
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int ndim = a.ndim() > b.ndim() ? a.ndim() : b.ndim();
  Shape out;
  for (int d = 0; d < ndim; ++d) {
    // Align the shapes on their last dim; a missing leading dim counts as 1.
    const int da = d - (ndim - a.ndim()), db = d - (ndim - b.ndim());
    const int64_t sa = da >= 0 ? a[da] : 1, sb = db >= 0 ? b[db] : 1;
    TG_CHECK(sa == sb || sa == 1 || sb == 1, op, ": shapes ", a.str(), " and ", b.str(),
             " cannot be broadcast: the size of tensor a (", sa, ") must match the size of tensor b (",
             sb, ") at non-singleton dimension ", d);
    out.push_back(sa == 1 ? sb : sa);
  }
  return out;
}

int wrap_dim(int64_t dim, int ndim, const char* op) {
  const int64_t rank = ndim > 0 ? ndim : 1;  // a 0-d tensor accepts dim 0 and -1, as in torch
  TG_CHECK_AS(IndexError, dim >= -rank && dim < rank, op, ": dimension out of range (expected to be in range of [",
              -rank, ", ", rank - 1, "], but got ", dim, ")");
  return static_cast<int>(dim < 0 ? dim + rank : dim);
}

}  // namespace tg
