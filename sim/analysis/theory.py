"""Queueing theory the model is validated against: Erlang C, Erlang A (M/M/c+M), M/M/c."""

from __future__ import annotations

import math

import numpy as np


def erlang_c_wait_probability(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C formula)."""
    a = arrival_rate / service_rate
    if a >= servers:
        return 1.0
    # Erlang B by its stable recursion, then C from B.
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    return b / (1 - rho + rho * b)


def erlang_c_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue of an M/M/c queue (infinite if unstable)."""
    if arrival_rate >= servers * service_rate:
        return math.inf
    pw = erlang_c_wait_probability(arrival_rate, service_rate, servers)
    return pw / (servers * service_rate - arrival_rate)


def erlang_c_service_level(
    arrival_rate: float, service_rate: float, servers: int, threshold: float
) -> float:
    """P(wait <= threshold) in an M/M/c queue."""
    pw = erlang_c_wait_probability(arrival_rate, service_rate, servers)
    return 1 - pw * math.exp(-(servers * service_rate - arrival_rate) * threshold)


def erlang_a(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    abandon_rate: float,
    max_states: int = 5000,
) -> dict[str, float]:
    """M/M/c+M (Erlang A) by its birth-death chain: abandonment probability and mean wait.

    The chain is truncated where the stationary probabilities vanish; ``mean_wait`` is the
    mean time in queue over all arrivals, served or not.
    """
    n = np.arange(max_states)
    death = np.minimum(n, servers) * service_rate + np.maximum(n - servers, 0) * abandon_rate
    # p_n proportional to prod_{k=1..n} lambda / death_k, in logs for stability.
    log_p = np.zeros(max_states)
    log_p[1:] = np.cumsum(np.log(arrival_rate) - np.log(death[1:]))
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    in_queue = np.maximum(n - servers, 0)
    mean_queue = float((p * in_queue).sum())
    abandon_flow = abandon_rate * mean_queue
    return {
        "abandon_probability": abandon_flow / arrival_rate,
        "mean_queue_length": mean_queue,
        "mean_wait": mean_queue / arrival_rate,  # Little's law over all arrivals
        "wait_probability": float(p[n >= servers].sum()),  # PASTA
    }


def mmc_mean_response(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in system (wait + service) of an M/M/c queue."""
    return erlang_c_mean_wait(arrival_rate, service_rate, servers) + 1 / service_rate


def agents_for_service_level(
    arrival_rate: float, service_rate: float, threshold: float, target: float
) -> int:
    """Fewest agents whose Erlang C service level meets ``target``."""
    c = max(1, math.ceil(arrival_rate / service_rate))
    while erlang_c_service_level(arrival_rate, service_rate, c, threshold) < target:
        c += 1
    return c
