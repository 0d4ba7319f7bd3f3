// The differentiable operations and the tensor factories of the C++ API, one header per op family.
#pragma once

#include "tapegrad/ops/convert.h"
#include "tapegrad/ops/elementwise.h"
#include "tapegrad/ops/factory.h"
#include "tapegrad/ops/index.h"
#include "tapegrad/ops/inplace.h"
#include "tapegrad/ops/linalg.h"
#include "tapegrad/ops/nn.h"
#include "tapegrad/ops/reduce.h"
#include "tapegrad/ops/shape.h"
