"""List per-element helpers that gcc left as calls in the built kernel modules.

    python tools/check_inlining.py [MODULE ...]

gcc stops inlining in a module once inlining has grown it by
``--param inline-unit-growth`` percent; a per-element helper it then leaves
out of line costs a call per element and the loop's vectors (5-14x, see the
design page's contributor notes).  This disassembles each built module
(``fastloss/_<target>/_<name>*.so``, in place and not stripped) with
``objdump -d`` and counts the calls to the helpers that must be inlined:
fastloss's exp / log wrappers in ``_common.pxd``, the boosting objectives
of ``_gbdt_math.pxd``, the element formulas of ``_elementwise`` and their
helpers in ``_elem_math.pxd``, the per-value functions of
``_embedding_math.pxd``.  Per-row and per-block
functions (``row_sumexp``, ``lanes_sum``, ``grad_row``, ``pdiff_sum``,
``_chunk``) may be calls and are not counted.  Exit status 1 when any call is found, 2 when
there is nothing to read.
"""

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the mangled names Cython gives these functions end with the pxd or module
# name and the function name (``__pyx_fuse_1__pyx_f_7_common_vlog``)
MUST_INLINE = re.compile(
    r"<(\S*?_(?:"
    r"7_common_(?:vexp|vexp_lo|vexp_neg|vfma|vlog|vlog1p|log1p_unit|sigmoid|vabs|safe_shift)"
    r"|10_gbdt_math_\w+"
    r"|12_elementwise_(?:elem|tail_at|tail_arg|is_bad)"
    r"|10_elem_math_\w+"
    r"|15_embedding_math_(?:pw|dist_finish|dist_factor|phi|sq_diff)"
    r"))(?:\.\w+)*>"
)


def calls(so):
    """Counter of the must-inline helpers called in the module ``so``."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)],
                         capture_output=True, text=True, check=True).stdout
    found = Counter()
    for line in out.splitlines():
        if "call" in line:
            m = MUST_INLINE.search(line)
            if m:
                found[m.group(1)] += 1
    return found


def main(argv):
    if shutil.which("objdump") is None:
        print("objdump not found (binutils)", file=sys.stderr)
        return 2
    mods = sorted(ROOT.glob("fastloss/_*/_*.so"))
    if argv:
        mods = [m for m in mods if m.name.split(".")[0] in argv]
    if not mods:
        print("no built kernel module (python setup.py build_ext --inplace)", file=sys.stderr)
        return 2
    bad = 0
    for so in mods:
        found = calls(so)
        rel = so.relative_to(ROOT)
        if not found:
            print(f"ok    {rel}")
            continue
        bad += 1
        print(f"CALLS {rel}")
        for name, n in found.most_common():
            print(f"      {n:4d}  {name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
