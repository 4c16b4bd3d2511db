"""Simulated requests per wall-second: the per-request reference vs the fast vector model.

    python benchmarks/bench_reference.py [--scenario default] [--steps 720] [--scale 1]
                                         [--sizes 1 1024] [--seconds 3] [--repeat 3]

All figures come from this run. The reference (N = 1) and the vector model (each N in
``--sizes``) run the same scenario under the same fixed action (10 VMs per stage, half of the
requests on functions; VMs boot during the first 100 s) for ``--steps`` control steps (720 =
the default trace's 2 hours); a "simulated request" is an arrival. The reference runs one
episode per round, the vector model repeats episodes until ``--seconds`` have passed; rounds
are interleaved ``--repeat`` times and the best rate of each is kept, which resists other load
on the machine. The ratio compares requests per wall-second at the largest N with the
reference's. The fast model's cost per step does not grow with the load
(counts, not requests), the reference's does: ``--scale`` multiplies the trace.

The second part measures the event-loop engine choice on one small case, an M/M/4 queue at
rho = 0.8 (exponential service, mean 1 s): a hand-written heap loop against SimPy processes
with a ``simpy.Resource``, each simulating the same number of customers; their mean waits are
printed next to Erlang-C as a sanity check.
"""

from __future__ import annotations

import argparse
import heapq
import math
import time
from collections import deque

import numpy as np
import simpy

from serflow_env import SerflowVectorEnv
from serflow_env.reference import ReferenceVectorEnv


def requests_per_second(env, steps: int, seconds: float) -> tuple[float, float]:
    """(arrivals per wall-second, wall seconds) over whole runs of ``steps`` steps."""
    n, k = env.num_envs, env.scenario.num_stages
    action = np.tile(np.r_[np.zeros(k), np.zeros(k)].astype(np.float32), (n, 1))
    env.reset(seed=0)
    env.step(action)  # warm-up
    arrived, start = 0.0, time.perf_counter()
    while True:
        env.reset(seed=0)
        for _ in range(steps):
            arrived += float(env.step(action)[4]["requests_arrived"].sum())
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return arrived / elapsed, elapsed


def mmc_heap(c: int, lam: float, customers: int, rng: np.random.Generator) -> float:
    """Mean wait in M/M/c (service mean 1 s) with a heap event loop."""
    inter = rng.exponential(1.0 / lam, customers).tolist()
    service = rng.exponential(1.0, customers).tolist()
    departures: list[float] = []
    waiting: deque[tuple[float, int]] = deque()  # (arrival time, customer)
    t_arr, wait_sum = 0.0, 0.0
    for i in range(customers + 1):
        t_arr = t_arr + inter[i] if i < customers else math.inf
        while departures and departures[0] <= t_arr:  # departures before this arrival
            t_dep = heapq.heappop(departures)
            if waiting:
                since, j = waiting.popleft()
                wait_sum += t_dep - since
                heapq.heappush(departures, t_dep + service[j])
        if i == customers:
            break
        if len(departures) < c:
            heapq.heappush(departures, t_arr + service[i])
        else:
            waiting.append((t_arr, i))
    return wait_sum / customers


def mmc_simpy(c: int, lam: float, customers: int, rng: np.random.Generator) -> float:
    """Mean wait in M/M/c (service mean 1 s) with SimPy processes and a Resource."""
    inter = rng.exponential(1.0 / lam, customers).tolist()
    service = rng.exponential(1.0, customers).tolist()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    waits: list[float] = []

    def customer(i: int):
        arrived = env.now
        with servers.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(service[i])

    def source():
        for i in range(customers):
            yield env.timeout(inter[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    return sum(waits) / customers


def erlang_c_wait(c: int, a: float) -> float:
    """Mean wait of M/M/c with service mean 1 s and offered load a (textbook formula)."""
    top = a**c / math.factorial(c) / (1 - a / c)
    p_wait = top / (sum(a**n / math.factorial(n) for n in range(c)) + top)
    return p_wait / (c - a)


def engine_comparison(customers: int = 200_000) -> None:
    c, rho = 4, 0.8
    print(f"\nengine choice, M/M/{c} at rho={rho}, {customers:,} customers "
          f"(Erlang-C mean wait {erlang_c_wait(c, rho * c):.4f} s):")
    for name, fn in (("heap loop", mmc_heap), ("SimPy", mmc_simpy)):
        start = time.perf_counter()
        wait = fn(c, rho * c, customers, np.random.default_rng(1))
        elapsed = time.perf_counter() - start
        print(f"  {name:<10} {customers / elapsed:>12,.0f} customers/s   mean wait {wait:.4f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--steps", type=int, default=720)
    parser.add_argument("--scale", type=float, default=1.0, help="arrivals.scale")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 1024])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (best kept)")
    args = parser.parse_args()
    if min(args.steps, args.repeat, args.customers, *args.sizes) < 1 or args.scale <= 0 \
            or args.seconds <= 0:
        parser.error("--steps, --sizes, --repeat, --customers must be >= 1 and --scale, "
                     "--seconds > 0")
    kw = {"episode_steps": args.steps, "overrides": {"arrivals.scale": args.scale}}

    envs = {"reference": ReferenceVectorEnv(1, args.scenario, **kw)}
    envs.update({n: SerflowVectorEnv(n, args.scenario, **kw) for n in args.sizes})
    rates: dict = {key: 0.0 for key in envs}
    ref_time = 0.0
    for _ in range(args.repeat):  # interleaved rounds; the best of each resists other load
        for key, env in envs.items():
            rate, elapsed = requests_per_second(env, args.steps,
                                                0.0 if key == "reference" else args.seconds)
            if rate > rates[key]:
                rates[key] = rate
                ref_time = elapsed if key == "reference" else ref_time
    ref_rate = rates["reference"]
    print(f"scenario={args.scenario}, scale={args.scale:g}, {args.steps} steps per episode, "
          f"fixed action (10 VMs per stage, function share 0.5), best of {args.repeat} rounds")
    print(f"{'reference (per request), N=1':<34} {ref_rate:>14,.0f} requests/s "
          f"({ref_time:.1f} s for one episode)")
    for n in args.sizes:
        print(f"{f'vector model, N={n}':<34} {rates[n]:>14,.0f} requests/s")
    top = max(args.sizes)
    print(f"vector model (N={top}) / reference: {rates[top] / ref_rate:,.0f}x per simulated "
          "request")
    engine_comparison(args.customers)


if __name__ == "__main__":
    main()
