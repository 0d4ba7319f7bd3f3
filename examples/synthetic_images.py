"""A stand-in for Fashion-MNIST that needs no download: 28x28 one-channel images of 10
classes, each class a fixed random pattern plus noise, so a model can learn to tell them apart."""
import tapegrad as tg


def load_data(batch_size, num_train=2000, num_test=500, noise=1.0, seed=0):
    """Returns (train_iter, test_iter): functions that yield (X, y) minibatches, X of shape
    (batch, 1, 28, 28) and y int64 class indices, as D2L's load_data_fashion_mnist does."""
    tg.manual_seed(seed)
    prototypes = tg.randn(10, 1, 28, 28)

    def make(n):
        y = tg.randint(0, 10, (n,))
        X = prototypes[y] + noise * tg.randn(n, 1, 28, 28)
        return X, y

    def batches(X, y):
        def iterate():
            for i in range(0, len(X), batch_size):
                yield X[i:i + batch_size], y[i:i + batch_size]
        return iterate

    train, test = make(num_train), make(num_test)
    return batches(*train), batches(*test)
