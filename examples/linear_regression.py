"""Linear regression from scratch (Dive into Deep Learning, 3.2), with `torch` replaced by `tg`.

    python examples/linear_regression.py
"""
import random

import tapegrad as tg


def synthetic_data(w, b, num_examples):
    """Generate y = Xw + b + noise."""
    X = tg.normal(0, 1, (num_examples, len(w)))
    y = tg.matmul(X, w) + b
    y += tg.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def data_iter(batch_size, features, labels):
    num_examples = len(features)
    indices = list(range(num_examples))
    # The examples are read at random, in no particular order
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = tg.tensor(indices[i: min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]


def linreg(X, w, b):
    """The linear regression model."""
    return tg.matmul(X, w) + b


def squared_loss(y_hat, y):
    """Squared loss."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    """Minibatch stochastic gradient descent."""
    with tg.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def main(num_epochs=3, seed=0):
    random.seed(seed)
    tg.manual_seed(seed)
    true_w = tg.tensor([2, -3.4])
    true_b = 4.2
    features, labels = synthetic_data(true_w, true_b, 1000)

    w = tg.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = tg.zeros(1, requires_grad=True)
    lr, batch_size = 0.03, 10
    net, loss = linreg, squared_loss
    for epoch in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            l = loss(net(X, w, b), y)  # minibatch loss in X and y
            # Compute gradient on l with respect to [w, b]
            l.sum().backward()
            sgd([w, b], lr, batch_size)  # update parameters using their gradient
        with tg.no_grad():
            train_l = loss(net(features, w, b), labels)
            print(f"epoch {epoch + 1}, loss {float(train_l.mean()):f}")
    print(f"error in estimating w: {true_w - w.reshape(true_w.shape)}")
    print(f"error in estimating b: {true_b - b}")
    return float(train_l.mean()), w.detach(), b.detach()


if __name__ == "__main__":
    main()
