"""Shared pytest setup: makes the gradient-check helper importable as `gradcheck` from any test file."""
import os
import sys

# Whatever import mode pytest runs in, `import gradcheck` must find tests/gradcheck.py.
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# TAPEGRAD_TESTS_NO_TORCH=1 runs the suite as if torch were not installed: its cross-checks
# are skipped, the numpy and finite-difference oracles still run. CI's AddressSanitizer stage
# sets it (torch does not run under the ASan runtime).
if os.environ.get("TAPEGRAD_TESTS_NO_TORCH") == "1":
    sys.modules["torch"] = None  # `import torch` raises ImportError
