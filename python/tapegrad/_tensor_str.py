"""Text for ``repr(tensor)``, matching PyTorch 2.x under default print options.

This is a port of the parts of PyTorch's ``torch/_tensor_str.py`` that apply to
dense CPU tensors of dtype float32, float64, int64 and bool, working on a numpy
array of the tensor's data. The aim is byte-for-byte identical output (with
``tapegrad.`` in place of ``torch.``), so the decisions below follow torch's,
including its quirks.
"""

import math

import numpy as np

# torch's default print options (there is no set_printoptions here).
PRECISION = 4  # digits after the point in fixed and scientific notation
THRESHOLD = 1000  # summarise (print "...") when there are more elements than this
EDGEITEMS = 3  # elements kept at each end of a summarised dimension
LINEWIDTH = 80

_PREFIX = "tensor("

_NUMPY_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "bool": np.bool_,
}

# A non-empty tensor of one of these dtypes can be told apart by its text
# alone, so torch omits ``dtype=``; float64 always needs it.
_IMPLICIT_DTYPES = ("float32", "int64", "bool")


class _Formatter:
    """Picks one notation and one column width for all elements of a tensor.

    Only finite non-zero values take part in the choice for floats, as in torch:
    zeros, nan and inf fit any notation.
    """

    def __init__(self, values):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True  # floats that are all whole numbers print as "3."
        self.sci_mode = False
        self.max_width = 1

        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return

        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            return

        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        # torch makes this decision in float64 (Python floats here); the
        # division may overflow to inf, which just selects scientific mode.
        magnitudes = np.abs(finite).astype(np.float64)
        lo, hi = float(magnitudes.min()), float(magnitudes.max())
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4

        for v in finite.tolist():
            self.max_width = max(self.max_width, len(self._text(v)))

    def _text(self, v):
        # Python's own float formatting is what torch uses, so nan, inf and -0.0
        # come out as "nan", "inf" and "-0." for free.
        if not self.floating:
            return str(v)
        if self.sci_mode:
            return f"{v:.{PRECISION}e}"
        if self.int_mode:
            # The trailing "." marks a whole-number float as floating point;
            # nan and inf need no marker.
            return f"{v:.0f}." if math.isfinite(v) else f"{v:.0f}"
        return f"{v:.{PRECISION}f}"

    def format(self, v):
        """Right-aligns ``v`` (a Python scalar) to the common column width."""
        return self._text(v).rjust(self.max_width)


def _summarized(values):
    """Just the elements a summarised print shows: the edges of every long axis.

    The formatter must only see these, so that hidden values do not widen the
    columns or switch the notation.
    """
    for axis, n in enumerate(values.shape):
        if n > 2 * EDGEITEMS:
            keep = list(range(EDGEITEMS)) + list(range(n - EDGEITEMS, n))
            values = np.take(values, keep, axis=axis)
    return values


def _vector_str(values, indent, summarize, fmt):
    if summarize and values.shape[0] > 2 * EDGEITEMS:
        # " ..." is a list item like any other, so it also counts when lines
        # are filled below.
        items = (
            [fmt.format(v) for v in values[:EDGEITEMS].tolist()]
            + [" ..."]
            + [fmt.format(v) for v in values[-EDGEITEMS:].tolist()]
        )
    else:
        items = [fmt.format(v) for v in values.tolist()]

    # Each element takes its width plus ", "; at least one per line.
    per_line = max(1, (LINEWIDTH - indent) // (fmt.max_width + 2))
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _body(values, indent, summarize, fmt):
    """The bracketed text; ``indent`` is the column of the opening bracket."""
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _vector_str(values, indent, summarize, fmt)

    n = values.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        rows = list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n))
    else:
        rows = list(range(n))
    parts = [
        "..." if i is None else _body(values[i], indent + 1, summarize, fmt)
        for i in rows
    ]
    # Sub-blocks of a k-D tensor are separated by k-2 blank lines.
    separator = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def _add_suffixes(text, suffixes, indent):
    """Appends ``, suffix`` items, moving one to a new line when it would not fit.

    Suffixes name dtypes as ``torch.<dtype>`` here so that line breaks fall
    where torch puts them; the caller renames them afterwards. Measuring
    ``tapegrad.`` (3 characters longer) would wrap some lines that torch keeps
    whole, and the text would no longer match torch's with the name swapped.
    """
    # torch's measure of the last line is two more than its length when the
    # text has no newline (rfind gives -1); kept as is to wrap identically.
    last_line_len = len(text) - text.rfind("\n") + 1
    out = [text]
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            out.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last_line_len += len(suffix) + 2
    out.append(")")
    return "".join(out)


def tensor_repr(values, *, dtype_name, requires_grad=False, grad_fn_name=None):
    """``repr`` of a CPU tensor holding ``values`` (a numpy array), as torch prints it.

    ``dtype_name`` is one of 'float32', 'float64', 'int64', 'bool'. A tensor
    with a ``grad_fn`` shows it instead of ``requires_grad=True``.
    """
    if dtype_name not in _NUMPY_DTYPES:
        raise ValueError(f"unsupported dtype {dtype_name!r}")
    values = np.asarray(values, dtype=_NUMPY_DTYPES[dtype_name])
    indent = len(_PREFIX)
    suffixes = []

    if values.size == 0:
        body = "[]"
        # Like numpy, the shape is shown unless it is the plain (0,).
        if values.ndim != 1:
            suffixes.append("size=" + str(tuple(int(d) for d in values.shape)))
        # With no elements to look at, only float32 (the default dtype) goes
        # without saying: int64 and bool are named too.
        if dtype_name != "float32":
            suffixes.append("dtype=torch." + dtype_name)
    else:
        if dtype_name not in _IMPLICIT_DTYPES:
            suffixes.append("dtype=torch." + dtype_name)
        summarize = values.size > THRESHOLD
        fmt = _Formatter(_summarized(values) if summarize else values)
        body = _body(values, indent, summarize, fmt)

    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")

    text = _add_suffixes(_PREFIX + body, suffixes, indent)
    return text.replace("dtype=torch.", "dtype=tapegrad.")
