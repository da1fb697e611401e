"""The set-up every equivariant SB3 policy shares: its symmetry, basis kind, sizing, default widths and extractor."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from torch import nn

from sb3_equivariant.envs.discovery import constructing_algorithm, resolve_symmetry
from sb3_equivariant.envs.symmetry import Symmetry, SymmetryError
from sb3_equivariant.policies.common import DEFAULT_SIZING, apply_init, check_sizing, default_width, extractor_kwargs
from sb3_equivariant.policies.pairing import check_pairing
from sb3_equivariant.symmetrizer import BASIS_KINDS

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class SymmetricPolicyMixin:
    """
    Put before an SB3 policy class: before SB3 builds anything, the pairing with the algorithm is checked (a policy of
    another family fails with the name of the right one) and the policy's symmetry is resolved once (``symmetry=`` or
    the env's, see :func:`~sb3_equivariant.envs.discovery.resolve_symmetry`), then saved with the policy. Used by the
    equivariant and the symmetrized policies.

    :param observation_space: observation space.
    :param action_space: action space.
    :param lr_schedule: learning rate schedule.
    :param symmetry: the env's :class:`Symmetry` or a registered env id (``"CartPole-v1"``); default: found on the
        env the algorithm is given (made with ``make_symmetric_env`` & co.).
    :param kwargs: the SB3 policy's other keyword arguments.
    """

    #: Whether the policy handles ``Dict`` observation spaces.
    dict_observations: ClassVar[bool] = False
    #: Whether the policy is a symmetrized one (an ordinary network averaged over the orbit), for the pairing errors.
    symmetrized: ClassVar[bool] = False

    symmetry: Symmetry

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        *,
        symmetry: Symmetry | str | None = None,
        **kwargs: Any,
    ):
        algorithm = constructing_algorithm(self)
        check_pairing(type(self), algorithm)  # type: ignore[arg-type]
        kwargs = self._check_arguments(action_space, algorithm, kwargs)
        self.symmetry = resolve_symmetry(
            symmetry,
            observation_space,
            action_space,
            type(self).__name__,
            algorithm=algorithm,
            record_in="policy_kwargs",
            allow_dict=self.dict_observations,
        )
        kwargs = self._finish_kwargs(action_space, kwargs)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)  # type: ignore[call-arg]

    def _check_arguments(
        self, action_space: spaces.Space, algorithm: BaseAlgorithm | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Checks before the symmetry is resolved; returns the keyword arguments left for SB3."""
        return kwargs

    def _finish_kwargs(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for SB3, once ``self.symmetry`` is known (and checks of it)."""
        return kwargs

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "symmetry": self.symmetry}  # type: ignore[misc]


class EquivariantPolicyMixin(SymmetricPolicyMixin):
    """
    Put before an SB3 policy class (``class EquivariantDQNPolicy(EquivariantPolicyMixin, DQNPolicy)``): before SB3
    builds anything it checks the pairing with the algorithm, resolves the symmetry (see
    :class:`SymmetricPolicyMixin`), fills in the default widths and hands the symmetry to the features extractor;
    ``symmetry``, ``basis``, ``sizing`` (and ``init``) are saved with the policy.

    A family sets :attr:`action_spaces` and overrides :meth:`_default_widths`, :meth:`_net_arch` and
    :meth:`_finish_kwargs` where it differs; its image variant sets :attr:`default_features_extractor_class`.

    :param observation_space: observation space.
    :param action_space: action space.
    :param lr_schedule: learning rate schedule.
    :param symmetry: the env's :class:`Symmetry` or a registered env id (``"CartPole-v1"``); default: found on the
        env the algorithm is given (made with ``make_symmetric_env`` & co.).
    :param basis: ``"equivariant"`` (default), or the paper's ablations ``"nullspace"`` / ``"random"``.
    :param sizing: how default widths are chosen when ``net_arch`` is not given: ``"channels"`` (SB3's widths counted
        in regular channels), ``"parameters"`` (divided by ``√|G|``: about SB3's parameter count) or ``"units"``
        (divided by ``|G|``: SB3's number of units). Default: ``"parameters"`` (see docs/results.md, "Default widths").
    :param init: the equivariant layers' init (:attr:`init_choices`, default first), saved with the policy.
        Actor-critic policies: ``"orthogonal"`` or ``"he"``, applied under SB3's ``ortho_init``, see
        :func:`~sb3_equivariant.policies.common.init_module`; DQN, QR-DQN, SAC and TD3 policies: ``"torch"`` or
        ``"he"``, see :func:`~sb3_equivariant.policies.common.apply_init`.
    :param kwargs: the SB3 policy's other arguments; ``net_arch`` is in channels of the regular representation
        (``|G|`` units each).
    """

    #: The features extractor used when ``features_extractor_class`` is not given.
    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor
    #: The action spaces the family supports.
    action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)
    dict_observations = True

    #: Values of the ``init`` argument, default first; empty: the family has no ``init`` argument.
    init_choices: ClassVar[tuple[str, ...]] = ()

    basis: str
    sizing: str | None
    init: str | None

    def _check_arguments(
        self, action_space: spaces.Space, algorithm: BaseAlgorithm | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if kwargs.get("use_sde"):
            raise ValueError(
                "gSDE (use_sde=True) is not supported by equivariant policies: its state-dependent noise matrix is not "
                "constrained by the symmetry. Use the default diagonal Gaussian."
            )
        if not isinstance(action_space, self.action_spaces):
            supported = ", ".join(space.__name__ for space in self.action_spaces)
            raise SymmetryError(f"{type(self).__name__} supports {supported} action spaces, got {action_space}")
        basis, sizing = kwargs.pop("basis", "equivariant"), kwargs.pop("sizing", None)
        if basis not in BASIS_KINDS:
            raise ValueError(f"unknown basis {basis!r}; choose one of {BASIS_KINDS}")
        self.basis = basis
        self.sizing = None if sizing is None else check_sizing(sizing)
        init = kwargs.pop("init", None)
        if init is not None and not self.init_choices:
            raise ValueError(f"{type(self).__name__} has no `init` argument: it starts with SB3's init for its family")
        if init is not None and init not in self.init_choices:
            raise ValueError(f"unknown init {init!r}; choose one of {self.init_choices}")
        if init is not None and kwargs.get("ortho_init") is False:
            raise ValueError(
                f"init={init!r} is applied by SB3's orthogonal init, which ortho_init=False turns off: drop one of them"
            )
        self.init = init or (self.init_choices[0] if self.init_choices else None)
        return kwargs

    def _finish_kwargs(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
        extractor = kwargs.get("features_extractor_class") or self.default_features_extractor_class
        net_arch = kwargs.get("net_arch")
        if net_arch is None:
            order, sizing = len(self.symmetry), self.sizing or DEFAULT_SIZING
            net_arch = [default_width(width, order, sizing) for width in self._default_widths(extractor)]
        return {
            **kwargs,
            "net_arch": self._net_arch(net_arch),
            "features_extractor_class": extractor,
            "features_extractor_kwargs": extractor_kwargs(
                extractor, kwargs.get("features_extractor_kwargs"), self.symmetry, self.basis, self.sizing
            ),
        }

    def _default_widths(self, features_extractor_class: type[BaseFeaturesExtractor]) -> list[int]:
        """SB3's default hidden widths (in units) of this family: ``[64, 64]`` after a flat extractor, none after a CNN."""
        return [] if self.default_features_extractor_class is not FlattenExtractor else [64, 64]

    def _net_arch(self, net_arch: Any) -> Any:
        """``net_arch`` as the SB3 class takes it."""
        return net_arch

    def _initialized(self, net: ModuleT) -> ModuleT:
        """``net`` (one the family builds) with this policy's ``init`` where the family has one, on its device."""
        if self.init is not None:
            apply_init(net, self.init)
        return net.to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        params = {**super()._get_constructor_parameters(), "basis": self.basis, "sizing": self.sizing}
        return {**params, "init": self.init} if self.init_choices else params
