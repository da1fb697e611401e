"""Named experiments: what ``python -m sb3_equivariant.benchmark --preset NAME`` runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sb3_equivariant.benchmark.runner import RunSpec

#: Steps-to-threshold targets. CartPole: the gymnasium "solved" level. Acrobot: gymnasium's reward threshold.
#: GridWorld: 0.6, i.e. the prey caught within about 5 steps on average. The return is 1 - 0.1 * (steps - 1) when
#: the prey is caught and -10 when it never is (100 steps); a greedy oracle that walks towards the prey scores 0.73
#: and uniformly random actions -4.8 (300 episodes each); see docs/results.md. Pong: -15 (6 points won per game;
#: more thresholds with --thresholds).
#: Pendulum: -200, a swing-up held upright (random torques: -1208 +/- 294 over 100 episodes). CartPoleNoVel:
#: CartPole's 475. Walker2d: 2000, walking (standing still for the 1000 steps earns about 1000 of healthy reward).
THRESHOLDS = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "sb3_equivariant/GridWorld-v0": 0.6,
    "PongNoFrameskip-v4": -15.0,
    "Pendulum-v1": -200.0,
    "sb3_equivariant/CartPoleNoVel-v1": 475.0,
    "Walker2d-v5": 2000.0,
}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """
    A grid of runs: one env and algorithm, several methods and seeds.

    :param name: experiment name (results go to ``<results>/<name>/``).
    :param config: zoo config (``zoo_configs/<config>.yml``).
    :param algo: algorithm of that config.
    :param env_id: env id.
    :param methods: methods of ``methods.yml``; the first is the reference for ratios and probabilities of improvement.
    :param seeds: seeds.
    :param n_timesteps: budget per run (env steps).
    :param eval_freq: env steps between deterministic evaluations (a multiple of the number of training envs).
    :param n_eval_episodes: episodes per evaluation.
    :param learning_rates: if given, a sweep: every method runs with every learning rate (labels ``method@lr``).
    :param lr_from: name of a sweep experiment; each method uses its best learning rate there (IQM of the AUC).
    :param description: one line for ``--list``.
    :param scratch: results go under ``runs/`` (not committed) by default, so that a fresh checkout trains them
        (the demo) instead of finding them done.
    """

    name: str
    config: str
    algo: str
    env_id: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    n_timesteps: int
    eval_freq: int
    n_eval_episodes: int = 10
    learning_rates: tuple[float, ...] = ()
    lr_from: str | None = None
    description: str = ""
    scratch: bool = False

    @property
    def threshold(self) -> float | None:
        return THRESHOLDS.get(self.env_id)

    def specs(self, results_root: str | Path = "results") -> list[RunSpec]:
        """The runs, seed-major (every method's seed 0 first): an interrupted grid is balanced across methods."""
        base: dict[str, Any] = dict(
            experiment=self.name,
            config=self.config,
            algo=self.algo,
            env_id=self.env_id,
            n_timesteps=self.n_timesteps,
            eval_freq=self.eval_freq,
            n_eval_episodes=self.n_eval_episodes,
        )
        chosen = best_learning_rates(Path(results_root) / self.lr_from) if self.lr_from else {}
        specs = []
        for seed in self.seeds:
            for method in self.methods:
                if self.learning_rates:
                    for lr in self.learning_rates:
                        specs.append(
                            RunSpec(
                                method=method, seed=seed, overrides=(("learning_rate", lr),), label=f"{method}@lr={lr:g}", **base
                            )
                        )
                elif self.lr_from:
                    if method not in chosen:
                        raise ValueError(
                            f"{self.name} takes learning rates from {self.lr_from}, which has no finished runs of {method!r}: "
                            f"run `python -m sb3_equivariant.benchmark --preset {self.lr_from}` first"
                        )
                    specs.append(RunSpec(method=method, seed=seed, overrides=(("learning_rate", chosen[method]),), **base))
                else:
                    specs.append(RunSpec(method=method, seed=seed, **base))
        return specs


def best_learning_rates(sweep_dir: Path) -> dict[str, float]:
    """
    For each method of a finished sweep, the learning rate with the highest IQM of the area under the curve. A
    learning rate with a failed run (diverged) or fewer finished runs than the others is not eligible.
    """
    from sb3_equivariant.benchmark.aggregate import load_experiment, run_scores

    curves = load_experiment(sweep_dir)
    n_full = max((len(runs) for runs in curves.values()), default=0)
    failed = {p.parent.parent.name for p in Path(sweep_dir).glob("*/*/seed*/failed.json")}
    best: dict[str, tuple[float, float]] = {}
    for label, runs in curves.items():
        method, _, lr = label.partition("@lr=")
        if not lr or label in failed or len(runs) < n_full:
            continue
        auc = run_scores(runs, threshold=None)["auc"]
        score = float(_iqm(auc))
        if method not in best or score > best[method][0]:
            best[method] = (score, float(lr))
    return {method: lr for method, (_, lr) in best.items()}


def _iqm(values: object) -> float:
    import numpy as np
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(values, dtype=float)[:, None]))


