// Neural-network building blocks with fused kernels: linear layers and losses.
#pragma once

#include "tapegrad/tensor.h"

namespace tg {

enum class LossReduction { None, Mean, Sum };

// x @ weight^T + bias (bias may be undefined), without materialising the transpose; a 1-D
// weight gives x @ weight, the last dim dropped. The bias is added as torch adds it to
// contiguous tensors, which decides the biases taken (linalg.cpp).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// Softmax cross-entropy of logits (N, C) (or (C,)) against int64 class indices (N,) (or
// 0-d), computed through a stable log-sum-exp; its gradient is softmax - one_hot.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, LossReduction reduction = LossReduction::Mean);
// (input - target)^2, reduced.
Tensor mse_loss(const Tensor& input, const Tensor& target, LossReduction reduction = LossReduction::Mean);

}  // namespace tg
