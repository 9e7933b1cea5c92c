"""numpydoc entries that many public docstrings share, written once.

A docstring names a shared entry by a line that holds only ``%(key)s``;
:func:`doc` replaces that line with the entry, indented as the line was.
One text per option keeps the functions that take it saying the same thing
(``grad_out`` was described five ways before), and the family modules stay
readable: what is left in a docstring is what is particular to its loss.
The rendered docstring is what ``help()``, Sphinx, the doctests and
``tools/gen_stubs.py`` read.
"""

import re

ENTRIES = {
    # ---- the NumPy API
    "reduction": """\
reduction : {'mean', 'sum', 'none'}
    'none' gives the unreduced losses; 'mean' divides the sum by the
    number of terms (by the sum of ``sample_weight`` when given).""",
    "sample_weight": r"""sample_weight : array_like, optional
    Per-element weights broadcastable to the loss; 'mean' becomes
    :math:`\sum w\ell / \sum w`.""",
    "return_grad": """\
return_grad : bool
    Also return the gradient of the loss (for 'none': of the sum of the
    losses) with respect to the first input, from the same pass.""",
    "grad_out": """\
grad_out : ndarray, optional
    C-contiguous buffer of the first input's shape and float dtype for the
    gradient; it is filled and returned.  Needs ``return_grad=True``
    (without it: ``ValueError``).""",
    "grad_dtype": """\
grad_dtype : dtype, optional
    For float16/bfloat16 input: the gradient's dtype, the input's
    (default; rounded to nearest even) or float32.""",
    "n_threads": """\
n_threads : int, optional
    Upper bound on the threads the call uses (None: the default of
    :func:`fastloss.set_num_threads`).""",
    "loss_grad": """\
loss : NumPy scalar of the input's float dtype, or ndarray for 'none'
grad : ndarray of the first input's shape, only with ``return_grad=True``""",
    # ---- fastloss.torch
    "torch_legacy": """\
size_average, reduce : bool, optional
    Deprecated torch arguments, honoured as in torch.""",
    "torch_reduction": """\
reduction : {'mean', 'sum', 'none'}
    As in torch: 'none' gives the unreduced losses.""",
    "torch_loss": """\
loss : torch.Tensor
    0-d for 'mean' and 'sum', the unreduced losses for 'none'.""",
    # ---- fastloss.dask
    "dask_threads": """\
n_threads : int, optional
    Threads of each block's kernel call.""",
}

_SLOT = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.M)


def fill(text, entries=ENTRIES):
    """``text`` with each ``%(key)s`` line replaced by ``entries[key]``, indented
    as that line; an entry may name further entries."""
    def entry(m):
        return "\n".join(m.group(1) + line if line else line
                         for line in fill(entries[m.group(2)], entries).splitlines())
    return _SLOT.sub(entry, text)


def doc(func=None, **local):
    """Decorator filling the shared entries of ``func``'s docstring:
    ``@doc``, or ``@doc(key=text, ...)`` with entries of one module too."""
    entries = {**ENTRIES, **local}

    def apply(f):
        if f.__doc__:  # None under python -OO
            f.__doc__ = fill(f.__doc__, entries)
        return f
    return apply(func) if func is not None else apply
