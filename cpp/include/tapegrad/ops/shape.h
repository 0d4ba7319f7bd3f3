// Shape and dtype changes. Views (reshape, view, flatten, squeeze, unsqueeze) share the
// buffer: tensors are always contiguous, so a new shape over the same elements is all they
// need. The others (transpose, permute, expand, cat, stack) copy.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

// Shares the buffer; one size may be -1 (inferred). Recorded as ViewBackward0.
Tensor reshape(const Tensor& a, const std::vector<int64_t>& sizes);
// reshape under torch's other name. torch's view also refuses tensors whose strides a new
// shape cannot describe (after a transpose); tapegrad's are always contiguous, so it
// never has to refuse.
Tensor view(const Tensor& a, const std::vector<int64_t>& sizes);
// Merges dims start_dim..end_dim into one; `a` itself when they are the same dim (as torch).
Tensor flatten(const Tensor& a, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor squeeze(const Tensor& a);                                   // every size-1 dim
Tensor squeeze(const Tensor& a, int64_t dim);                      // that dim, if of size 1
Tensor squeeze(const Tensor& a, const std::vector<int64_t>& dims);  // those of them of size 1
Tensor unsqueeze(const Tensor& a, int64_t dim);                    // a size-1 dim at `dim`

// Copies with the dims reordered: result dim i is dim dims[i] of `a`.
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& a, int64_t dim0, int64_t dim1);
Tensor t(const Tensor& a);  // transpose of a tensor with at most 2 dims (TBackward0)

// A copy of `a` broadcast to `sizes` (-1 keeps a dim's size), recorded (ExpandBackward0).
Tensor expand(const Tensor& a, const std::vector<int64_t>& sizes);
// A copy of `a` broadcast to `shape` (not recorded).
Tensor expand_copy(const Tensor& a, const Shape& shape);

// Joins tensors along an existing dim (cat) or a new one (stack); dtypes promote.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

Tensor to_dtype(const Tensor& a, DType dtype);  // `a` itself when already `dtype`
Tensor clone(const Tensor& a);                 // a copy with its own buffer (not recorded)

}  // namespace tg
