"""The from-scratch models of Dive into Deep Learning chapters 3 and 4 (examples/) learn."""
import importlib.util
import pathlib

import numpy as np

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_regression_recovers_the_parameters():
    loss, w, b = load("linear_regression").main(num_epochs=3)
    assert loss < 1e-3  # the noise alone gives 0.5 * 0.01**2 = 5e-5
    np.testing.assert_allclose(w.numpy().ravel(), [2, -3.4], atol=0.05)
    np.testing.assert_allclose(b.numpy(), [4.2], atol=0.05)


def test_softmax_regression_learns_the_classes():
    loss, accuracy = load("softmax_regression").main(num_epochs=3)
    assert loss < 0.5  # chance level is log(10) = 2.3
    assert accuracy > 0.9


def test_mlp_learns_the_classes():
    loss, accuracy = load("mlp").main(num_epochs=3)
    assert loss < 0.5
    assert accuracy > 0.9
