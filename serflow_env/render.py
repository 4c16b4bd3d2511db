"""The ``ansi`` render of a control interval: one line of what a reader watches (time, load,
VMs, function share, cost, violations, p95), built from the step's info."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

RENDER_MODES = ("ansi",)


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if allowed (None or 'ansi'); ValueError names it otherwise."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode={render_mode!r}; allowed None or one of "
                         f"{list(RENDER_MODES)}")
    return render_mode


def interval_text(info: Mapping[str, Any] | None, steps: int, interval_s: float) -> str:
    """One line for the interval that ended after ``steps`` control steps (``info`` None:
    the episode has just been reset)."""
    if not info:
        return f"t={steps * interval_s:g} s: episode start (no interval yet)"
    arrived = int(info["requests_arrived"])
    vms = " ".join(str(int(v)) for v in np.asarray(info["stage_vms_running"]))
    booting = int(info["vms_booting"])
    share = " ".join(f"{v:.2f}" for v in np.asarray(info["stage_faas_share"]))
    return (f"t={steps * interval_s:g} s: {arrived / interval_s:.1f} req/s | VMs [{vms}]"
            f"{f' +{booting} booting' if booting else ''} | function share [{share}] | "
            f"${float(info['cost_usd']):.5f} | violations "
            f"{100 * float(info['violation_rate']):.2f} % | p95 "
            f"{float(info['latency_p95_s']):.3f} s")
