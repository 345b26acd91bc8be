"""Non-expert exploration policy (ROS-free): a persistent random walk over the
collision-free actions A_free. Used by `o4a collect` in the simulator and by the
`explorer` ROS node on a real robot, so both collect data with the same behaviour.

Behaviour, per decision, given A_free (a set of Actions, from the CollisionChecker):
- inside a turn burst: keep rotating in the burst's direction until it is used up and,
  if the burst was started by an obstacle, until FORWARD is free again;
- else if FORWARD is free: go forward with probability `forward_prob` (runs of
  1 / (1 - forward_prob) steps on average: the persistence that covers a world), otherwise
  start a voluntary burst of 1..`turn_max` rotations in a random direction;
- else (blocked): start a burst in a random direction, which lasts until FORWARD is free
  plus 0..`extra_turns_max` rotations, so the robot leaves walls at varied angles.
Every `trajectory_length`-th decision is STOP (the end of a trajectory, as in the paper's
500-step trajectories); `reset()` starts the next one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from o4a_nav.params import Params, param
from o4a_nav.types import Action


@dataclass(frozen=True)
class ExplorerParams(Params):
    OWNER: ClassVar[str] = "explorer"
    trajectory_length: int = param(500, "decisions per trajectory; the last is STOP (paper 500)", (2, 1_000_000))
    forward_prob: float = param(0.9, "probability of keeping on FORWARD when it is free (persistence)",
                                (0.0, 0.999))
    turn_max: int = param(8, "longest voluntary rotation burst [steps of 15 deg]", (1, 24))
    extra_turns_max: int = param(4, "extra rotations after an obstacle burst found free space", (0, 24))


class ExplorationPolicy:
    """policy = ExplorationPolicy(seed=0); a = policy.act(free_actions); policy.reset()"""

    def __init__(self, seed: int = 0, params: ExplorerParams = ExplorerParams()):
        self.params = params   # validated on construction
        self.rng = np.random.default_rng([int(seed), 0x0E4A])
        self.reset()

    def reset(self) -> None:
        """Start a new trajectory."""
        self.step_in_trajectory = 0
        self._turn_dir = Action.ROTATE_LEFT
        self._turns_left = 0
        self._until_free = False

    @property
    def trajectory_done(self) -> bool:
        return self.step_in_trajectory >= self.params.trajectory_length

    def _random_dir(self) -> Action:
        return Action.ROTATE_LEFT if self.rng.random() < 0.5 else Action.ROTATE_RIGHT

    def _rotate(self, free) -> Action:
        d = self._turn_dir
        if d not in free:  # only with a polygonal footprint: try the other way
            other = Action.ROTATE_RIGHT if d == Action.ROTATE_LEFT else Action.ROTATE_LEFT
            if other not in free:
                return Action.STOP
            self._turn_dir = d = other
        self._turns_left = max(0, self._turns_left - 1)
        return d

    def act(self, free) -> Action:
        """Next action given A_free. Returns STOP at the end of a trajectory (and when no
        motion is possible at all)."""
        free = set(free)
        self.step_in_trajectory += 1
        if self.step_in_trajectory >= self.params.trajectory_length:
            return Action.STOP
        fwd = Action.FORWARD in free
        p = self.params
        if self._until_free:
            if fwd:
                self._until_free = False
                self._turns_left = int(self.rng.integers(0, p.extra_turns_max + 1))
            else:
                return self._rotate(free)
        if self._turns_left > 0:
            return self._rotate(free)
        if fwd:
            if self.rng.random() < p.forward_prob:
                return Action.FORWARD
            self._turn_dir = self._random_dir()
            self._turns_left = int(self.rng.integers(1, p.turn_max + 1))
            return self._rotate(free)
        self._turn_dir = self._random_dir()
        self._until_free = True
        return self._rotate(free)

    def blocked(self) -> None:
        """The last FORWARD was rejected (the checker said free but the base refused):
        turn away as if the scan had shown an obstacle. The rejected decision does not
        count as a step of the trajectory; call act() again for the replacement."""
        self.step_in_trajectory = max(0, self.step_in_trajectory - 1)
        self._turn_dir = self._random_dir()
        self._until_free = False
        self._turns_left = int(self.rng.integers(1, self.params.turn_max + 1))
