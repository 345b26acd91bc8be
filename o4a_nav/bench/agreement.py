"""The benchmark through the ROS stack, ROS-free parts: an episode's outcome from what the
lockstep simulator executed, and the decision agreement between the ROS run and the
in-process core on the same episodes.

Agreement, per step: the i-th decision of the ROS run equals the i-th decision of the
core's run of the same episode. Steps are compared over the longer of the two decision
sequences (a step only one of them took counts as a disagreement), so one early
divergence costs every later step: the figure is strict by design.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from o4a_nav.types import Action

from .metrics import SUCCESS_RADIUS_M, EpisodeResult

ACTION_LETTERS = {int(Action.STOP): "S", int(Action.FORWARD): "F", int(Action.ROTATE_LEFT): "L",
                  int(Action.ROTATE_RIGHT): "R"}


def action_string(actions) -> str:
    """'FLLRF...S': one letter per decision."""
    return "".join(ACTION_LETTERS.get(int(a), "?") for a in actions)


def binomial_se(p: float, n: int) -> float:
    """Standard error of a success rate p over n independent episodes."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n else math.nan


def episode_result(policy: str, episode, truth, motions, decisions: list[int], stopped: bool,
                   latencies_s=(), record_trajectory: bool = True) -> EpisodeResult:
    """An EpisodeResult with the benchmark's definitions from a ROS run.

    ``motions``: what the simulator executed, in order, each with ``action``, ``start``,
    ``end`` (map-frame Pose2D) and ``moved``; ``decisions``: the navigator's decisions
    (Action values; a final STOP included only when the navigator called it as a
    decision, i.e. not the STOP that marks an exhausted step budget); ``stopped``: the
    navigator called STOP (goal reached by its own judgement); ``truth``: a
    bench.policies.GroundTruth for the episode's goal."""
    res = EpisodeResult(policy, episode.world, episode.difficulty, episode.index, episode.geodesic_m)
    res.actions = [int(a) for a in decisions]
    res.steps = len(res.actions)
    res.stopped = bool(stopped)
    res.latencies_s = list(latencies_s)
    start = episode.start
    if record_trajectory:
        res.trajectory.append((start.x, start.y, start.yaw))
    pose = start
    for m in motions:
        if not m.moved:
            res.collisions += 1
            continue
        a, b = m.start, m.end
        if int(m.action) == int(Action.FORWARD):
            res.forwards += 1
            res.path_length_m += math.hypot(b.x - a.x, b.y - a.y)
            if not res.soft_success and math.hypot(b.x - episode.goal.x, b.y - episode.goal.y) < SUCCESS_RADIUS_M:
                res.soft_success = truth.distance(b.x, b.y) < SUCCESS_RADIUS_M
        else:
            res.rotations += 1
        if record_trajectory:
            res.trajectory.append((b.x, b.y, b.yaw))
        pose = b
    res.final_distance_m = truth.distance(pose.x, pose.y)
    res.success = res.stopped and res.final_distance_m < SUCCESS_RADIUS_M
    if not res.soft_success:
        res.soft_success = res.success or res.final_distance_m < SUCCESS_RADIUS_M
    return res


@dataclass
class EpisodeAgreement:
    key: str
    steps: int            # steps compared (the longer sequence)
    agreeing: int         # steps with the same decision
    first_divergence: int | None   # 0-based step index, None when identical
    core: str             # decision strings
    ros: str

    @property
    def identical(self) -> bool:
        return self.first_divergence is None


def compare(key: str, core_actions, ros_actions) -> EpisodeAgreement:
    core, ros = action_string(core_actions), action_string(ros_actions)
    n = max(len(core), len(ros))
    agreeing = sum(1 for a, b in zip(core, ros) if a == b)
    first = next((i for i in range(n) if i >= len(core) or i >= len(ros) or core[i] != ros[i]), None)
    return EpisodeAgreement(key, n, agreeing, first, core, ros)


@dataclass
class AgreementReport:
    episodes: list[EpisodeAgreement] = field(default_factory=list)
    core_success: list[bool] = field(default_factory=list)
    ros_success: list[bool] = field(default_factory=list)

    def add(self, agreement: EpisodeAgreement, core_success: bool, ros_success: bool) -> None:
        self.episodes.append(agreement)
        self.core_success.append(bool(core_success))
        self.ros_success.append(bool(ros_success))

    def summary(self) -> dict:
        n = len(self.episodes)
        steps = sum(e.steps for e in self.episodes)
        agreeing = sum(e.agreeing for e in self.episodes)
        sr_core = sum(self.core_success) / n if n else math.nan
        sr_ros = sum(self.ros_success) / n if n else math.nan
        se_core, se_ros = binomial_se(sr_core, n), binomial_se(sr_ros, n)
        return {
            "episodes": n,
            "steps": steps,
            "agreeing_steps": agreeing,
            "agreement": agreeing / steps if steps else math.nan,
            "identical_episodes": sum(e.identical for e in self.episodes),
            "sr_core": sr_core, "sr_core_se": se_core,
            "sr_ros": sr_ros, "sr_ros_se": se_ros,
            "sr_within_one_se": bool(n) and abs(sr_ros - sr_core) <= se_core + 1e-12,
            "same_outcome_episodes": sum(a == b for a, b in zip(self.core_success, self.ros_success)),
            "per_episode": [
                {"episode": e.key, "steps": e.steps, "agreeing": e.agreeing, "first_divergence": e.first_divergence,
                 "core_success": c, "ros_success": r, "core": e.core, "ros": e.ros}
                for e, c, r in zip(self.episodes, self.core_success, self.ros_success)],
        }


def markdown(summary: dict) -> str:
    """The agreement section of results.md."""
    s = summary
    lines = [
        "| | core (in-process) | ROS stack (lockstep) |",
        "|---|---|---|",
        f"| episodes | {s['episodes']} | {s['episodes']} |",
        f"| SR +- SE | {s['sr_core']:.2f} +- {s['sr_core_se']:.2f} | {s['sr_ros']:.2f} +- {s['sr_ros_se']:.2f} |",
        "",
        f"Decision agreement: {s['agreeing_steps']} of {s['steps']} steps ({100 * s['agreement']:.2f} %); "
        f"identical decision sequences in {s['identical_episodes']} of {s['episodes']} episodes; same outcome in "
        f"{s['same_outcome_episodes']}; ROS SR within one SE of the core's: {'yes' if s['sr_within_one_se'] else 'no'}.",
    ]
    clock = s.get("ros_clock")
    if clock:
        lines += ["", f"The ROS episodes (goal sent -> result, node start-up excluded) took "
                      f"{clock['episodes_wall_s']:.0f} s of wall time for {clock['episodes_simulated_s']:.0f} s of "
                      f"simulated time: {clock['real_time_factor']:.1f} x real time."]
    diverged = [e for e in s["per_episode"] if e["first_divergence"] is not None]
    if diverged:
        lines += ["", "| episode | steps | agreeing | first divergence (step) | core | ROS |", "|---|---|---|---|---|---|"]
        for e in diverged:
            i = e["first_divergence"]
            lines.append(f"| {e['episode']} | {e['steps']} | {e['agreeing']} | {i} | "
                         f"{'...' if i > 3 else ''}{e['core'][max(0, i - 3):i + 4]} | "
                         f"{'...' if i > 3 else ''}{e['ros'][max(0, i - 3):i + 4]} |")
    return "\n".join(lines)
