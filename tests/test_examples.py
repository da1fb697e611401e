"""The examples do what they say: a custom symmetry verified against the dynamics, reproducible evaluations."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from sb3_equivariant import SymmetricEnv, SymmetryError, check_symmetry
from sb3_equivariant.group import flip_group
from sb3_equivariant.representation import permutation

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_symmetry_is_verified_against_the_dynamics() -> None:
    example = _example("custom_symmetry")
    symmetry = example.corridor_symmetry()
    env = SymmetricEnv(example.Corridor(), symmetry)
    report = check_symmetry(env, n_samples=16, seed=0, strict=True)
    assert report.dynamics_verified and report["transition"].n_checked > 0
    assert str(report).splitlines()[0].endswith(": passed")
    # without the state transform the verifier says so, and strict refuses
    unchecked = check_symmetry(env, symmetry.replace(state_transform=None), n_samples=16, seed=0)
    assert "dynamics not checked: no state_transform" in str(unchecked) and ": passed" not in str(unchecked)
    with pytest.raises(SymmetryError, match="no state_transform"):
        check_symmetry(env, symmetry.replace(state_transform=None), n_samples=16, seed=0, strict=True)
    # a wrong action map (left stays left) passes the group-action checks but not the dynamics
    wrong = symmetry.replace(action_rep=permutation(flip_group(), {1: [0, 1, 2]}))
    with pytest.raises(SymmetryError, match="transition"):
        check_symmetry(env, wrong, n_samples=16, seed=0, strict=True)


@pytest.mark.parametrize(
    ("name", "steps", "kwargs"),
    [("dqn_cartpole", 300, {}), ("dqn_cartpole", 300, {"algo": "qrdqn"}), ("augmentation_baselines", 256, {})],
)
def test_example_evaluation_is_seeded_and_monitored(
    name: str, steps: int, kwargs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    example = _example(name)
    outputs = []
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            example.main(steps, **kwargs)
        assert not [w for w in caught if "Monitor" in str(w.message)], [str(w.message) for w in caught]
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]  # seeded: the same evaluation every run
    assert "475 counts as solved" in outputs[0]
