"""The backbone job (`o4a backbone`, o4a_nav/learning/backbone.py) on a tiny job: two
generated training worlds and one held-out world of 500 frames, one stage-1 epoch per
round, starting from the shipped model."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from o4a_nav.errors import UserError
from o4a_nav.learning.backbone import JobSpec, run_job
from o4a_nav.learning.model_io import load_model

START = str(Path(__file__).resolve().parents[1] / "models" / "o4a_default")
SPEC = JobSpec(train_worlds=2, heldout_worlds=1, frames=500, epochs_per_round=1)


def _bar(pub: Path, recall: float, far: float = 1.0) -> None:
    """Stand in for a published backbone with these held-out candidate recall and far pairs."""
    pub.mkdir(parents=True, exist_ok=True)
    (pub / "meta.json").write_text(json.dumps(
        {"backbone_job": {"heldout": {"mean": {"candidate_recall": recall, "far_below": far}}}}))


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.backbone.state_dict().values(), b.backbone.state_dict().values()))


def test_rounds_resume_hold_out_and_publish_only_what_beats_the_published(tmp_path):
    state, pub = tmp_path / "job", tmp_path / "backbone"
    partial = state / "bags" / "gen_s1000_000.partial"
    partial.mkdir(parents=True)
    (partial / "junk").write_text("a bag a killed run left half-written")
    _bar(pub, 1.01)   # no round can beat it
    logs = []
    st = run_job(state, START, SPEC, publish=pub, rounds=1, threads=1, log=logs.append)
    assert not partial.exists() and (state / "bags" / "gen_s1000_000" / "metadata.yaml").is_file()
    assert st["rounds_done"] == 1 and not st["rounds"][0]["published"]
    assert json.loads((pub / "meta.json").read_text())["backbone_job"]["heldout"]["mean"]["candidate_recall"] == 1.01
    ev = json.loads((state / "rounds" / "r001" / "eval.json").read_text())
    assert list(ev["worlds"]) == ["gen_s2000_000"]                 # held out: generated with its own seed ...
    assert 0.0 <= ev["mean"]["candidate_recall"] <= 1.0
    assert any("gen_s1000_000" in line and "revisit positives" in line for line in logs)   # ... never trained on
    assert not any("gen_s2000_000" in line and "revisit positives" in line for line in logs)
    r1 = load_model(state / "rounds" / "r001" / "model")
    assert r1.worlds == [] and not _same(r1, load_model(START))    # the round trained h

    _bar(pub, 0.0)    # any round beats it: the next run goes on with round 2 and publishes it
    st = run_job(state, START, SPEC, publish=pub, rounds=1, threads=1, log=logs.append)
    assert st["rounds_done"] == 2 and st["rounds"][1]["published"] and len(st["rounds"]) == 2
    assert st["current"].endswith("r002/model")
    published = load_model(pub)
    job = published.meta["backbone_job"]
    assert job["round"] == 2 and job["epochs"] == 2 and job["heldout_worlds"] == ["gen_s2000_000"]
    assert job["train_worlds"] == ["gen_s1000_000", "gen_s1000_001"] and job["machine"]["cores"] >= 1
    assert _same(published, load_model(state / "rounds" / "r002" / "model"))
    assert not _same(published, r1)                                # round 2 trained on from round 1

    with pytest.raises(UserError, match="other settings: frames 500"):
        run_job(state, START, replace(SPEC, frames=600), publish=pub, rounds=1)
    with pytest.raises(UserError, match="did not make"):
        run_job(tmp_path / "job2", START, SPEC, publish=START, rounds=1)
    with pytest.raises(UserError, match="different generator seeds"):
        run_job(tmp_path / "job3", START, replace(SPEC, heldout_seed=SPEC.train_seed), rounds=1)


def test_place_metrics_scores_codes_that_know_places_above_codes_that_do_not():
    """report.place_metrics, the job's held-out measure: codes that are the poses (yaw
    scaled so that a 15-deg turn is as far as a 0.25-m step) find the one-action pairs
    among their 20 nearest codes and never take far views for the goal; random codes do
    neither."""
    import numpy as np

    from o4a_nav.learning.report import place_metrics

    g = np.arange(0.0, 2.01, 0.25)
    x, y, k = np.meshgrid(g, g, np.arange(24), indexing="ij")
    yaw = np.radians(15.0) * k.ravel()
    poses = np.stack([x.ravel(), y.ravel(), yaw], 1)
    poses = np.concatenate([poses, poses + [0.03, 0.0, 0.02]])   # every place seen on a second visit
    yaw = poses[:, 2]
    traj = np.arange(len(poses))
    r = 0.25 / np.radians(15.0)
    placed = torch.tensor(np.stack([poses[:, 0], poses[:, 1], r * np.cos(yaw), r * np.sin(yaw)], 1), dtype=torch.float32)
    good = place_metrics(placed, poses, traj, threshold=0.3)
    bad = place_metrics(torch.randn(len(poses), 4) * 3.0, poses, traj, threshold=0.3)
    assert good["ideal_pairs"] > 10000 and good["candidate_recall"] > 0.95 and bad["candidate_recall"] < 0.1
    assert good["far_below"] == 0.0 and good["same_below"] == 1.0


def test_a_round_beats_the_published_only_with_more_recall_and_no_more_far_pairs():
    from o4a_nav.learning.backbone import PUBLISH_MIN_GAIN, beats

    bar = {"candidate_recall": 0.681, "far_below": 0.023}
    assert beats({"candidate_recall": 0.70, "far_below": 0.02}, bar)
    assert not beats({"candidate_recall": 0.797, "far_below": 0.039}, bar)      # round 1 of the first job
    assert not beats({"candidate_recall": 0.681 + PUBLISH_MIN_GAIN / 2, "far_below": 0.0}, bar)
    assert beats({"candidate_recall": 0.70, "far_below": 0.5}, {"candidate_recall": 0.6})   # an old bar: recall only


def test_a_new_job_starts_from_the_published_backbone_when_there_is_one(tmp_path):
    from o4a_nav.learning.backbone import default_start

    pub = tmp_path / "backbone"
    assert default_start(str(pub)) == "models/o4a_default"          # nothing published yet
    assert default_start(None) == "models/o4a_default"
    (pub).mkdir()
    (pub / "meta.json").write_text(json.dumps({"model": "not the job's"}))
    assert default_start(str(pub)) == "models/o4a_default"          # a model the job did not make
    _bar(pub, 0.8, 0.02)
    assert default_start(str(pub)) == str(pub)                      # e.g. committed by an earlier machine's job
