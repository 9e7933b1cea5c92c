"""The registry of tests/_registry.py covers every public function, and only real ones."""

import inspect

import pytest

import fastloss
import fastloss.reference

from _registry import NOT_LOSSES, OWN_SUITE, REGISTRY, public_functions


def test_every_public_function_has_a_registry_entry():
    missing = [n for n in public_functions() if n not in REGISTRY]
    assert not missing, f"fastloss.__all__ names without a tests/_registry.py entry: {missing}"


def test_own_suite_names_are_public_and_tested():
    import pathlib
    here = pathlib.Path(__file__).parent
    text = "".join((here / f).read_text()
                   for f in ("test_distance.py", "test_surface_metrics.py"))
    for name in sorted(OWN_SUITE):
        assert name in fastloss.__all__, name
        assert callable(getattr(fastloss.reference, name, None)), name
        assert f"fl.{name}(" in text or f"fastloss.{name}(" in text, \
            f"neither tests/test_distance.py nor tests/test_surface_metrics.py calls {name}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_entry_is_a_public_function(name):
    assert name in fastloss.__all__, f"{name} (in SPEC and the registry) is not in fastloss.__all__"
    assert callable(getattr(fastloss, name, None)), f"fastloss.{name} is missing"
    assert callable(getattr(fastloss.reference, name, None)), \
        f"fastloss.reference.{name} is missing"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_builds_valid_calls(name, rng):
    """The generator's default call is accepted (else every generic test is void)."""
    e = REGISTRY[name]
    fn = getattr(fastloss, name)
    params = inspect.signature(fn).parameters
    for dims in (e.bad_dims,):
        args, kwargs = e.call(rng, dims=dims, flags=e.full)
        unknown = [k for k in kwargs if k not in params]
        assert not unknown, f"{name}: registry passes unknown options {unknown}"
        fn(*args, **kwargs)


def test_not_losses_are_the_tools():
    assert NOT_LOSSES <= set(fastloss.__all__) | {"__version__"}
