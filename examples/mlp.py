"""A multilayer perceptron from scratch (Dive into Deep Learning, 4.2), with `torch`
replaced by `tg`, on synthetic image-shaped data (nothing is downloaded).

    python examples/mlp.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tapegrad as tg  # noqa: E402
import tapegrad.nn.functional as F  # noqa: E402
from softmax_regression import sgd, train  # noqa: E402
from synthetic_images import load_data  # noqa: E402

num_inputs, num_outputs, num_hiddens = 784, 10, 256


def relu(X):
    a = tg.zeros_like(X)
    return tg.max(X, a)


def main(num_epochs=5, lr=0.1, batch_size=256, seed=0):
    train_iter, test_iter = load_data(batch_size, seed=seed)
    W1 = (tg.randn(num_inputs, num_hiddens) * 0.01).requires_grad_()
    b1 = tg.zeros(num_hiddens, requires_grad=True)
    W2 = (tg.randn(num_hiddens, num_outputs) * 0.01).requires_grad_()
    b2 = tg.zeros(num_outputs, requires_grad=True)
    params = [W1, b1, W2, b2]

    def net(X):
        X = X.reshape((-1, num_inputs))
        H = relu(X @ W1 + b1)  # Here '@' stands for matrix multiplication
        return H @ W2 + b2

    def loss(y_hat, y):
        return F.cross_entropy(y_hat, y, reduction="none")

    return train(net, train_iter, test_iter, loss, num_epochs, lambda: sgd(params, lr, batch_size))


if __name__ == "__main__":
    main()
