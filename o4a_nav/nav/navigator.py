"""The O4A navigator core (ROS-free): graph-free image-goal navigation with a neural
potential field. The ROS `navigator` node and `o4a bench` both call this class.

Every control step (paper, "Navigation"):
1. x_t = h(o_t); x_g = h(o_g) is cached by :meth:`O4ANavigator.set_goal`.
2. STOP when d_h(x_t, x_g) = ||x_t - x_g|| < stop_threshold (optionally also when
   f-dagger(x_t, x_g) says the two are connected, ``stop_on_connected``).
3. Otherwise, for each a in A_free predict the waypoint w_a = f(x_t, a) and its potential
       P(a) = p+(w_a, x_g) + sum_{b in B} max(0, m_r - ||b - w_a||)
   (attractor + repulsor; either can be switched off for the paper's ablations), take
   argmin_a P(a) and push w_a into the waypoint memory B (a ring of ``memory_size``).
   Ties go to the first of FORWARD, ROTATE_LEFT, ROTATE_RIGHT.

``anti_oscillation`` (our addition, off by default so that the default is the paper's
rule): the rotation that would undo the previous rotation (LEFT right after RIGHT or the
reverse) is dropped from the candidates while another free motion remains. It removes
the LEFT/RIGHT dithering that a flat potential produces; the benchmark measures it
against the greedy rule.

``lookahead_rotations`` K (our addition, 0 = off = the paper's one-step rule): the
candidates are short plans instead of single actions, "rotate k times (k = 0..K, left or
right), then FORWARD", scored at their end waypoint f(f^k(x_t, rotate), FORWARD) with the
same potential; the first action of the best plan is executed (FORWARD only when it is in
A_free; rotations stay assumed free, and the collision gate still checks every FORWARD
when the robot gets there); a plan's repulsion also counts the rotated waypoints it passes
through. A heading is judged by where a step along it leads, not by the
rotated view itself, which is what makes the greedy rule dither. Ties go to fewer
rotations, LEFT before RIGHT. ``rotation_cost`` c adds k * c to a plan of k rotations:
the potential then counts the turns as the training graph does (each rotation edge is
one step of about m+ = 1 code unit), so that the robot turns once towards the best
heading and drives, rather than preferring any heading whose end waypoint is marginally
lower (the heading-aware rule).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from o4a_nav import image_conv
from o4a_nav.errors import ImageFormatError, ModelLoadError, UserError
from o4a_nav.params import Params, param
from o4a_nav.types import Action

_OPPOSITE = {Action.ROTATE_LEFT: Action.ROTATE_RIGHT, Action.ROTATE_RIGHT: Action.ROTATE_LEFT}


@dataclass
class NavigatorParams(Params):
    OWNER: ClassVar[str] = "navigator"
    stop_threshold: float = param(3.5, "STOP when the local distance d_h(x_t, x_g) is below this (paper 3.5)",
                                  (0.0, 1000.0))
    memory_size: int = param(500, "waypoints kept for the repulsive term, |B| (paper 500)", (1, 100000),
                             read_only=True)
    repulsion_margin: float = param(2.5, "repulsion margin m_r (paper 2.5)", (0.0, 1000.0))
    use_attractor: bool = param(True, "use the p+ attractor (false: the paper's 'without attractor' ablation)")
    use_repulsor: bool = param(True, "use the repulsive memory (false: the paper's 'without repulsor' ablation)")
    anti_oscillation: bool = param(False, "drop the rotation that undoes the previous one "
                                          "(our addition, off = paper rule)")
    stop_on_connected: bool = param(False, "also STOP when f-dagger says the goal is one action away")
    # 24 x 15 deg = a full turn
    lookahead_rotations: int = param(0, "score 'k rotations then FORWARD' plans up to k = this "
                                        "(our addition, 0 = paper rule)", (0, 24))
    rotation_cost: float = param(0.0, "potential added per rotation of a 'k rotations then FORWARD' plan "
                                      "(lookahead_rotations > 0): rotations priced as the graph prices them, "
                                      "about 1 = m+ (our addition, 0 = unpriced)", (0.0, 1000.0))
    stuck_scan: int = param(0, "after this many rotations in a row, look around with real views and drive "
                                "from the best heading (our addition, 0 = off)", (0, 500))
    max_steps: int = param(500, "decisions per goal before FAILED (paper 500); a NavigateToImage goal may "
                                "override", (1, 1000000))


@dataclass
class Candidate:
    action: Action
    potential: float
    attraction: float
    repulsion: float

    def __iter__(self):  # unpacks as (action, P, attraction, repulsion)
        return iter((self.action, self.potential, self.attraction, self.repulsion))


@dataclass
class Decision:
    action: Action
    goal_distance: float            # d_h(x_t, x_g)
    candidates: list = field(default_factory=list)  # list[Candidate], evaluation order
    latency_s: float = 0.0          # time spent in step()
    step: int = 0                   # decisions taken for this goal, this one included
    reached: bool = False           # STOP because d_h < stop_threshold (or f-dagger said so)
    failed: bool = False            # STOP because max_steps is exhausted
    reason: str = ""


HEADINGS = 24  # 360 deg / ROTATE 15 deg


@dataclass
class _Scan:
    """A look-around in place (stuck_scan): heading index k counts 15 deg steps to the left
    of the heading where the scan began. The front view at k and the rear view (the
    view at k + 12) give two real codes per step, so 12 rotations see all 24 headings."""
    k: int = 0
    codes: dict = field(default_factory=dict)     # heading index -> real code (1, n)
    blocked: set = field(default_factory=set)     # heading indices whose FORWARD A_free refused
    target: int | None = None                     # chosen heading, once all are seen


class O4ANavigator:
    """O4A decision rule around a loaded model (o4a_nav.learning.model_io API:
    embed, forward_kinematics, geodesic, inverse_logits, worlds)."""

    def __init__(self, model, world: str | None = None, params: NavigatorParams | None = None,
                 cameras: tuple = (None, None)):
        import torch

        self._torch = torch
        self.model = model
        self.params = params or NavigatorParams()
        worlds = list(getattr(model, "worlds", []) or [])
        if world is None and self.params.use_attractor:
            if len(worlds) == 1:
                world = worlds[0]
            elif not worlds:
                raise ModelLoadError("model has no p+ (geodesic) head for any world; the attractor needs one")
            else:
                raise UserError(f"model has p+ heads for several worlds ({', '.join(worlds)}); choose the one to "
                                f"navigate in: parameter world (launch argument world:=NAME)")
        if world is not None and worlds and world not in worlds:
            raise UserError(f"model has no p+ head for world {world!r}; it knows: {', '.join(worlds)}")
        self.world = world
        # (front, rear) framing of camera images (image_conv.to_model_input's camera: a CameraView
        # from camera_info, a horizontal field of view in deg, or None: the centred square)
        self.cameras = tuple(cameras)
        self._x_g = None
        self._memory = None   # torch (memory_size, n) ring buffer
        self._mem_len = 0
        self._mem_pos = 0
        self._last_motion: Action | None = None
        self._rot_run = 0          # rotations since the last FORWARD (stuck_scan)
        self._scan: _Scan | None = None
        self.steps = 0
        self.forwards = 0
        self.rotations = 0

    # ------------------------------------------------------------------ goal
    @staticmethod
    def prepare_goal(front, rear, cameras: tuple = (None, None)) -> tuple[np.ndarray, np.ndarray]:
        """A goal's images checked and converted to the model input, as set_goal does
        (ImageFormatError for bad ones; `cameras`: the navigator's); thread-safe (no model):
        the navigator node runs it off its executor, so that a camera-sized goal does not
        hold the control path, and hands set_goal the result (which converting again leaves
        as it is)."""
        return O4ANavigator._prepare(front, rear, goal=True, cameras=cameras)

    @staticmethod
    def _prepare(front, rear, goal: bool = False, cameras: tuple = (None, None)) -> tuple[np.ndarray, np.ndarray]:
        """The one image contract of the navigator: decoded RGB (or grey) uint8 images of
        any size, live and goal alike, converted here by image_conv.to_model_input with the
        cameras' framing (`cameras`: the navigator's, as in training); a goal's front and rear
        must have the same size (one picture pair), live cameras may differ."""
        front, rear = np.asarray(front), np.asarray(rear)
        for name, img in (("front", front), ("rear", rear)):
            if img.size == 0:
                raise ImageFormatError(f"{name} image is empty")
        if goal:
            image_conv.check_pair(front.shape, rear.shape)
        return image_conv.to_model_input(front, cameras[0]), image_conv.to_model_input(rear, cameras[1])

    def set_goal(self, front, rear) -> None:
        """Cache x_g = h(o_g) and clear the repulsive memory and step counters. Raises
        ImageFormatError (and keeps the current goal) for bad images."""
        f, r = self._prepare(front, rear, goal=True, cameras=self.cameras)
        x_g = self.model.embed(f, r)
        self._x_g = x_g.reshape(1, -1).float()
        self.reset_memory()

    def clear_goal(self) -> None:
        self._x_g = None
        self.reset_memory()

    def reset_memory(self) -> None:
        self._memory = None
        self._mem_len = self._mem_pos = 0
        self._last_motion = None
        self._rot_run = 0
        self._scan = None
        self.steps = self.forwards = self.rotations = 0

    @property
    def has_goal(self) -> bool:
        return self._x_g is not None

    @property
    def memory_len(self) -> int:
        return self._mem_len

    def goal_distance(self, front, rear) -> float:
        """d_h between an observation and the goal."""
        if self._x_g is None:
            raise UserError("no goal set")
        f, r = self._prepare(front, rear, cameras=self.cameras)
        x = self.model.embed(f, r).reshape(1, -1).float()
        return float(self._torch.linalg.vector_norm(x - self._x_g))

    # ------------------------------------------------------------------ step
    def _push(self, w) -> None:
        torch = self._torch
        if self._memory is None:
            self._memory = torch.zeros(self.params.memory_size, w.shape[-1], dtype=w.dtype)
        self._memory[self._mem_pos] = w
        self._mem_pos = (self._mem_pos + 1) % self.params.memory_size
        self._mem_len = min(self._mem_len + 1, self.params.memory_size)

    def _potential(self, w):
        """Attractor p+(w, x_g) and repulsor of waypoints w."""
        p = self.params
        if p.use_attractor:
            att = self.model.geodesic(w, self._x_g.expand(len(w), -1), self.world).float().reshape(-1)
        else:
            att = self._torch.zeros(len(w))
        return att, self._repulsion(w)

    def _repulsion(self, w):
        """sum_{b in B} max(0, m_r - ||b - w||) per waypoint (0 with the repulsor off)."""
        torch, p = self._torch, self.params
        if not (p.use_repulsor and self._mem_len):
            return torch.zeros(len(w))
        dist = torch.cdist(w, self._memory[: self._mem_len])
        return torch.clamp(p.repulsion_margin - dist, min=0.0).sum(dim=1)

    def _scan_action(self, x, front, rear, cands):
        """stuck_scan: after `stuck_scan` rotations in a row, stop trusting predicted
        rotations: rotate LEFT 12 times (180 deg), recording the real code of the front
        view and of the rear view (the rear camera sees what the front camera would see
        turned by 180 deg, so h(rear, front) is the code of the opposite heading), then
        score FORWARD from each of the 24 real headings with the same potential
        p+(f(x_k, FORWARD)) + repulsion, turn the shorter way to the best heading whose
        FORWARD was not refused, and drive. A FORWARD ends the scan; so does a turn that
        A_free (`cands`, before anti-oscillation) does not allow. The scan's rotations do
        not enter the waypoint memory (they would repel the headings seen with the front
        camera and not those seen with the rear one); its FORWARD does. Returns None (not
        scanning: the normal rule decides) or (action, waypoint to remember, attraction,
        repulsion) for the decision report; (STOP, None, None, d_h of the rear view) when
        the rear view is within stop_threshold of the goal (the goal place, seen facing
        the other way)."""
        torch, p = self._torch, self.params
        if self._scan is None:
            if self._rot_run < p.stuck_scan:
                return None
            self._scan = _Scan()
        sc = self._scan
        if sc.target is None:
            k = sc.k % HEADINGS
            x_back = self.model.embed(rear, front).reshape(1, -1).float()
            d_back = float(torch.linalg.vector_norm(x_back - self._x_g))
            if d_back < p.stop_threshold:
                return Action.STOP, None, None, d_back
            sc.codes[k] = x
            sc.codes[(k + HEADINGS // 2) % HEADINGS] = x_back
            if Action.FORWARD not in cands:
                sc.blocked.add(k)
            if sc.k < HEADINGS // 2:
                if Action.ROTATE_LEFT not in cands:   # cannot look around here: the normal rule decides
                    return self._end_scan()
                sc.k += 1
                return self._scan_report(x, Action.ROTATE_LEFT)
            keys = [h for h in sorted(sc.codes) if h not in sc.blocked]
            if not keys:
                return self._end_scan()
            fwd = self.model.forward_kinematics(torch.cat([sc.codes[h] for h in keys], 0),
                                                torch.tensor([int(Action.FORWARD)])).float()
            att, rep = self._potential(fwd)
            sc.target = keys[int(torch.argmin(att + rep))]
        delta = (sc.target - sc.k) % HEADINGS
        if delta == 0:
            if Action.FORWARD in cands:
                return self._scan_report(x, Action.FORWARD)
            return self._end_scan()      # refused after all: back to the normal rule
        turn = Action.ROTATE_LEFT if delta <= HEADINGS // 2 else Action.ROTATE_RIGHT
        if turn not in cands:
            return self._end_scan()
        sc.k += 1 if turn == Action.ROTATE_LEFT else -1
        return self._scan_report(x, turn)

    def _end_scan(self):
        """Back to the normal rule (which decides this step), with a fresh rotation count."""
        self._scan = None
        self._rot_run = 0
        return None

    def _scan_report(self, x, action):
        torch = self._torch
        w = self.model.forward_kinematics(x, torch.tensor([int(action)])).float()
        att, rep = self._potential(w)
        return action, w[0], att, rep

    def _plans(self, x, cands):
        """Plans "k rotations then FORWARD" (k <= lookahead_rotations). Returns, per plan in
        evaluation order (fewer rotations first, LEFT before RIGHT), its first action, the
        waypoint of that first action (what enters the memory), its end waypoint and the
        repulsion summed over the rotated waypoints it passes (so that turning back and
        forth on the spot is repelled as the greedy rule's rotations are) plus the plan's
        rotation_cost."""
        torch, K = self._torch, self.params.lookahead_rotations
        fwd = torch.tensor([int(Action.FORWARD)])
        first, w_first, ends, via = [], [], [], []
        if Action.FORWARD in cands:
            w0 = self.model.forward_kinematics(x, fwd).float()
            first.append(Action.FORWARD)
            w_first.append(w0)
            ends.append(w0)
            via.append(0.0)
        dirs = [a for a in (Action.ROTATE_LEFT, Action.ROTATE_RIGHT) if a in cands]
        if dirs:
            rot = torch.tensor([int(a) for a in dirs], dtype=torch.long)
            states = x.expand(len(dirs), -1)
            chain = []
            for _ in range(K):
                states = self.model.forward_kinematics(states, rot).float()
                chain.append(states)
            stacked = torch.cat(chain, 0)                      # (K * len(dirs), n), k-major
            tips = self.model.forward_kinematics(stacked, fwd.expand(len(stacked))).float()
            passed = self._repulsion(stacked).reshape(K, len(dirs)).cumsum(0)
            c = self.params.rotation_cost
            for k in range(K):
                for d, a in enumerate(dirs):
                    first.append(a)
                    w_first.append(chain[0][d:d + 1])
                    ends.append(tips[k * len(dirs) + d:k * len(dirs) + d + 1])
                    via.append(float(passed[k, d]) + c * (k + 1))
        return first, torch.cat(w_first, 0), torch.cat(ends, 0), torch.tensor(via)

    def _stop_before_deciding(self, x, d_h: float, t0: float) -> Decision | None:
        """The STOP of a goal reached (d_h, or f-dagger with stop_on_connected) or of
        max_steps exhausted; None: go on deciding."""
        torch, p = self._torch, self.params
        if d_h < p.stop_threshold:
            return Decision(Action.STOP, d_h, [], time.perf_counter() - t0, self.steps, reached=True,
                            reason=f"d_h {d_h:.3f} < stop_threshold {p.stop_threshold}")
        if p.stop_on_connected:
            cls = int(torch.argmax(self.model.inverse_logits(x, self._x_g).reshape(-1)))
            if cls != 0:
                return Decision(Action.STOP, d_h, [], time.perf_counter() - t0, self.steps, reached=True,
                                reason="f-dagger: goal is one action away")
        if self.steps > p.max_steps:
            return Decision(Action.STOP, d_h, [], time.perf_counter() - t0, self.steps, failed=True,
                            reason=f"max_steps {p.max_steps} exhausted")
        return None

    def _candidates(self, free) -> tuple[list, list]:
        """(candidate motions, free motions): the motions of A_free in evaluation order, the
        candidates without the rotation anti_oscillation drops."""
        cands = [a for a in Action.motions() if a in set(free)]
        free_motions = list(cands)
        if self.params.anti_oscillation and self._last_motion in _OPPOSITE:
            undo = _OPPOSITE[self._last_motion]
            if undo in cands and len(cands) > 1:
                cands.remove(undo)
        return cands, free_motions

    def _take_scanned(self, scanned):
        """The look-around's motion (not STOP) -> (action, candidates, attraction, repulsion,
        potential); its FORWARD's waypoint enters the memory."""
        chosen, w_first_i, att, rep = scanned
        if self.params.use_repulsor and chosen == Action.FORWARD:   # the look-around itself is a measurement
            self._push(w_first_i.detach().clone())
        return chosen, [chosen], att, rep, att + rep

    def _choose(self, x, cands):
        """The rule: the candidate (or plan, lookahead_rotations) of least potential ->
        (action, candidates, attraction, repulsion, potential); its first waypoint enters
        the memory."""
        torch, p = self._torch, self.params
        if p.lookahead_rotations > 0:
            first, w_first, w, via = self._plans(x, cands)
        else:
            first = cands
            acts = torch.tensor([int(a) for a in cands], dtype=torch.long)
            w = self.model.forward_kinematics(x.expand(len(cands), -1), acts).float()
            w_first, via = w, 0.0
        att, rep = self._potential(w)
        rep = rep + via
        pot = att + rep
        i = int(torch.argmin(pot))  # first minimum: evaluation order breaks ties
        chosen = first[i]
        if p.use_repulsor:
            self._push(w_first[i].detach().clone())
        if p.lookahead_rotations > 0:  # report, per first action, its best plan
            best = {}
            for k, a in enumerate(first):
                if a not in best or pot[k] < pot[best[a]]:
                    best[a] = k
            keep = [best[a] for a in cands if a in best]
            cands = [first[k] for k in keep]
            att, rep, pot = att[keep], rep[keep], pot[keep]
        return chosen, cands, att, rep, pot

    def _count(self, chosen) -> None:
        """The counters after a motion is decided (a FORWARD ends a look-around)."""
        self._last_motion = chosen
        if chosen == Action.FORWARD:
            self.forwards += 1
            self._rot_run = 0
            self._scan = None
        else:
            self.rotations += 1
            self._rot_run += 1

    def step(self, front, rear, free) -> Decision:
        """One decision from the current observation and A_free (a set of Actions)."""
        t0 = time.perf_counter()
        torch = self._torch
        p = self.params
        if self._x_g is None:
            raise UserError("no goal set: call set_goal first")
        f, r = self._prepare(front, rear, cameras=self.cameras)
        with torch.inference_mode():
            x = self.model.embed(f, r).reshape(1, -1).float()
            d_h = float(torch.linalg.vector_norm(x - self._x_g))
            self.steps += 1
            stop = self._stop_before_deciding(x, d_h, t0)
            if stop is not None:
                return stop
            cands, free_motions = self._candidates(free)
            if not cands:
                self.steps -= 1  # no decision taken
                return Decision(Action.STOP, d_h, [], time.perf_counter() - t0, self.steps,
                                reason="no collision-free motion")
            scanned = self._scan_action(x, f, r, free_motions) if p.stuck_scan > 0 else None
            if scanned is not None and scanned[0] == Action.STOP:
                return Decision(Action.STOP, d_h, [], time.perf_counter() - t0, self.steps, reached=True,
                                reason=f"rear view: d_h {scanned[3]:.3f} < stop_threshold {p.stop_threshold}")
            if scanned is not None:
                chosen, cands, att, rep, pot = self._take_scanned(scanned)
            else:
                chosen, cands, att, rep, pot = self._choose(x, cands)
        self._count(chosen)
        att_l, rep_l, pot_l = att.tolist(), rep.tolist(), pot.tolist()
        candidates = [Candidate(a, pot_l[k], att_l[k], rep_l[k]) for k, a in enumerate(cands)]
        return Decision(chosen, d_h, candidates, time.perf_counter() - t0, self.steps)

    # ------------------------------------------------------------------ undo (runtime)
    _NOT_DECISION_STATE = ("model", "params", "world", "_torch", "_x_g")

    def snapshot(self) -> dict:
        """The decision state before a step (memory, counters, last motion and whatever
        else a step changes: every attribute but the model, parameters, world and goal),
        copied. The runtime restores it when the base aborts the motion of that step, so
        that a motion that did not happen is neither counted nor remembered."""
        import copy

        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in self._NOT_DECISION_STATE})

    def restore(self, snap: dict) -> None:
        """Undo every step taken since ``snap`` (from :meth:`snapshot` for the same goal)."""
        import copy

        self.__dict__.update(copy.deepcopy(snap))
