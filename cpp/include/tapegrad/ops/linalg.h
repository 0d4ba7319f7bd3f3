// Linear algebra.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

Tensor dot(const Tensor& a, const Tensor& b);

}  // namespace tg
