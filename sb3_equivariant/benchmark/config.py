"""
Hyperparameters of every (algorithm, env, method) from one source: the YAML files in ``sb3_equivariant/zoo_configs/``
(package data; ``zoo_configs/`` in a checkout links to it).

- ``zoo_configs/<name>.yml`` is an rl_zoo3 hyperparameter file (top-level keys are env ids; the entry is the
  *baseline*), plus a top-level ``sb3_equivariant:`` section that rl_zoo3 ignores: the algorithm ``family`` and
  per-env, per-method overrides.
- ``zoo_configs/methods.yml`` defines each method as an overlay on the baseline, per family.

:func:`method_hyperparams` merges baseline, method overlay and per-env override into one structured dict (plain
data). :func:`zoo_hyperparams` renders it for rl_zoo3 (its ``.py`` config files, where classes may be real objects;
``policy`` stays a dotted string); :func:`model_kwargs` renders it for our runner. Nothing is ever ``eval``-ed:
rl_zoo3-style ``policy_kwargs`` strings (``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``) are parsed by
:func:`parse_kwargs_string`, which accepts only ``dict(...)`` calls, literals and allowlisted dotted names.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: Where the configs live: ``sb3_equivariant/zoo_configs/``, package data (``zoo_configs/`` in a checkout links to it).
ZOO_CONFIGS = Path(__file__).resolve().parent.parent / "zoo_configs"
#: Section of a zoo config that rl_zoo3 ignores (it only reads env-id keys).
SECTION = "sb3_equivariant"
#: Modules whose classes a config may name (dotted paths are imported only under these prefixes).
ALLOWED_MODULES = ("torch.nn", "stable_baselines3", "sb3_contrib", "sb3_equivariant", "rl_zoo3")
#: Short names accepted in rl_zoo3-style strings, as rl_zoo3's own namespace provides them.
SHORT_NAMES = {
    "nn": "torch.nn",
    "th": "torch",
    "torch": "torch",
    "RMSpropTFLike": "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
}
#: Keys whose (dotted string) values are classes.
CLASS_KEYS = (
    "policy",
    "features_extractor_class",
    "activation_fn",
    "optimizer_class",
    "rollout_buffer_class",
    "replay_buffer_class",
    "callback",
)
#: Keys that are keyword dicts, merged key by key.
KWARGS_KEYS = ("policy_kwargs", "rollout_buffer_kwargs", "replay_buffer_kwargs", "env_kwargs")
#: Keys that configure the env, the run or the algorithm class rather than the algorithm's constructor (rl_zoo3's,
#: and ``algorithm`` of ``methods.yml``).
ZOO_ONLY_KEYS = (
    "algorithm",
    "n_envs",
    "n_timesteps",
    "normalize",
    "env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "vec_env_wrapper",
    "monitor_kwargs",
    "noise_type",
    "noise_std",
)


class ConfigError(ValueError):
    """A zoo config is missing, malformed or names something it may not."""


def config_path(name: str) -> Path:
    """
    :param name: ``"ppo"`` / ``"ppo.yml"`` (in ``zoo_configs/``) or a path to a YAML file.
    :return: the path of the YAML file.
    """
    path = Path(name)
    if path.suffix not in (".yml", ".yaml"):
        path = ZOO_CONFIGS / f"{name}.yml"
    elif not path.exists() and not path.is_absolute():
        path = ZOO_CONFIGS / path
    if not path.exists():
        available = sorted(p.stem for p in ZOO_CONFIGS.glob("*.yml") if p.stem != "methods")
        raise ConfigError(f"no zoo config {name!r} (looked for {path}); available: {', '.join(available)}")
    return path


def load_yaml(path: Path) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_methods() -> dict[str, dict[str, Any]]:
    """``methods.yml``: family -> method -> overlay."""
    return load_yaml(ZOO_CONFIGS / "methods.yml")


def env_ids(name: str) -> list[str]:
    """The env ids (and ``atari``) a zoo config has entries for."""
    return [k for k in load_yaml(config_path(name)) if k != SECTION]


def methods_of(name: str) -> list[str]:
    """The methods available for the family of zoo config ``name``."""
    data = load_yaml(config_path(name))
    return list(load_methods()[_family(data, name)])


def _family(data: dict[str, Any], name: str) -> str:
    family = data.get(SECTION, {}).get("family")
    if family is None:
        raise ConfigError(f"zoo config {name!r} has no `{SECTION}: family:` entry")
    return family


def method_hyperparams(name: str, env_id: str, method: str) -> dict[str, Any]:
    """
    The structured hyperparameters of ``method`` on ``env_id``: the baseline entry, the method's overlay, then the
    per-env override (plain data: dotted strings for classes, ``"lin_x"`` schedules as rl_zoo3 writes them).

    :param name: zoo config (``"ppo"``, ``"ppo_paper"``...).
    :param env_id: env id (an Atari id falls back to the ``atari`` entry as in rl_zoo3).
    :param method: a method of the config's family (see ``methods.yml``).
    """
    data = load_yaml(config_path(name))
    family = _family(data, name)
    methods = load_methods().get(family)
    if methods is None:
        raise ConfigError(f"methods.yml has no family {family!r}")
    if method not in methods:
        raise ConfigError(f"unknown method {method!r} for {name} ({family}); choose one of {', '.join(methods)}")
    key = env_id if env_id in data else ("atari" if _is_atari(env_id) and "atari" in data else None)
    if key is None or key == SECTION:
        raise ConfigError(f"zoo config {name!r} has no entry for {env_id!r}; it has {', '.join(env_ids(name))}")
    params = copy.deepcopy(data[key])
    if isinstance(params.get("policy_kwargs"), str):
        params["policy_kwargs"] = parse_kwargs_string(params["policy_kwargs"])
    overlay = copy.deepcopy(methods[method] or {})
    if isinstance(overlay.get("policy"), dict):
        base_policy = params.get("policy")
        if base_policy not in overlay["policy"]:
            raise ConfigError(f"method {method!r} has no policy for the baseline policy {base_policy!r}")
        overlay["policy"] = overlay["policy"][base_policy]
    params = merge(params, overlay)
    override = data.get(SECTION, {}).get("envs", {}).get(key, {}).get(method)
    return merge(params, override or {})


def _is_atari(env_id: str) -> bool:
    return "NoFrameskip" in env_id or env_id.startswith("ALE/")


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overlay``; ``*_kwargs`` dicts merged key by key; a ``None`` value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif key in KWARGS_KEYS and isinstance(value, dict):
            out[key] = merge(out.get(key) or {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Safe parsing of rl_zoo3-style strings
# ---------------------------------------------------------------------------------------------------------------------


def parse_kwargs_string(text: str) -> dict[str, Any]:
    """
    Parse an rl_zoo3 ``policy_kwargs``-style string without evaluating it: ``dict(key=value, ...)`` or a ``{...}``
    literal whose values are literals, lists/tuples, nested ``dict(...)`` and dotted names (``nn.ReLU``), which are
    returned as dotted strings (``"torch.nn.ReLU"``) for :func:`resolve_class`.

    :raises ConfigError: for anything else (calls other than ``dict``, operators, comprehensions...).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"cannot parse {text!r}: {err}") from None
    value = _literal(tree.body, text)
    if not isinstance(value, dict):
        raise ConfigError(f"expected dict(...) in {text!r}")
    return value