PAPER_METHODS = ("baseline", "equivariant", "nullspace", "random", "augment_random")
OFF_POLICY_METHODS = ("baseline", "equivariant", "replay_random", "replay_all")
#: DQN's methods (QR-DQN: all but the last; there is no symmetrized QR-DQN policy).
DQN_METHODS = ("baseline", "equivariant", "replay_random", "replay_all", "replay_store", "symmetrised")
#: The rl_zoo3-tuned CartPole PPO protocol of the default-choosing experiments: 10 seeds, 40k steps, an evaluation
#: of 20 episodes every 1024 steps.
CARTPOLE_ZOO: dict[str, Any] = dict(
    config="ppo", algo="ppo", env_id="CartPole-v1", seeds=tuple(range(10)), n_timesteps=40_000, eval_freq=1_024,
    n_eval_episodes=20,
)  # fmt: skip
#: CartPole-v1 with rl_zoo3's DQN (its 50k-step budget), for the DQN side studies (init, sizing).
DQN_CARTPOLE: dict[str, Any] = dict(
    config="dqn", algo="dqn", env_id="CartPole-v1", seeds=tuple(range(10)), n_timesteps=50_000, eval_freq=2_000,
    n_eval_episodes=10,
)  # fmt: skip
#: The sizing rules side by side (`equivariant`, the default rule, is `equivariant_parameters`).
SIZING_METHODS = ("baseline", "equivariant_channels", "equivariant_parameters", "equivariant_units")

