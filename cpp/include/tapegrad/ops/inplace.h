// In-place ops: they write into their first argument's buffer and bump its version
// counter, so a backward that saved the old value notices. In grad mode, when the tensor
// or the operand requires grad, the op is recorded and becomes the tensor's grad_fn (as
// torch does); on a leaf that requires grad they raise.
#pragma once

#include <functional>

#include "tapegrad/tensor.h"

namespace tg {

Tensor& add_(Tensor& self, const Tensor& other);  // other broadcast to self's shape
Tensor& sub_(Tensor& self, const Tensor& other);
Tensor& mul_(Tensor& self, const Tensor& other);
Tensor& div_(Tensor& self, const Tensor& other);
Tensor& zero_(Tensor& self);
Tensor& fill_(Tensor& self, double value);
Tensor& copy_(Tensor& self, const Tensor& source);  // source broadcast to self's shape and converted

// Any op made in-place: `self` takes the value of compute(old self). The rule the named
// ops follow, for ops that have no in-place kernel of their own (clamp_, ...).
Tensor& write_inplace(const char* name, Tensor& self, const std::function<Tensor(const Tensor&)>& compute);

}  // namespace tg
