// Grad mode: per thread, as in PyTorch, so one thread's no_grad never affects another.
#include "tapegrad/autograd.h"

namespace tg {
namespace {
thread_local bool grad_enabled = true;
}

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }

}  // namespace tg
