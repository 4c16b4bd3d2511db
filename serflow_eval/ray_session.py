"""Connect to Ray once per command: a local Ray on this machine by default, or a cluster.

``address=None`` starts a local Ray (``num_cpus`` caps the cores it uses); ``"auto"`` joins the
cluster this node belongs to (``ray start --head`` on one node, ``ray start --address HEAD:6379``
on the others); ``"HOST:PORT"`` or ``"ray://HOST:10001"`` joins that one. Ray is an optional
dependency (``pip install -e ".[ray]"``), imported only here and by its users.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError('Ray is not installed: pip install -e ".[ray]" '
                          '(or pip install "ray[tune,rllib]")') from exc
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                env_vars: dict[str, str] | None = None) -> Iterator[Any]:
    """Yield ``ray``, initialised; shut down at exit only if this call started it.

    ``env_vars`` are set in every Ray worker of this job (on every node)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"num_cpus={num_cpus}: allowed >= 1")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if env_vars:
        kwargs["runtime_env"] = {"env_vars": dict(env_vars)}
    if address is None:
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()