PRESETS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "demo",
            "ppo",
            "ppo",
            "CartPole-v1",
            ("baseline", "augment_random", "equivariant"),
            (0, 1, 2),
            30_000,
            1_000,
            5,
            description="CartPole-v1, rl_zoo3 PPO: baseline vs rollout augmentation vs equivariant, 3 seeds, ~3-5 min",
            scratch=True,
        ),
        Experiment(
            "cartpole_paper_sweep",
            "ppo_paper",
            "ppo",
            "CartPole-v1",
            PAPER_METHODS,
            (0, 1),
            30_000,
            2_000,
            5,
            learning_rates=(1e-3, 5e-3, 1e-2),
            description="learning-rate sweep for the paper's CartPole protocol (2 seeds, 30k steps)",
        ),
        Experiment(
            "cartpole_paper",
            "ppo_paper",
            "ppo",
            "CartPole-v1",
            PAPER_METHODS,
            tuple(range(10)),
            50_000,
            2_000,
            10,
            lr_from="cartpole_paper_sweep",
            description="CartPole-v1 with the paper's PPO protocol, learning rates from cartpole_paper_sweep, 10 seeds, "
            "50k steps (paper: 100k; every curve of the paper is flat after 30k)",
        ),
        Experiment(
            "cartpole_paper_100k",
            "ppo_paper",
            "ppo",
            "CartPole-v1",
            PAPER_METHODS,
            tuple(range(10)),
            100_000,
            2_000,
            10,
            lr_from="cartpole_paper_sweep",
            description="CartPole-v1 with the paper's PPO protocol and budget (100k steps), learning rates from "
            "cartpole_paper_sweep, 10 seeds",
        ),
        Experiment(
            "cartpole_zoo",
            "ppo",
            "ppo",
            "CartPole-v1",
            (*PAPER_METHODS, "augment_all", "symmetrised", "symmetry_loss", "symmetry_loss_4"),
            tuple(range(10)),
            30_000,
            1_000,
            5,
            description="CartPole-v1 with rl_zoo3's tuned PPO for every method (equivariant bases, rollout augmentation, "
            "symmetrized policy, symmetry loss), 10 seeds, 30k steps",
        ),
        Experiment(
            "acrobot",
            "ppo",
            "ppo",
            "Acrobot-v1",
            ("baseline", "equivariant", "augment_random"),
            tuple(range(10)),
            100_000,
            4_096,
            5,
            description="Acrobot-v1 with rl_zoo3's PPO (normalize off), 10 seeds, 100k steps",
        ),
        Experiment(
            "gridworld_a2c",
            "a2c",
            "a2c",
            "sb3_equivariant/GridWorld-v0",
            ("baseline", "equivariant", "nullspace", "random"),
            tuple(range(10)),
            100_000,
            4_000,
            20,
            description="GridWorld with the paper's A2C setting, 10 seeds, 100k steps (paper: 2M)",
        ),
        Experiment(
            "gridworld_a2c_300k",
            "a2c",
            "a2c",
            "sb3_equivariant/GridWorld-v0",
            ("baseline", "equivariant", "nullspace", "random"),
            tuple(range(10)),
            300_000,
            8_000,
            20,
            description="GridWorld with the paper's A2C setting and all four nets, 10 seeds, 300k steps (paper: 2M)",
        ),
        Experiment(
            "gridworld_ppo",
            "ppo",
            "ppo",
            "sb3_equivariant/GridWorld-v0",
            ("baseline", "equivariant"),
            tuple(range(10)),
            100_000,
            4_096,
            20,
            description="GridWorld with PPO, 10 seeds, 100k steps",
        ),
        # Q-learning: the equivariant Q-network against every replay augmentation mode (rl_zoo3's hyperparameters).
        *[
            Experiment(
                f"{algo}_{env.split('-')[0].lower()}",
                algo,
                algo,
                env,
                DQN_METHODS + extra,
                tuple(range(n_seeds)),
                budget,
                eval_freq,
                episodes,
                description=f"{env}, rl_zoo3 {algo.upper()}: MlpPolicy vs the equivariant Q-network vs each replay "
                "augmentation mode and the symmetrized Q-network"
                f"{' (and the init A/B: the former He init)' if extra else ''}, {n_seeds} seeds, "
                f"{budget // 1000}k steps (rl_zoo3's budget)",
            )
            for algo in ("dqn", "qrdqn")
            for env, n_seeds, budget, eval_freq, episodes, extra in (
                # The A/B that chose the off-policy default init (`equivariant` has torch's) rides on DQN CartPole.
                ("CartPole-v1", 10, 50_000, 2_000, 10, ("equivariant_he_init",) if algo == "dqn" else ()),
                ("Acrobot-v1", 5, 100_000, 4_000, 5, ()),
            )
        ],
        # Continuous control and partial observability (issue 12).
        Experiment(
            "pendulum_sac",
            "sac",
            "sac",
            "Pendulum-v1",
            OFF_POLICY_METHODS,
            tuple(range(10)),
            20_000,
            1_000,
            10,
            description="Pendulum-v1, rl_zoo3 SAC: MlpPolicy vs EquivariantSACPolicy vs replay augmentation, 10 seeds, 20k steps",
        ),
        Experiment(
            "pendulum_td3",
            "td3",
            "td3",
            "Pendulum-v1",
            OFF_POLICY_METHODS,
            tuple(range(10)),
            20_000,
            1_000,
            10,
            description="Pendulum-v1, rl_zoo3 TD3: MlpPolicy vs EquivariantTD3Policy vs replay augmentation, 10 seeds, 20k steps",
        ),
        Experiment(
            "walker2d_sac",
            "sac",
            "sac",
            "Walker2d-v5",
            ("baseline", "equivariant", "replay_random", "symmetrised"),
            tuple(range(5)),
            200_000,
            10_000,
            5,
            description="Walker2d-v5, rl_zoo3 SAC: MlpPolicy vs EquivariantSACPolicy (leg swap) vs replay augmentation vs the "
            "orbit-mixture SymmetrizedSACPolicy, 5 seeds, 200k steps (rl_zoo3: 1M)",
        ),
        Experiment(
            "cartpole_novel_lstm",
            "ppo_lstm",
            "ppo_lstm",
            "sb3_equivariant/CartPoleNoVel-v1",
            ("baseline", "equivariant"),
            tuple(range(5)),
            100_000,
            4_096,
            10,
            description="CartPole with the velocities hidden, rl_zoo3 RecurrentPPO: MlpLstmPolicy vs EquivariantMlpLstmPolicy, "
            "5 seeds, 100k steps",
        ),
        Experiment(
            "pong",
            "ppo",
            "ppo",
            "PongNoFrameskip-v4",
            ("baseline", "equivariant", "augment_random"),
            (0, 1, 2),
            1_000_000,
            50_000,
            5,
            description="Pong with rl_zoo3's Atari PPO: CnnPolicy vs EquivariantCnnPolicy vs rollout augmentation, "
            "3 seeds, 1M env steps (4M frames) each; hours on 2 cores: resumable",
        ),
        # Default widths: the same experiments with each sizing rule of the equivariant policies (docs/results.md).
        Experiment(
            "sizing_cartpole",
            # Ran at e2df458, when `equivariant` read SB3's widths as channels (`equivariant_channels` since).
            methods=("baseline", "equivariant", "equivariant_parameters", "equivariant_units", "augment_random", "symmetrised"),
            description="CartPole-v1, rl_zoo3 PPO: the equivariant sizing rules vs MlpPolicy and augmentation, 10 seeds",
            **CARTPOLE_ZOO,
        ),
        Experiment(
            "activation_cartpole",
            # Runs at a99c3f9, where `equivariant` used ReLU (then its default) and `equivariant_tanh` SB3's tanh; the
            # default is SB3's again since: resume it from a checkout of a99c3f9.
            methods=("baseline", "baseline_relu", "equivariant", "equivariant_tanh", "augment_random", "symmetrised"),
            description="CartPole-v1, rl_zoo3 PPO: equivariant with ReLU (`equivariant` at a99c3f9) vs tanh, MlpPolicy "
            "(tanh, ReLU) and augmentation, 10 seeds",
            **CARTPOLE_ZOO,
        ),
        Experiment(
            "init_cartpole",
            methods=("baseline", "equivariant", "augment_random", "symmetrised"),
            description="CartPole-v1, rl_zoo3 PPO: the equivariant policy with SB3's orthogonal-init variance against "
            "MlpPolicy and the augmentation baselines, 10 seeds",
            **CARTPOLE_ZOO,
        ),
        Experiment(
            "sizing_acrobot",
            "ppo",
            "ppo",
            "Acrobot-v1",
            SIZING_METHODS,
            tuple(range(10)),
            100_000,
            4_096,
            10,
            description="Acrobot-v1, rl_zoo3 PPO (normalize off): the equivariant sizing rules vs MlpPolicy, 10 seeds",
        ),
        Experiment(
            "sizing_dqn_cartpole",
            methods=(*SIZING_METHODS, "replay_random"),
            description="CartPole-v1, rl_zoo3 DQN: the equivariant sizing rules vs MlpPolicy and replay augmentation, 10 seeds",
            **DQN_CARTPOLE,
        ),
        Experiment(
            "sizing_gridworld",
            "ppo",
            "ppo",
            "sb3_equivariant/GridWorld-v0",
            (*SIZING_METHODS, "augment_random", "symmetrised"),
            tuple(range(10)),
            50_000,
            2_048,
            20,
            description="GridWorld, PPO: the paper's CNN at each equivariant sizing rule vs the CNN and augmentation, "
            "10 seeds, 50k steps",
        ),
        Experiment(
            "wildlife_ppo",
            "ppo_multiagent",
            "ppo",
            "sb3_equivariant/Wildlife-v0",
            ("baseline", "equivariant", "augment_random"),
            tuple(range(5)),
            100_000,
            4_000,
            20,
            description="Wildlife (3 drones, 5x5 torus), authors' PPO: message passing, equivariant, augmentation; 5 seeds, 100k",
        ),
        Experiment(
            "traffic_ppo",
            "ppo_multiagent",
            "ppo",
            "sb3_equivariant/TrafficLights-v0",
            ("baseline", "equivariant", "augment_random"),
            tuple(range(5)),
            100_000,
            4_000,
            5,
            description="TrafficLights (4 lights), the authors' PPO: message passing, equivariant, augmentation; 5 seeds, 100k",
        ),
    ]
}