def _literal(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e, text) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_literal(k, text): _literal(v, text) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _literal(kw.value, text) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _dotted(node, text)
    raise ConfigError(f"unsupported expression {ast.unparse(node)!r} in {text!r}: only dict(...), literals and names")


def _dotted(node: ast.AST, text: str) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ConfigError(f"unsupported name in {text!r}")
    if node.id not in SHORT_NAMES:
        raise ConfigError(f"unknown name {node.id!r} in {text!r}; known: {', '.join(SHORT_NAMES)}")
    parts.append(SHORT_NAMES[node.id])
    return ".".join(reversed(parts))


def resolve_class(path: str) -> Any:
    """Import ``module.Name`` for an allowlisted module (see :data:`ALLOWED_MODULES`)."""
    if not isinstance(path, str) or "." not in path:
        raise ConfigError(f"expected a dotted path such as 'torch.nn.ReLU', got {path!r}")
    module, _, attr = path.rpartition(".")
    if not module.startswith(ALLOWED_MODULES):
        raise ConfigError(f"{path!r} is not under an allowed module ({', '.join(ALLOWED_MODULES)})")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot import {path!r}: {err}") from None


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def _resolve(params: dict[str, Any], symmetry: Callable[[], Any], policy_as_string: bool) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for key in CLASS_KEYS:
        if key in out and isinstance(out[key], str) and "." in out[key]:
            if key == "callback" or (key == "policy" and policy_as_string):
                continue
            out[key] = resolve_class(out[key])
    for key in KWARGS_KEYS:
        if isinstance(out.get(key), dict):
            out[key] = _resolve(out[key], symmetry, policy_as_string)
            if out[key].get("symmetry") == "env":
                out[key]["symmetry"] = symmetry()
    return out


