"""The VMs of one stage in the reference simulator: launches, boots, removals and billing.

Each VM is billed per second from its launch with a minimum (``vm.min_billed_s``), boot
included; the minimum is charged at launch. VMs present at reset (``initial_vms``) are booted
and past their minimum: they are billed from the episode start, without one. Launches and
removals happen at control steps only, so lifetimes are whole control intervals and per-second
rounding is exact. Removal takes the youngest VMs, booting ones first. A removed running VM
takes no new request; the requests it is serving finish (graceful drain, shorter than the
per-second billing resolution, not billed).
"""

from __future__ import annotations

from collections.abc import Callable


class VmFleet:
    """Booting VMs (by launch order) and running VMs (by boot order) of one stage."""

    __slots__ = ("slots", "boot_s", "min_billed_s", "booting", "running", "billed_s",
                 "_next_id")

    def __init__(self, slots: int, boot_s: float, min_billed_s: float) -> None:
        self.slots = slots
        self.boot_s = boot_s
        self.min_billed_s = min_billed_s
        self.booting: dict[int, list[float]] = {}  # id -> [billed from, minimum, billed so far]
        self.running: list[list[float]] = []
        self.billed_s = 0.0  # VM-seconds charged since the last take_billed()
        self._next_id = 0

    def reset(self, initial_vms: int) -> None:
        self.booting = {}
        self.running = [[0.0, 0.0, 0.0] for _ in range(initial_vms)]
        self.billed_s = 0.0

    @property
    def servers(self) -> int:
        return len(self.running) * self.slots

    def _settle(self, vm: list[float], t: float) -> None:
        due = max(t - vm[0], vm[1])
        self.billed_s += due - vm[2]
        vm[2] = due

    def apply_target(self, target: int, t: float,
                     schedule_boot: Callable[[float, int], None]) -> int:
        """Launch or remove VMs at time ``t`` to reach ``target``; returns VMs launched.

        ``schedule_boot(time, vm_id)`` is called for each launch that needs to boot.
        """
        alive = len(self.booting) + len(self.running)
        remove = max(alive - target, 0)
        while remove and self.booting:
            _, vm = self.booting.popitem()  # the youngest booting VM
            self._settle(vm, t)
            remove -= 1
        while remove and self.running:
            self._settle(self.running.pop(), t)  # the youngest running VM
            remove -= 1
        launch = max(target - alive, 0)
        for _ in range(launch):
            vm = [t, self.min_billed_s, self.min_billed_s]
            self.billed_s += self.min_billed_s
            if self.boot_s <= 0:
                self.running.append(vm)
            else:
                self._next_id += 1
                self.booting[self._next_id] = vm
                schedule_boot(t + self.boot_s, self._next_id)
        return launch

    def boot(self, vm_id: int) -> bool:
        """A launched VM finished booting; False if it was removed meanwhile."""
        vm = self.booting.pop(vm_id, None)
        if vm is None:
            return False
        self.running.append(vm)
        return True

    def take_billed(self, t: float) -> float:
        """VM-seconds charged up to time ``t`` since the last call (then resets the count)."""
        for vm in self.booting.values():
            self._settle(vm, t)
        for vm in self.running:
            self._settle(vm, t)
        billed, self.billed_s = self.billed_s, 0.0
        return billed
