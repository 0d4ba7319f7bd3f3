// Reductions.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

Tensor sum(const Tensor& a);
// Sums `a` down to a shape that broadcasts to `shape` (dims of size 1 where `shape` has 1,
// leading dims `shape` lacks removed): the reverse of broadcasting. Not recorded.
Tensor sum_to_shape(const Tensor& a, const Shape& shape);
Tensor mean(const Tensor& a);
Tensor norm(const Tensor& a);  // the 2-norm of all elements

}  // namespace tg
