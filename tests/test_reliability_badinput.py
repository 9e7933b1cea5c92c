"""The bad-input matrix (tests/_badinputs.py) for every registered function.

Each bad call must raise ValueError or TypeError whose message names the
argument; degenerate legal calls (empty batches) must not crash.  The whole
matrix runs once more in a child process, so that a crash (segfault, abort)
fails a test instead of killing the test run.
"""

import json

import pytest

import fastloss

from _badinputs import cases, check
from _registry import REGISTRY
from conftest import run_python


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bad_inputs(name, record_property):
    fn = getattr(fastloss, name, None)
    assert fn is not None, f"fastloss.{name} is missing"
    tried, failures = 0, []
    for case in cases(REGISTRY[name], fn):
        tried += 1
        err = check(fn, case)
        if err:
            failures.append(f"[{case.label}] {err}")
    record_property("bad_inputs_tried", tried)
    print(f"\n{name}: {tried} bad inputs tried")
    assert not failures, f"{name}: {len(failures)} of {tried} bad inputs misbehave:\n" + \
        "\n".join(failures)


CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {tests!r})
import _badinputs
n, failures = _badinputs.run()
print("RESULT " + json.dumps({{"tried": n, "failures": failures}}))
"""


def test_bad_input_matrix_in_child_process(record_property):
    import os

    tests = os.path.dirname(os.path.abspath(__file__))
    proc = run_python(CHILD.format(tests=tests), timeout=600)
    assert proc.returncode == 0, (
        f"the bad-input matrix crashed the child process (exit {proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    record_property("bad_inputs_tried", res["tried"])
    print(f"\nbad-input matrix in a child process: {res['tried']} bad inputs tried over "
          f"{len(REGISTRY)} functions, {len(res['failures'])} misbehaved")
    assert res["tried"] > 1000, f"only {res['tried']} bad inputs tried"
    # behaviour is asserted per function by test_bad_inputs; here only that nothing crashed
