"""Shared pytest setup: makes the gradient-check helper importable as `gradcheck` from any test file."""
import os
import sys

# Whatever import mode pytest runs in, `import gradcheck` must find tests/gradcheck.py.
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
