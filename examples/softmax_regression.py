"""Softmax regression from scratch (Dive into Deep Learning, 3.6), with `torch` replaced by
`tg`, on synthetic image-shaped data (nothing is downloaded).

    python examples/softmax_regression.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tapegrad as tg  # noqa: E402
from synthetic_images import load_data  # noqa: E402

num_inputs, num_outputs = 784, 10


def softmax(X):
    X_exp = tg.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition  # The broadcasting mechanism is applied here


def cross_entropy(y_hat, y):
    return -tg.log(y_hat[range(len(y_hat)), y])


def accuracy(y_hat, y):
    """Compute the number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def sgd(params, lr, batch_size):
    with tg.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def evaluate_accuracy(net, data_iter):
    correct, total = 0.0, 0
    with tg.no_grad():
        for X, y in data_iter():
            correct += accuracy(net(X), y)
            total += y.numel()
    return correct / total


def main(num_epochs=5, lr=0.1, batch_size=256, seed=0):
    train_iter, test_iter = load_data(batch_size, seed=seed)
    W = tg.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
    b = tg.zeros(num_outputs, requires_grad=True)

    def net(X):
        return softmax(tg.matmul(X.reshape((-1, W.shape[0])), W) + b)

    return train(net, train_iter, test_iter, cross_entropy, num_epochs, lambda: sgd([W, b], lr, batch_size))


def train(net, train_iter, test_iter, loss, num_epochs, updater):
    """Train a model (D2L's train_ch3); returns the last epoch's loss and the test accuracy."""
    for epoch in range(num_epochs):
        total_loss, total = 0.0, 0
        for X, y in train_iter():
            l = loss(net(X), y)
            l.sum().backward()
            updater()
            total_loss += float(l.sum())
            total += y.numel()
        train_loss = total_loss / total
        print(f"epoch {epoch + 1}, loss {train_loss:f}, test acc {evaluate_accuracy(net, test_iter):.3f}")
    return train_loss, evaluate_accuracy(net, test_iter)


if __name__ == "__main__":
    main()
