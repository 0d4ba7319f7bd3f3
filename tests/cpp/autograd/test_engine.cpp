// The backward engine: the seed workload, fan-out, retain_graph, root gradients, independent
// graphs, and run_backward with `inputs` (autograd.grad).
#include <gtest/gtest.h>

#include <string>

#include "../testing.h"

namespace tg {
namespace {

using testing::error_message;
using testing::leaf;
using testing::tensor;
using testing::values;

TEST(Engine, SeedWorkload) {
  Tensor x = leaf({1, 2, 3, 4}, Shape{4});
  const Tensor y = 2.0 * dot(x, x);
  EXPECT_EQ(y.item(), 60);  // 2 * (1 + 4 + 9 + 16)
  y.backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4, 8, 12, 16}));  // d(2 x.x)/dx = 4x

  Tensor grad = x.grad();
  const void* buffer = grad.raw_data();
  zero_(grad);
  EXPECT_EQ(x.grad().raw_data(), buffer);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 0, 0}));

  sum(x).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1, 1, 1}));
  EXPECT_EQ(x.grad().raw_data(), buffer);
}

TEST(Engine, RecordsTorchsNodeNames) {
  const Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = leaf({3, 4}, Shape{2});
  EXPECT_STREQ((x + y).grad_fn()->name(), "AddBackward0");
  EXPECT_STREQ((x - y).grad_fn()->name(), "SubBackward0");
  EXPECT_STREQ((x * y).grad_fn()->name(), "MulBackward0");
  EXPECT_STREQ((x / y).grad_fn()->name(), "DivBackward0");
  EXPECT_STREQ((-x).grad_fn()->name(), "NegBackward0");
  EXPECT_STREQ(pow(x, y).grad_fn()->name(), "PowBackward1");
  EXPECT_STREQ(pow(x, scalar_tensor(2, DType::Float32)).grad_fn()->name(), "PowBackward0");
  EXPECT_STREQ(rpow(x, wrap_scalar(2.0, x)).grad_fn()->name(), "PowBackward2");
  EXPECT_STREQ(rsub(x, wrap_scalar(2.0, x)).grad_fn()->name(), "RsubBackward1");
  EXPECT_STREQ(sum(x).grad_fn()->name(), "SumBackward0");
  EXPECT_STREQ(norm(x).grad_fn()->name(), "LinalgVectorNormBackward0");
  EXPECT_STREQ(reshape(x, {2, 1}).grad_fn()->name(), "ViewBackward0");
}

TEST(Engine, FanOutAddsTheGradientOfEveryUse) {
  Tensor x = leaf({1, -2, 3}, Shape{3});
  sum(x * x).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, -4, 6}));  // d(x^2)/dx = 2x

  Tensor z = leaf({1, -2, 3}, Shape{3}, DType::Float64);
  const Tensor h = z * z;  // used three times below
  sum(h * z + h - z).backward();
  // d(z^3 + z^2 - z)/dz = 3z^2 + 2z - 1
  EXPECT_EQ(values(z.grad()), (std::vector<double>{4, 7, 32}));
}

TEST(Engine, ADiamondRunsEachNodeOnceAfterAllItsConsumers) {
  // x -> a = 3x -> {b = a*a, c = a + 1} -> b * c: a's node must run once, with both
  // contributions summed, and only after b's and c's.
  Tensor x = leaf({2}, Shape{}, DType::Float64);
  const Tensor a = x * 3.0;
  const Tensor out = (a * a) * (a + 1.0);
  out.backward();
  // out = a^3 + a^2, d out/dx = (3a^2 + 2a) * 3 = (108 + 12) * 3 at a = 6
  EXPECT_EQ(x.grad().item(), 360);
}