def zoo_hyperparams(name: str, method: str) -> dict[str, dict[str, Any]]:
    """
    ``hyperparams`` for an rl_zoo3 ``.py`` config file: every env of zoo config ``name`` with ``method`` applied,
    classes imported, ``symmetry: env`` replaced by the registry's symmetry (vector observations and GridWorld; not for
    Atari, whose observations rl_zoo3 wraps). ``policy`` stays a dotted string, as rl_zoo3 requires.
    """
    from sb3_equivariant.envs import symmetry_for

    out = {}
    for env_id in env_ids(name):
        params = method_hyperparams(name, env_id, method)
        if "algorithm" in params:
            raise ConfigError(
                f"method {method!r} trains with {', '.join(params['algorithm'].values())}, which an rl_zoo3 config cannot "
                f"choose (rl_zoo3 takes the class from --algo): run it with `python -m sb3_equivariant.benchmark`"
            )
        if env_id == "atari" and _needs_env_symmetry(params):
            continue  # rl_zoo3 wraps Atari frames after the fact: the registry's symmetry is on raw frames
        out[env_id] = _resolve(params, functools.partial(symmetry_for, env_id), policy_as_string=True)
    return out


def _needs_env_symmetry(params: dict[str, Any]) -> bool:
    return any(isinstance(params.get(k), dict) and params[k].get("symmetry") == "env" for k in KWARGS_KEYS)


def model_kwargs(params: dict[str, Any], symmetry: Callable[[], Any]) -> dict[str, Any]:
    """
    Keyword arguments for the algorithm's constructor (``policy`` included): rl_zoo3-only keys dropped, classes
    imported, ``lin_x`` schedules made functions, ``symmetry: env`` resolved by ``symmetry()``.
    """
    out = _resolve({k: v for k, v in params.items() if k not in ZOO_ONLY_KEYS}, symmetry, policy_as_string=False)
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        if isinstance(out.get(key), str):
            out[key] = linear_schedule(out[key])
    if isinstance(out.get("train_freq"), list):
        out["train_freq"] = tuple(out["train_freq"])
    return out


class LinearSchedule:
    """rl_zoo3's ``lin_x``: from ``x`` at the start to 0 at the end (picklable)."""

    def __init__(self, initial_value: float):
        self.initial_value = float(initial_value)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial_value

    def __repr__(self) -> str:
        return f"lin_{self.initial_value}"


def linear_schedule(text: str) -> LinearSchedule:
    """:param text: ``"lin_0.001"``."""
    kind, _, value = text.partition("_")
    if kind != "lin":
        raise ConfigError(f"unknown schedule {text!r}; only rl_zoo3's 'lin_<value>' is supported")
    return LinearSchedule(float(value))


def action_noise(params: dict[str, Any], action_space: Any) -> Any:
    """
    rl_zoo3's ``noise_type`` (``"normal"`` or ``"ornstein-uhlenbeck"``) and ``noise_std`` as SB3 action noise, as
    rl_zoo3 builds it (the same std on every action dimension); ``None`` without ``noise_type``.
    """
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    kind = params.get("noise_type")
    if kind is None:
        return None
    n_actions = int(np.prod(action_space.shape))
    mean, sigma = np.zeros(n_actions), float(params["noise_std"]) * np.ones(n_actions)
    if "normal" in kind:
        return NormalActionNoise(mean=mean, sigma=sigma)
    if "ornstein-uhlenbeck" in kind:
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    raise ConfigError(f"unknown noise_type {kind!r}; rl_zoo3 knows 'normal' and 'ornstein-uhlenbeck'")


def callbacks_of(params: dict[str, Any]) -> list[Any]:
    """The callback instances named by ``callback`` (a dotted string or a list of them)."""
    names = params.get("callback") or []
    names = [names] if isinstance(names, str) else list(names)
    return [resolve_class(n)() for n in names]
