"""Every equivariant layer and features extractor follows the EquivariantModule contract, checked over every element.

The classes are discovered, not listed: a new layer or extractor without a factory below (and so without the
contract) fails ``test_every_module_class_has_a_contract_check``.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

import sb3_equivariant
from sb3_equivariant.envs.registry import symmetry_for
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.group import cyclic_group, dihedral_group, flip_group
from sb3_equivariant.multiagent import TrafficLightsEnv, WildlifeEnv, traffic_symmetry, wildlife_symmetry
from sb3_equivariant.multiagent.policies import AgentwiseHead, MessagePassingExtractor
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear, GlobalPool2d, GroupPool
from sb3_equivariant.nn.base import EquivariantModule
from sb3_equivariant.policies import EquivariantActorCriticPolicy
from sb3_equivariant.policies.common import EquivariantMlpExtractor
from sb3_equivariant.policies.extractors import EquivariantCnnExtractor, EquivariantFeaturesExtractor
from sb3_equivariant.policies.recurrent import EquivariantLSTM
from sb3_equivariant.representation import (
    ImageAction,
    Representation,
    copies,
    dihedral_action,
    flip_action,
    permutation,
    regular,
    rotation_action,
    signed_permutation,
    trivial,
)

C2, C4, D4 = flip_group(), cyclic_group(4), dihedral_group(4)
GRID_ACTIONS = permutation(C4, {1: [0, 2, 3, 4, 1]})  # stay fixed, four moves turning
IMAGE_SYMMETRY = Symmetry(ImageAction(rotation_action(), channels=2), GRID_ACTIONS, name="c4_images")


def _message_passing(env: type, symmetry: Symmetry) -> MessagePassingExtractor:
    space = env().observation_space
    return MessagePassingExtractor(space, (2, 2), (3, 3), (2, 1), 3, 2, 2.0, 5.0, nn.ReLU, symmetry=symmetry)


FACTORIES: dict[str, Callable[[], EquivariantModule]] = {
    "EquivariantLinear": lambda: EquivariantLinear(regular(C4), GRID_ACTIONS, 2, 3),
    "EquivariantLinear-signed": lambda: EquivariantLinear(signed_permutation(C2, None, {1: [-1, 1, -1]}), regular(C2), 1, 4),
    "EquivariantConv2d": lambda: EquivariantConv2d(rotation_action(), 2, 3, 3, rep_in=regular(C4)),
    "EquivariantConv2d-lifting": lambda: EquivariantConv2d(flip_action("vertical"), 1, 2, 3, stride=2, rep_in=trivial(C2, 3)),
    "GroupPool": lambda: GroupPool(regular(D4), 3, "max"),
    "GroupPool-maps": lambda: GroupPool(regular(D4), 2, "mean", spatial=dihedral_action()),
    "GlobalPool2d": lambda: GlobalPool2d("max", field=ImageAction(dihedral_action(), copies(regular(D4), 2))),
    "GlobalPool2d-mean": lambda: GlobalPool2d("mean", field=ImageAction(rotation_action(), trivial(C4, 3))),
    "EquivariantCnnExtractor": lambda: EquivariantCnnExtractor(
        spaces.Box(0, 255, (2, 11, 11)), IMAGE_SYMMETRY, channels=[2, 2], kernel_sizes=[3, 3], strides=[2, 1], features_channels=3
    ),
    "EquivariantCnnExtractor-max": lambda: EquivariantCnnExtractor(
        spaces.Box(0, 255, (2, 9, 9)), IMAGE_SYMMETRY, [2], [3], [2], features_channels=2, pooling="max"
    ),
    "EquivariantMlpExtractor": lambda: EquivariantMlpExtractor(regular(C4), 2, {"pi": [3, 2], "vf": [2]}, nn.Tanh),
    "MessagePassingExtractor": lambda: _message_passing(WildlifeEnv, wildlife_symmetry(n_agents=3)),
    "MessagePassingExtractor-traffic": lambda: _message_passing(TrafficLightsEnv, traffic_symmetry()),
    "EquivariantLSTM": lambda: EquivariantLSTM(signed_permutation(C2, None, {1: [-1, 1, -1, -1]}), 1, 3, num_layers=2),
    "AgentwiseHead": lambda: AgentwiseHead(EquivariantLinear(regular(C4), GRID_ACTIONS, 2, 1), 3),
    "AgentwiseHead-pool": lambda: AgentwiseHead(EquivariantLinear(regular(C4), trivial(C4), 2, 1), 3, pool=True),
}


def _defined_in_package() -> set[type]:
    packages = ("nn", "policies", "multiagent")
    for info in pkgutil.walk_packages(sb3_equivariant.__path__, "sb3_equivariant."):
        if info.name.split(".")[1] in packages:
            importlib.import_module(info.name)
    classes: set[type] = set()
    stack = [nn.Module]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            # Only the walked packages: what other tests happened to import before (with pytest-xdist, in any order)
            # must not change the answer, e.g. the benchmark's plain baseline CNN.
            module = sub.__module__.split(".")
            if module[0] == "sb3_equivariant" and len(module) > 1 and module[1] in packages and not inspect.isabstract(sub):
                classes.add(sub)
    return classes


def _needs_contract(cls: type) -> bool:
    """
    Layers (``nn``, ``Equivariant*`` modules), features extractors (SB3's and the MLP extractor) and the multi-agent
    modules; not SB3 models (policies, actors, critics, Q-networks: the policy tests check those end to end).
    """
    if issubclass(cls, BaseModel):
        return False
    package = cls.__module__.split(".")[1]
    named = cls.__name__.startswith("Equivariant") or cls.__name__.endswith("Extractor")
    return package in ("nn", "multiagent") or issubclass(cls, BaseFeaturesExtractor) or named


def test_every_module_class_has_a_contract_check() -> None:
    discovered = {cls for cls in _defined_in_package() if _needs_contract(cls)}
    checked = {type(make()) for make in FACTORIES.values()}
    missing = sorted(cls.__qualname__ for cls in discovered - checked)
    assert not missing, f"modules without a contract check: {missing}; follow EquivariantModule and add a factory"
    outside = sorted(cls.__qualname__ for cls in discovered if not issubclass(cls, EquivariantModule))
    assert not outside, f"modules that do not subclass EquivariantModule: {outside}"


def _outputs(module: nn.Module, x: object) -> list[th.Tensor]:
    with th.no_grad():
        return _flat(module(x))


def _flat(y: object) -> list[th.Tensor]:
    return [leaf for part in y for leaf in _flat(part)] if isinstance(y, tuple) else [y]  # type: ignore[list-item]


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("training", [True, False])
def test_contract(name: str, training: bool) -> None:
    th.manual_seed(0)
    module = FACTORIES[name]()
    assert module.in_field is not None and module.out_field is not None
    inner = [sub for sub in module.modules() if isinstance(sub, EquivariantModule)]
    assert all(sub.in_field is not None and sub.out_field is not None for sub in inner)  # every part declares its types
    for sub in module.modules():  # random coefficients everywhere, biases included, so that nothing is zero by luck
        if isinstance(sub, EquivariantLinear | EquivariantConv2d) and sub.bias_coefficients is not None:
            nn.init.normal_(sub.bias_coefficients)
    module.train(training)
    assert module.check_equivariance() <= 1e-5  # every group element; raises AssertionError above 1e-5
    x = module.example_input()
    plain = module.export()
    assert not any(isinstance(sub, EquivariantModule) and sub.in_field is not None for sub in plain.modules())
    plain.train(training)
    for a, b in zip(_outputs(module, x), _outputs(plain, x), strict=True):
        th.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        # The paper's ablation: a random basis is not equivariant.
        lambda: EquivariantLinear(regular(C4), GRID_ACTIONS, 2, 3, basis="random"),
        # A correct pooling checked against a wrong declared type: sign-flipped channels are not invariant under max.
        lambda: _mislabeled_pool(),
    ],
)
def test_check_equivariance_fails_on_broken_modules(make: Callable[[], EquivariantModule]) -> None:
    module = make()
    with pytest.raises(AssertionError, match="is not equivariant"):
        module.check_equivariance()
    assert module.check_equivariance(atol=None) > 1e-3


def _mislabeled_pool() -> GlobalPool2d:
    pool = GlobalPool2d("max", field=ImageAction(flip_action("horizontal"), trivial(C2, 2)))
    pool.out_field = signed_permutation(C2, None, {1: [-1, -1]})
    return pool


def test_plain_modules_refuse_the_check() -> None:
    with pytest.raises(TypeError, match="built without a symmetry"):
        GlobalPool2d("max").check_equivariance()


class _PlainExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box):
        super().__init__(observation_space, features_dim=8)
        self.linear = nn.Linear(4, 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


class _DuckTypedExtractor(_PlainExtractor):
    """Declares out_rep / out_channels like an equivariant extractor, but nothing makes it equivariant."""

    def __init__(self, observation_space: spaces.Box, symmetry: Symmetry, basis: str = "equivariant"):
        super().__init__(observation_space)
        self.out_rep, self.out_channels = regular(C2), 4


class _FlattenSubclass(FlattenExtractor):
    def forward(self, observations: th.Tensor) -> th.Tensor:
        return super().forward(observations).abs()


class _MirrorPairExtractor(EquivariantFeaturesExtractor):
    """A user's equivariant extractor: one equivariant layer from CartPole's sign flip to regular channels."""

    def __init__(self, observation_space: spaces.Box, symmetry: Symmetry, basis: str = "equivariant"):
        super().__init__(observation_space, regular(symmetry.group), 3)
        assert isinstance(symmetry.obs_action, Representation)
        self.in_field = symmetry.obs_action
        self.layer = EquivariantLinear(symmetry.obs_action, regular(symmetry.group), 1, 3, basis=basis)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.relu(self.layer(observations))

    def export(self) -> nn.Module:
        return nn.Sequential(self.layer.export(), nn.ReLU())

    def example_input(self, batch_size: int = 2) -> th.Tensor:
        return th.randn(batch_size, 4)


@pytest.mark.parametrize("extractor", [_PlainExtractor, _DuckTypedExtractor, _FlattenSubclass])
def test_policies_refuse_extractors_outside_the_contract(extractor: type[BaseFeaturesExtractor]) -> None:
    with pytest.raises(SymmetryError, match=f"{extractor.__name__} is not an equivariant features extractor.*FlattenExtractor"):
        PPO(
            EquivariantActorCriticPolicy,
            "CartPole-v1",
            policy_kwargs=dict(symmetry="CartPole-v1", features_extractor_class=extractor),
        )


@pytest.mark.parametrize("extractor", [FlattenExtractor, _MirrorPairExtractor])
def test_policies_accept_flatten_and_contract_extractors(extractor: type[BaseFeaturesExtractor]) -> None:
    model = PPO(
        EquivariantActorCriticPolicy,
        "CartPole-v1",
        seed=0,
        policy_kwargs=dict(symmetry="CartPole-v1", features_extractor_class=extractor),
    )
    symmetry = symmetry_for("CartPole-v1")
    obs = th.randn(5, 4)
    with th.no_grad():
        values, probs = model.policy.predict_values(obs), model.policy.get_distribution(obs).distribution.probs
        moved = -obs  # the flip, on every observation
        th.testing.assert_close(model.policy.predict_values(moved), values, atol=1e-5, rtol=0)
        flipped = model.policy.get_distribution(moved).distribution.probs
        th.testing.assert_close(flipped, symmetry.action_rep.apply(probs, 1), atol=1e-5, rtol=0)