TEST(Engine, BroadcastGradientsAreReducedToTheInputShape) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Tensor row = leaf({1, 1, 1}, Shape{3});
  Tensor column = leaf({1, 1}, Shape{2, 1});
  Tensor scalar = leaf({2}, Shape{});
  sum(x * row + column * scalar).backward();
  EXPECT_EQ(row.grad().shape(), Shape{3});
  EXPECT_EQ(values(row.grad()), (std::vector<double>{5, 7, 9}));  // column sums of x
  EXPECT_EQ(column.grad().shape(), (Shape{2, 1}));
  EXPECT_EQ(values(column.grad()), (std::vector<double>{6, 6}));  // scalar, three times per row
  EXPECT_EQ(scalar.grad().shape(), Shape{});
  EXPECT_EQ(scalar.grad().item(), 6);  // sum of column over the (2, 3) result
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1, 1, 1, 1, 1}));
}

TEST(Engine, NonScalarBackwardNeedsAGradientOfItsShape) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  const Tensor y = x * 2.0;
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { y.backward(); }),
                  "grad can be implicitly created only for scalar outputs");
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { y.backward(ones(Shape{2})); }), "Mismatch in shape");
  EXPECT_FALSE(x.grad().defined());
  y.backward(tensor({1, 10, 100}, Shape{3}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 20, 200}));
}

TEST(Engine, BackwardFromATensorThatNeedsNoGradRaises) {
  const Tensor constant = tensor({1}, Shape{});
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { constant.backward(); }), "does not require grad");
}

TEST(Engine, SecondBackwardWithoutRetainGraphRaisesNamingTheNode) {
  Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = sum(x * x);
  y.backward();
  const std::string message = error_message<std::runtime_error>([&] { y.backward(); });
  EXPECT_CONTAINS(message, "backward through the graph a second time");
  EXPECT_CONTAINS(message, "retain_graph=True");
  EXPECT_CONTAINS(message, "MulBackward0");
}

TEST(Engine, RetainGraphAllowsASecondBackwardThatAccumulates) {
  Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = sum(x * x);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4, 8}));  // 2 * 2x
  y.backward();  // the last use frees the saved tensors
  EXPECT_EQ(values(x.grad()), (std::vector<double>{6, 12}));
  EXPECT_THROW(y.backward(), std::runtime_error);
}

TEST(Engine, IndependentGraphsDoNotTouchEachOther) {
  Tensor a = leaf({1, 2}, Shape{2});
  Tensor b = leaf({3, 4}, Shape{2});
  const Tensor y_a = sum(a * a);
  const Tensor y_b = sum(b * 3.0);
  y_a.backward();
  EXPECT_FALSE(b.grad().defined());
  y_b.backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{2, 4}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{3, 3}));
}

TEST(Engine, NonLeafTensorsGetNoGradUnlessRetained) {
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor h = x * 3.0;
  Tensor kept = x * 2.0;
  kept.retain_grad();
  sum(h * kept).backward();
  EXPECT_FALSE(h.grad().defined());
  // d(sum(3x * k))/dk = 3x
  EXPECT_EQ(values(kept.grad()), (std::vector<double>{3, 6}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{12, 24}));  // d(6 x^2)/dx = 12x
}

TEST(Engine, BackwardOnALeafItself) {
  Tensor x = leaf({5}, Shape{});
  x.backward();
  EXPECT_EQ(x.grad().item(), 1);
}

TEST(Engine, ARootGradientOfAnotherDtypeIsConvertedToTheGraphs) {
  Tensor x = leaf({1, 2}, Shape{2});
  (x * 3.0).backward(tensor({0.5, 0.25}, Shape{2}, DType::Float64));
  EXPECT_EQ(x.grad().dtype(), DType::Float32);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1.5, 0.75}));
  (x * 3.0).backward(tensor({1, 0}, Shape{2}, DType::Int64));  // as torch converts any dtype
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4.5, 0.75}));
}

// --- hooks that change what the engine holds ---

