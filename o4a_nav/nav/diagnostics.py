"""What the navigation nodes report on /diagnostics (diagnostic_msgs/DiagnosticArray), as
plain data (ROS-free): input freshness with ages, model loaded, decision latency, motion
faults. The nodes convert each Diagnostic into a DiagnosticStatus once a second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# = diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass
class Diagnostic:
    name: str                     # e.g. "inputs" (the node prefixes its own name)
    level: int
    message: str
    values: dict = field(default_factory=dict)   # key -> str


def _age(now: float, stamp: float) -> str:
    return "never" if not math.isfinite(stamp) else f"{now - stamp:.3f}"


def input_freshness(stamps: dict[str, float], now: float, timeout: float, required: bool = True) -> Diagnostic:
    """Ages [s] of each input's newest message; stale (older than ``timeout`` or never seen)
    is a WARN when the input is needed now (``required``), else OK with the ages."""
    stale = [n for n, t in stamps.items() if not (now - t <= timeout)]
    values = {f"{n} age [s]": _age(now, t) for n, t in stamps.items()}
    values["stale after [s]"] = f"{timeout:g}"
    if not stale:
        return Diagnostic("inputs", OK, "all inputs fresh", values)
    text = "stale or missing: " + ", ".join(stale)
    return Diagnostic("inputs", WARN if required else OK, text if required else text + " (not needed now)", values)


def latency(latencies_ms: list[float], window: int = 200, budget_ms: float = 20.0) -> Diagnostic:
    """Decision latency (image arrival -> action published) over the last ``window``
    decisions; WARN when the p95 exceeds the budget."""
    recent = [x for x in latencies_ms[-window:] if math.isfinite(x)]
    if not recent:
        return Diagnostic("decision latency", OK, "no decision yet", {"decisions": "0"})
    a = np.asarray(recent)
    med, p95 = float(np.median(a)), float(np.percentile(a, 95))
    values = {"decisions": str(len(latencies_ms)), "median [ms]": f"{med:.1f}", "p95 [ms]": f"{p95:.1f}",
              "max [ms]": f"{float(a.max()):.1f}", "budget p95 [ms]": f"{budget_ms:g}"}
    level = OK if p95 <= budget_ms else WARN
    return Diagnostic("decision latency", level, f"p95 {p95:.1f} ms" + ("" if level == OK else " over budget"), values)


def model(model_path: str, world: str | None, error: str) -> Diagnostic:
    if error:
        return Diagnostic("model", ERROR, "no usable model (NO_MODEL): " + error, {"model_path": model_path})
    return Diagnostic("model", OK, "model loaded", {"model_path": model_path, "world": world or ""})


def lifecycle(active: bool) -> Diagnostic:
    return Diagnostic("lifecycle", OK, "active" if active else "inactive (not deciding or publishing)",
                      {"active": str(active).lower()})


def motion(state_name: str, faults: int, last_fault: str, last_failed: bool) -> Diagnostic:
    """Base controller: the motion state, the aborted motions so far and the last reason;
    WARN while the most recent finished motion was aborted."""
    values = {"state": state_name, "aborted motions": str(faults), "last fault": last_fault or "none"}
    if last_failed:
        return Diagnostic("motion", WARN, f"last motion aborted: {last_fault}", values)
    return Diagnostic("motion", OK, state_name, values)
