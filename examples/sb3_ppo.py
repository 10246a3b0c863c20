"""PPO (stable-baselines3) on llvm-autophase-ic-v0 over generated and c-torture
programs, with its learning curve against a random policy.

    .venv/bin/python examples/sb3_ppo.py --steps 20000 --out ppo.png

The programs: csmith's (generator://csmith-v0/N), llvm-stress's
(generator://llvm-stress-v0/N) and GCC's C torture tests
(benchmark://gcc-c-torture-v0/..., installed by scripts/setup; skipped with
a note if it is not installed). Each is loaded once first, so a program that
fails to build is left out before training and the zygote's benchmark cache
is warm. A fifth of them is held out.

The agent sees Autophase's 56 counts (normalised by SB3's VecNormalize) and
picks one of CompilerGym's 124 LLVM passes per step, 45 steps an episode; its
reward is IrInstructionCountOz's: the instructions removed, as a fraction of
what -Oz removes, so an episode's return is 1.0 where it matches -Oz.

The plot: the return of each training episode (a rolling mean) against env
steps, beside the random policy's mean return on the same training programs
(the band is its standard error); the legend gives both policies' mean return
on the held-out programs. The numbers are printed and written next to the
PNG as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import forkgym
from forkgym.sb3 import make_vec_env

ENV_ID = "llvm-autophase-ic-v0"
EPISODE_STEPS = 45


def candidate_benchmarks(csmith: int, stress: int, torture: int, seed: int) -> list[str]:
    uris = [f"generator://csmith-v0/{i}" for i in range(csmith)]
    uris += [f"generator://llvm-stress-v0/{i}" for i in range(stress)]
    with forkgym.make("llvm-v0") as env:
        try:
            dataset = env.datasets["gcc-c-torture-v0"]
            everything = list(dataset.benchmark_uris())
        except forkgym.ForkgymError as error:
            print(f"gcc-c-torture-v0 left out ({error}); `python -m forkgym datasets install gcc-c-torture-v0`")
            everything = []
    rng = np.random.default_rng(seed)
    uris += [str(u) for u in rng.permutation(everything)[:torture]] if everything else []
    return uris


def loadable(uris: list[str]) -> list[str]:
    """The benchmarks that load (one reset each); the others are reported and left out."""
    kept = []
    with forkgym.make(ENV_ID) as env:
        for uri in uris:
            try:
                env.reset(benchmark=uri)
                kept.append(uri)
            except forkgym.ForkgymError as error:
                print(f"left out {uri}: {type(error).__name__}: {str(error)[:120]}")
    return kept


def random_returns(uris: list[str], episodes: int, seed: int) -> list[float]:
    """Episode returns of uniformly random passes, cycling over ``uris``."""
    rng = np.random.default_rng(seed)
    returns = []
    with forkgym.make(ENV_ID) as env:
        for episode in range(episodes):
            env.reset(benchmark=uris[episode % len(uris)])
            _, reward, _, _, _ = env.step(list(rng.integers(env.action_space.n, size=EPISODE_STEPS)))
            returns.append(env.episode_reward)
    return returns


def policy_returns(model, normalise, uris: list[str]) -> list[float]:
    """Episode returns of the trained policy on each of ``uris``, its actions
    sampled as in training (an undertrained policy's argmax tends to repeat
    one pass all episode)."""
    returns = []
    with forkgym.make(ENV_ID) as env:
        for uri in uris:
            observation, _ = env.reset(benchmark=uri)
            for _ in range(EPISODE_STEPS):
                action, _ = model.predict(normalise(observation[None, :]), deterministic=False)
                observation, _, terminated, truncated, _ = env.step(int(action[0]))
                if terminated or truncated:
                    break
            returns.append(env.episode_reward)
    return returns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="PPO's env steps")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--csmith", type=int, default=40, help="csmith programs")
    parser.add_argument("--llvm-stress", type=int, default=20, help="llvm-stress programs")
    parser.add_argument("--c-torture", type=int, default=40, help="c-torture programs (drawn at random)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop training after this long (the curve then ends early; the rest still runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("ppo-learning-curve.png"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    started = time.perf_counter()
    uris = loadable(candidate_benchmarks(args.csmith, args.llvm_stress, args.c_torture, args.seed))
    order = np.random.default_rng(args.seed).permutation(len(uris))
    held_out = [uris[i] for i in order[: len(uris) // 5]]
    train = [uris[i] for i in order[len(uris) // 5:]]
    print(f"{len(train)} training and {len(held_out)} held-out programs "
          f"({time.perf_counter() - started:.0f} s to load them)")

    venv = VecNormalize(VecMonitor(make_vec_env(ENV_ID, n_envs=args.n_envs, seed=args.seed,
                                                max_episode_steps=EPISODE_STEPS, benchmarks=train)),
                        norm_reward=False)
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=4, learning_rate=3e-4, gamma=1.0,
                ent_coef=0.01, seed=args.seed, device="cpu", verbose=0)
    curve: list[tuple[int, float]] = []  # (env steps at the episode's end, its return)

    from stable_baselines3.common.callbacks import BaseCallback

    trained = time.perf_counter()
    deadline = trained + 60 * args.max_minutes if args.max_minutes else float("inf")

    class Episodes(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    curve.append((self.num_timesteps, float(info["episode"]["r"])))
            return time.perf_counter() < deadline  # False stops training

    model.learn(total_timesteps=args.steps, callback=Episodes())
    training_s = time.perf_counter() - trained
    venv.training = False
    normalise = venv.normalize_obs

    random_train = random_returns(train, max(len(train), 100), args.seed)
    random_held_out = random_returns(held_out, len(held_out), args.seed + 1)
    ppo_held_out = policy_returns(model, normalise, held_out)
    venv.close()

    steps, returns = np.array([s for s, _ in curve]), np.array([r for _, r in curve])
    window = max(1, len(returns) // 20)
    rolling = np.convolve(returns, np.ones(window) / window, mode="valid")
    first, last = returns[:window].mean(), returns[-window:].mean()
    random_mean = float(np.mean(random_train))
    random_sem = float(np.std(random_train) / np.sqrt(len(random_train)))
    summary = {
        "env_steps": int(model.num_timesteps), "episodes": len(returns), "training_s": training_s,
        "env_steps_per_s": model.num_timesteps / training_s, "n_envs": args.n_envs,
        "train_programs": len(train), "held_out_programs": len(held_out),
        "ppo_first_episodes_mean_return": float(first), "ppo_last_episodes_mean_return": float(last),
        "rolling_window_episodes": window,
        "random_train_mean_return": random_mean, "random_train_sem": random_sem,
        "random_held_out_mean_return": float(np.mean(random_held_out)),
        "ppo_held_out_mean_return": float(np.mean(ppo_held_out)),
    }

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps[window - 1:], rolling, label=f"PPO, training episodes (rolling mean of {window})")
    ax.axhline(random_mean, color="grey", linestyle="--", label="random policy, training programs")
    ax.axhspan(random_mean - random_sem, random_mean + random_sem, color="grey", alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return (1.0 = -Oz's instruction count)")
    ax.set_title(f"PPO on {ENV_ID}: {len(train)} csmith / llvm-stress / c-torture programs, {EPISODE_STEPS} steps")
    ax.plot([], [], " ", label=f"held out ({len(held_out)}): PPO {summary['ppo_held_out_mean_return']:.3f}, "
                               f"random {summary['random_held_out_mean_return']:.3f}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