TEST(Engine, AHookThatRegistersHooksOnItsTensorRunsThemFromTheNextPass) {
  Tensor x = leaf({1, 1}, Shape{2});
  std::vector<std::string> calls;
  x.register_hook([&](const Tensor&) {
    calls.push_back("rearm");
    for (int i = 0; i < 100; ++i)  // grows the hook list past its capacity
      x.register_hook([&](const Tensor&) {
        calls.push_back("new");
        return Tensor();
      });
    return Tensor();
  });
  x.register_hook([&](const Tensor& grad) {
    calls.push_back("second");
    return grad * 2.0;
  });
  sum(x * 3.0).backward();
  EXPECT_EQ(calls, (std::vector<std::string>{"rearm", "second"}));  // as in torch
  EXPECT_EQ(values(x.grad()), (std::vector<double>{6, 6}));
  calls.clear();
  sum(x * 3.0).backward();
  EXPECT_EQ(calls.size(), 102u);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{12, 12}));
}

TEST(Engine, AHookThatReplacesALeafsGradMakesThePassAddIntoTheNewOne) {
  Tensor x = leaf({1, 1}, Shape{2});
  x.set_grad(tensor({1, 1}, Shape{2}));
  Tensor other = tensor({10, 20}, Shape{2});
  Tensor y = x * 5.0;
  y.register_hook([&](const Tensor&) {
    x.set_grad(other);
    return Tensor();
  });
  sum(y).backward();
  EXPECT_EQ(x.grad().impl(), other.impl());
  EXPECT_EQ(values(other), (std::vector<double>{15, 25}));  // the old .grad is not added in
}

TEST(Engine, AHookMayNotChangeTheGradientsDtype) {
  Tensor x = leaf({1, 1}, Shape{2});
  x.register_hook([](const Tensor& grad) { return to_dtype(grad, DType::Float64); });
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { sum(x * 3.0).backward(); }),
                  "hook has changed the type of value (was float32 got float64)");
}

// --- run_backward with inputs: autograd.grad ---

TEST(Grad, ReturnsGradientsWithoutTouchingDotGrad) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  Tensor w = leaf({4, 5, 6}, Shape{3});
  const Tensor y = sum(x * w);
  const std::vector<Tensor> grads = run_backward({y}, {}, false, {x, w});
  ASSERT_EQ(grads.size(), 2u);
  EXPECT_EQ(values(grads[0]), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(values(grads[1]), (std::vector<double>{1, 2, 3}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Grad, LeavesAnExistingDotGradAlone) {
  Tensor x = leaf({1, 2}, Shape{2});
  sum(x * 5.0).backward();
  const void* buffer = x.grad().raw_data();
  const std::vector<Tensor> grads = run_backward({sum(x * x)}, {}, false, {x});
  EXPECT_EQ(values(grads[0]), (std::vector<double>{2, 4}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{5, 5}));
  EXPECT_EQ(x.grad().raw_data(), buffer);
  EXPECT_NE(grads[0].raw_data(), buffer);
}

TEST(Grad, OfANonLeafIntermediate) {
  Tensor x = leaf({1, 2}, Shape{2});
  const Tensor h = x * 3.0;
  const std::vector<Tensor> grads = run_backward({sum(h * h)}, {}, false, {h, x});
  EXPECT_EQ(values(grads[0]), (std::vector<double>{6, 12}));   // 2h
  EXPECT_EQ(values(grads[1]), (std::vector<double>{18, 36}));  // 18x
  EXPECT_FALSE(x.grad().defined());
}

TEST(Grad, OfATensorOutsideTheGraphRaises) {
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor unused = leaf({1, 2}, Shape{2});
  const Tensor other = unused * 2.0;  // has an accumulator, but not in this graph
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { run_backward({sum(x * x)}, {}, false, {unused}); }),
                  "not have been used in the graph");
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { run_backward({sum(x * x)}, {}, false, {tensor({1}, Shape{1})}); }),
                  "does not require grad");
}

TEST(Grad, OfSeveralRootsSumsTheirGradients) {
  Tensor x = leaf({1, 2}, Shape{2});
  const std::vector<Tensor> grads =
      run_backward({sum(x * x), x * 3.0}, {Tensor(), tensor({1, -1}, Shape{2})}, false, {x});
  EXPECT_EQ(values(grads[0]), (std::vector<double>{5, 1}));  // 2x + 3 * (1, -1)
}

}  // namespace
}  // namespace tg
