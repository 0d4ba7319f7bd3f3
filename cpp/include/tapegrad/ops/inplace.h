// In-place ops: they write into their first argument and bump its version counter.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

Tensor& zero_(Tensor& a);
Tensor& add_(Tensor& a, const Tensor& b);  // b broadcast to a's shape

}  // namespace tg
