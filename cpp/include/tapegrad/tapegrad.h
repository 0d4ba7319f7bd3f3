// The whole C++ API of tapegrad.
#pragma once

#include "tapegrad/autograd.h"
#include "tapegrad/dtype.h"
#include "tapegrad/error.h"
#include "tapegrad/ops.h"
#include "tapegrad/parallel.h"
#include "tapegrad/shape.h"
#include "tapegrad/storage.h"
#include "tapegrad/tensor.h"
