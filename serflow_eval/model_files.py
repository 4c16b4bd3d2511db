"""Saving a model with its VecNormalize statistics and replay buffer, each file atomically.

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so an interruption (Ctrl-C, a crash) while writing leaves the previous file or
none, never a truncated one. The model is written last: a model file whose name a reader looks
for (``rl_model_N_steps.zip``, ``best_model.zip``) always has its statistics beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path to write to (same folder and suffix, so SB3 keeps the name); renamed
    to ``path`` when the block succeeds, removed when it raises (KeyboardInterrupt included)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(model: Any, path: Path, vecnormalize_path: Path | None = None,
               replay_buffer_path: Path | None = None) -> Path:
    """``model`` to ``path`` (.zip) and, where given and the model has them, its VecNormalize
    statistics and replay buffer; each file atomically, the model last."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vn = model.get_vec_normalize_env()
    if vecnormalize_path is not None and vn is not None:
        with replaced_atomically(Path(vecnormalize_path)) as tmp:
            vn.save(str(tmp))
    if replay_buffer_path is not None and getattr(model, "replay_buffer", None) is not None:
        with replaced_atomically(Path(replay_buffer_path)) as tmp:
            model.save_replay_buffer(tmp)
    with replaced_atomically(path) as tmp:
        model.save(tmp)
    return path
