"""Stage-1 losses: time-contrastive loss on h and class-weighted cross-entropy on f-dagger,
with in-batch negatives. ROS-free."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from o4a_nav.learning.config import NOT_CONNECTED, NUM_CLASSES, action_to_class
from o4a_nav.types import Action


def huber_to(d: torch.Tensor, target: float) -> torch.Tensor:
    """Huber (smooth L1, delta 1) of d - target."""
    return F.smooth_l1_loss(d, torch.full_like(d, target), reduction="none", beta=1.0)


def contrastive_loss(x: torch.Tensor, x_next: torch.Tensor, neg_mask: torch.Tensor,
                     m_pos: float = 1.0, m_neg: float = 10.0) -> torch.Tensor:
    """L_c = mean_i [ huber(d(x_i, x_i+), m+) + mean_j 1[d(x_i, z_j) < m-] huber(d(x_i, z_j), m-) ].

    x, x_next: (B, n) codes of o_t and o_t+1. Candidates z = concat(x, x_next) (2B);
    neg_mask (B, 2B) marks the pairs that are true negatives (not the same or a nearby frame).
    """
    d_pos = (x - x_next).norm(dim=1)
    z = torch.cat([x, x_next], 0)
    d = torch.cdist(x, z)
    active = neg_mask & (d < m_neg)
    neg = torch.where(active, huber_to(d, m_neg), torch.zeros_like(d))
    n_neg = neg_mask.sum(1).clamp(min=1)
    return (huber_to(d_pos, m_pos) + neg.sum(1) / n_neg).mean()


def pair_labels(frame_ids: torch.Tensor, traj: torch.Tensor, actions: torch.Tensor, ignore_window: int = 2,
                partner_ids: torch.Tensor | None = None, partner_traj: torch.Tensor | None = None):
    """Labels for the (B, 2B) in-batch pairs (x_i, z_j), z = concat(o_i, partner of o_i).

    frame_ids, traj: (B,) global frame index and trajectory of o_i; actions: (B,) the
    action from o_i to its partner; partner_ids, partner_traj: the partners' (default
    o_i+1 on the same trajectory: a recorded transition; a revisit positive names another).
    Returns (labels (B, 2B) long with -1 = ignored, neg_mask (B, 2B) bool).
    Same frame -> STOP; z_j == partner of o_i -> class of a_i; another frame of the same
    trajectory within `ignore_window` steps -> ignored; everything else NOT_CONNECTED.
    """
    b = frame_ids.shape[0]
    partner_ids = frame_ids + 1 if partner_ids is None else partner_ids
    partner_traj = traj if partner_traj is None else partner_traj
    z_ids = torch.cat([frame_ids, partner_ids])
    z_traj = torch.cat([traj, partner_traj])
    same = frame_ids[:, None] == z_ids[None, :]
    nxt = partner_ids[:, None] == z_ids[None, :]
    near = (traj[:, None] == z_traj[None, :]) & ((frame_ids[:, None] - z_ids[None, :]).abs() <= ignore_window)
    labels = torch.full((b, 2 * b), NOT_CONNECTED, dtype=torch.long)
    labels[near] = -1
    labels[same] = action_to_class(int(Action.STOP))
    motion = action_to_class(actions[:, None]).expand(b, 2 * b)
    labels = torch.where(nxt, motion, labels)
    neg_mask = labels == NOT_CONNECTED
    return labels, neg_mask


def weighted_ce(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over labelled pairs (label -1 ignored), weighted per class and
    normalised by the summed weights (so rare motion classes count)."""
    flat_logits = logits.reshape(-1, NUM_CLASSES)
    flat = labels.reshape(-1)
    keep = flat >= 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    lab = flat[keep]
    ce = F.cross_entropy(flat_logits[keep], lab, reduction="none")
    w = class_weights[lab]
    return (ce * w).sum() / w.sum()


def batch_class_weights(labels: torch.Tensor, not_connected_share: float = 0.5) -> torch.Tensor:
    """Per-class weights for one batch: NOT_CONNECTED pairs together carry
    `not_connected_share` of the loss, the connected classes share the rest equally
    (each present class counts the same however rare)."""
    counts = torch.bincount(labels[labels >= 0], minlength=NUM_CLASSES).float()
    w = torch.zeros(NUM_CLASSES)
    present = counts > 0
    present_conn = present.clone()
    present_conn[NOT_CONNECTED] = False
    n_conn = int(present_conn.sum())
    if counts[NOT_CONNECTED] > 0:
        w[NOT_CONNECTED] = not_connected_share / counts[NOT_CONNECTED]
    if n_conn:
        share = (1.0 - not_connected_share) if counts[NOT_CONNECTED] > 0 else 1.0
        w[present_conn] = share / n_conn / counts[present_conn]
    return w
