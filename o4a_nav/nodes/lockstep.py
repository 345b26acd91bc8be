"""One navigation episode through the ROS 2 stack with the simulator in lockstep: the sim,
collision_checker, navigator and base_controller nodes (the plan of `o4a bringup --sim`,
same YAML parameters) and a client node in one process and one executor, the goal sent
through the o4a/navigate action. Used by `o4a demo` and `o4a bench --through-ros`.

The sim runs with ``lockstep`` (o4a_nav/nodes/sim.py): simulated time on /clock advances
only when the stack has acted and every motion ends exactly where the in-process
benchmark's simulator puts it, so a run is the same on any machine and under any load.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from o4a_nav.errors import UserError
from o4a_nav.types import Action, Pose2D


# The simulator in lockstep, strict: the base controller stamps its cmd_vel
# (TwistStamped), so a period advances only on the command computed in it and no frame
# of an unfinished motion can look newer than the motion's end. Physics at 5 Hz: each
# period is a round trip through
# the stack (clock -> odometry -> base controller -> cmd_vel), so fewer periods per motion
# make a run faster; where a motion ends does not depend on the rate (it is exact), and the
# base controller's 50 Hz loop then runs once per period (stable: gain x period <= 0.6;
# the slowest turn, 0.1 rad/s x 0.2 s, is within its 0.02 rad tolerance).
LOCKSTEP_SETS = ("sim.lockstep=true", "sim.physics_rate=5.0", "sim.cmd_vel_stamped=true",
                 "base_controller.use_stamped=true")


@dataclass
class RosEpisode:
    reached: bool                   # the navigator's result: it called STOP as a decision (goal reached)
    reason: str
    steps: int                      # the navigator's count (a STOP for an exhausted budget included)
    forwards: int
    rotations: int
    decisions: list = field(default_factory=list)   # Action values published on o4a/action, in order
    motions: list = field(default_factory=list)     # nodes.sim.ExecutedMotion, in order
    start: Pose2D | None = None
    final_pose: Pose2D | None = None
    latencies_ms: list = field(default_factory=list)  # navigator: image arrival -> action published
    stale_events: list = field(default_factory=list)  # NavigatorStatus messages of STALE_INPUT episodes
    wall_s: float = 0.0             # goal sent -> result
    sim_s: float = 0.0              # simulated time the episode took
    timed_out: bool = False

    @property
    def budget_exhausted(self) -> bool:
        return not self.reached and "max_steps" in self.reason

    def decisions_as_bench(self) -> list[int]:
        """The decisions as `o4a bench` counts them: the STOP that only marks an exhausted
        step budget is not one (the benchmark's loop simply ends)."""
        d = list(self.decisions)
        if self.budget_exhausted and d and d[-1] == int(Action.STOP):
            d.pop()
        return d

    def trajectory(self) -> list[tuple[float, float, float]]:
        pts = [(self.start.x, self.start.y, self.start.yaw)] if self.start else []
        pts += [(m.end.x, m.end.y, m.end.yaw) for m in self.motions if m.moved]
        return pts


def _wait_for(pred, timeout: float) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


def run_episode(world: str, start: Pose2D, goal_front, goal_rear, model, max_steps: int, seed: int = 0,
                timeout: float = 600.0, on_feedback=None, params=None, sets=(), log_level: str = "warn") -> RosEpisode:
    """Navigate from ``start`` to the goal images through the ROS stack in lockstep.

    ``model``: navigator model_path; ``params``: parameter files (default those of
    `o4a bringup --sim`); ``sets``: extra NODE.PARAM=VALUE overrides; ``on_feedback``:
    called with each NavigateToImage.Feedback; ``timeout``: wall seconds after
    which the goal is cancelled (``timed_out``)."""
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.logging import LoggingSeverity, set_logger_level
    from rclpy.parameter import Parameter

    from o4a_msgs.msg import DiscreteAction, NavigatorStatus
    from o4a_nav import topics
    from o4a_nav.nodes import stack
    from o4a_nav.nodes._common import reliable
    from o4a_nav.nodes.goal_client import ImageGoalClient
    from o4a_nav.types import NavState

    plan = stack.plan(sim=True, params=params, model=str(model), world=world, seed=seed,
                      sets=[*LOCKSTEP_SETS, *sets])
    for name, _, _, overrides in plan:
        if name == "sim":   # exact floats: not through YAML text
            overrides[:] = [p for p in overrides if p.name != "initial_pose"] + [
                Parameter("initial_pose", value=[float(start.x), float(start.y), float(start.yaw)])]

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    nodes, client, spinner, stop = [], None, None, threading.Event()
    executor = SingleThreadedExecutor(context=ctx)
    try:
        by_name = {}
        for name, module, cls, overrides in plan:
            by_name[name] = stack.make_node(name, module, cls, overrides, context=ctx)
            nodes.append(by_name[name])
            executor.add_node(nodes[-1])
            level = getattr(LoggingSeverity, log_level.upper())
            set_logger_level(by_name[name].get_logger().name, level)
        sim, nav, base = by_name["sim"], by_name["navigator"], by_name["base_controller"]
        if nav.runtime.nav is None:
            raise UserError(f"the navigator could not load the model: {nav.runtime.model_error}")
        client_node = rclpy.create_node("o4a_episode_client", context=ctx)
        nodes.append(client_node)
        executor.add_node(client_node)
        decisions: list[int] = []
        client_node.create_subscription(DiscreteAction, topics.ACTION, lambda m: decisions.append(int(m.action)),
                                        reliable(100))
        stale: list[str] = []

        def on_status(m):
            if m.state == NavState.STALE_INPUT and (not stale or stale[-1] != m.message):
                stale.append(m.message)

        client_node.create_subscription(NavigatorStatus, topics.STATUS, on_status, reliable(100))

        def spin():   # the executor in one thread, with a way out before it is shut down
            while not stop.is_set() and ctx.ok():
                executor.spin_once(timeout_sec=0.05)

        spinner = threading.Thread(target=spin, name="o4a-lockstep", daemon=True)
        spinner.start()
        client = ImageGoalClient(client_node)   # spun by the thread above
        if not client.wait_for_server(60.0):
            raise UserError("the navigator's action server did not come up")
        # every input the first decision needs has arrived (the first observation may be
        # published before discovery completes; the sim repeats it while nothing happens)
        ready = lambda: (base.ctl.pose is not None   # noqa: E731
                         and all(math.isfinite(i.stamp) for i in nav.runtime.inputs.values()))
        if not _wait_for(ready, 60.0):
            raise UserError("the simulator's first observation did not reach the navigator and the base controller")
        t0 = time.perf_counter()
        sim_t0 = sim.sim_time
        if not client.send(goal_front, goal_rear, int(max_steps), stamp=0.0, feedback_callback=on_feedback,
                           timeout=60.0):
            raise UserError("the navigator did not accept the goal (see its log above)")
        timed_out = not client.wait(timeout)
        if timed_out:
            client.cancel(10.0)
        wall = time.perf_counter() - t0
        # the result is sent after the last decision; let the last messages arrive
        _wait_for(lambda: sim._motion is None, 10.0)
        time.sleep(0.1)
        res = None if timed_out else client.result()
        return RosEpisode(
            reached=bool(res.success) if res else False,
            reason=res.reason if res else f"no result after {timeout:.0f} s (cancelled)",
            steps=int(res.steps) if res else nav.runtime.status.step,
            forwards=int(res.forwards) if res else nav.runtime.status.forwards,
            rotations=int(res.rotations) if res else nav.runtime.status.rotations,
            decisions=list(decisions), motions=list(sim.motions), start=sim.origin, final_pose=sim.robot.pose,
            latencies_ms=list(nav.latencies_ms), stale_events=list(stale), wall_s=wall, sim_s=sim.sim_time - sim_t0, timed_out=timed_out)
    finally:
        if client is not None:
            client.destroy()
        stop.set()
        if spinner is not None:
            spinner.join(timeout=10.0)
        executor.shutdown(timeout_sec=2.0)
        stack.stop_nodes(nodes)
        rclpy.shutdown(context=ctx)


ROS_POLICY = "o4a-ros"


def run_benchmark_through_ros(cfg, progress: bool = True, log=print) -> dict:
    """`o4a bench --through-ros`: every episode of the benchmark's sampling (same worlds,
    seed, bins, step budget) once in-process with the core (policy `o4a`, as `o4a
    bench` runs it) and once through the ROS stack in lockstep (policy `o4a-ros`); the
    same metrics and outputs as `o4a bench` (results.json, results.md, plot, trajectory
    pictures) plus the decision agreement (``ros_agreement``)."""
    from pathlib import Path

    from tqdm import tqdm

    from o4a_nav.bench import agreement
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.policies import GroundTruth
    from o4a_nav.bench.run import _Worker, _write_outputs, check_config
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.sim import SimRobot, load_world

    import dataclasses

    core_cfg = dataclasses.replace(cfg, policies=["o4a"])
    check_config(core_cfg)
    if cfg.threads != 1:
        raise UserError("--through-ros runs the core with 1 torch thread, as the navigator node does (--threads 1)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    m = load_model(cfg.model)
    model_meta = {k: (m.meta or {}).get(k) for k in ("saved_at", "worlds", "embed_dim")}
    worlds, notes, world_paths, episodes = {}, [], {}, []
    for name in cfg.worlds:
        world = load_world(name)
        wname = getattr(world, "name", None) or Path(name).stem
        if wname not in m.worlds:
            raise UserError(f"model {cfg.model} has no p+ head for world {wname} (it knows: {', '.join(m.worlds)})")
        worlds[wname], world_paths[wname] = world, str(name)
        es = sample_episodes(world, wname, cfg.episodes, cfg.seed, tuple(cfg.difficulties))
        notes.extend(es.notes)
        episodes.extend(es.episodes)
    del m
    episodes.sort(key=lambda e: (e.index, list(worlds).index(e.world), cfg.difficulties.index(e.difficulty)))
    sets = [f"navigator.{k}={v}" for k, v in cfg.nav_params.items()]
    out_cfg = dataclasses.replace(cfg, policies=["o4a", ROS_POLICY])

    worker = _Worker(core_cfg, world_paths)
    robots: dict = {}
    results, times = [], {"o4a": 0.0, ROS_POLICY: 0.0}
    report = agreement.AgreementReport()
    ros_clock = {"episodes_wall_s": 0.0, "episodes_simulated_s": 0.0}
    bar = tqdm(total=len(episodes), desc="o4a bench --through-ros", unit="ep", disable=not progress,
               dynamic_ncols=True)
    try:
        for ep in episodes:
            _, [(core, dt_core)], wnotes = worker.run(ep)
            notes.extend(n for n in wnotes if n not in notes)
            times["o4a"] += dt_core
            if ep.world not in robots:
                robots[ep.world] = SimRobot(worlds[ep.world], seed=cfg.seed)
            robot = robots[ep.world]
            robot.set_pose(ep.goal)
            gf, gr, _ = robot.observe()
            t0 = time.perf_counter()
            ros = run_episode(world_paths[ep.world], ep.start, gf, gr, cfg.model, cfg.max_steps, seed=cfg.seed,
                              timeout=max(600.0, 4.0 * cfg.max_steps), sets=sets)
            times[ROS_POLICY] += time.perf_counter() - t0
            ros_clock["episodes_wall_s"] += ros.wall_s
            ros_clock["episodes_simulated_s"] += ros.sim_s
            if ros.timed_out:
                notes.append(f"{ep.key}: the ROS run gave no result in time ({ros.reason})")
            if ros.stale_events:
                notes.append(f"{ep.key}: the navigator stopped for stale input {len(ros.stale_events)} times "
                             f"({ros.stale_events[0]})")
            truth = GroundTruth(worlds[ep.world], robot, ep.goal)
            decisions, stopped = ros.decisions_as_bench(), ros.reached
            if len(decisions) > cfg.max_steps:
                # the navigator checks d_h once more after its last allowed motion; the
                # benchmark's loop ends after max_steps decisions
                decisions, stopped = decisions[:cfg.max_steps], False
            ros_res = agreement.episode_result(
                ROS_POLICY, ep, truth, ros.motions, decisions, stopped=stopped,
                latencies_s=[x / 1e3 for x in ros.latencies_ms], record_trajectory=ep.index < cfg.trajectories)
            results += [(ep, core), (ep, ros_res)]
            a = agreement.compare(ep.key, core.actions, ros_res.actions)
            report.add(a, core.success, ros_res.success)
            bar.update(1)
            s = report.summary()
            bar.set_postfix_str(f"agreement {100 * s['agreement']:.1f} %, SR core {s['sr_core']:.2f} "
                                f"ROS {s['sr_ros']:.2f}")
            if not a.identical:
                log(f"{ep.key}: decisions diverge at step {a.first_divergence} "
                    f"(core ...{a.core[max(0, a.first_divergence - 3):a.first_divergence + 3]}, "
                    f"ROS ...{a.ros[max(0, a.first_divergence - 3):a.first_divergence + 3]})")
    finally:
        bar.close()
        worker.close()
        for r in robots.values():
            r.close()
    summary = report.summary()
    # goal sent -> result, summed over the ROS episodes (node start-up excluded)
    summary["ros_clock"] = {**ros_clock, "real_time_factor": ros_clock["episodes_simulated_s"]
                            / max(ros_clock["episodes_wall_s"], 1e-9)}
    return _write_outputs(out_cfg, out, worlds, episodes, results, times, notes, model_meta, 1,
                          time.perf_counter() - t_start, False, extra={"ros_agreement": summary})
