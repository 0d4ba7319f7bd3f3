// Dtype conversion as a recorded op.
#pragma once

#include "tapegrad/tensor.h"

namespace tg {

// `a` in `dtype`: `a` itself when it already is; a float result stays in the graph.
Tensor to(const Tensor& a, DType dtype);

}  // namespace tg
