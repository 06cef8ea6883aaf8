"""Probability distributions named in scenario files, sampled in bulk.

A scenario names a distribution by family in the ``dist`` key; the unit comes from the
field that holds it (``handling_time_min`` holds minutes). Every family can say its mean,
so that expected loads can be computed without sampling, and samples a whole array at
once from a generator the caller owns.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

FloatArray = np.ndarray

# A coefficient of variation far past any observed duration (lognormal service times
# rarely exceed 2); beyond it cv**2 overflows a float.
MAX_CV = 100.0


class _Dist(BaseModel):
    # YAML reads .inf and .nan as numbers: no parameter of a distribution means either.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Each family narrows this to its own name; declared here so that it stays the first
    # key of a family's dump, before the parameters a base class below adds.
    dist: str

    @property
    def mean(self) -> float:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        raise NotImplementedError


class Fixed(_Dist):
    """Always the same value."""

    dist: Literal["fixed"]
    value: float = Field(ge=0)

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        return np.full(size, self.value, dtype=float)


class _ByMean(_Dist):
    """A family given by its mean (the ``mean`` key)."""

    mean_value: float = Field(alias="mean", gt=0)

    @property
    def mean(self) -> float:
        return self.mean_value


class _ByMeanAndCv(_ByMean):
    """A family given by its mean and coefficient of variation."""

    cv: float = Field(gt=0, le=MAX_CV)


class Exponential(_ByMean):
    """Exponential with the given mean (memoryless: the queueing-theory case)."""

    dist: Literal["exponential"]

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        return rng.exponential(self.mean_value, size)


class LogNormal(_ByMeanAndCv):
    """Lognormal given by its own mean and coefficient of variation (not mu/sigma)."""

    dist: Literal["lognormal"]

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean_value) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), size)


class Gamma(_ByMeanAndCv):
    """Gamma given by mean and coefficient of variation."""

    dist: Literal["gamma"]

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean_value / shape, size)


class Uniform(_Dist):
    """Uniform between low and high."""

    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be at least low")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        return rng.uniform(self.low, self.high, size)


class Empirical(_Dist):
    """Resampling of observed values, optionally weighted."""

    dist: Literal["empirical"]
    values: tuple[float, ...] = Field(min_length=1)
    weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Empirical:
        if any(v < 0 for v in self.values):
            raise ValueError("values must not be negative")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have one entry per value")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be non-negative with a positive sum")
        return self

    def _probabilities(self) -> FloatArray | None:
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=float)
        probabilities: FloatArray = w / w.sum()
        return probabilities

    @property
    def mean(self) -> float:
        p = self._probabilities()
        values = np.asarray(self.values, dtype=float)
        return float(values.mean() if p is None else values @ p)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        return rng.choice(np.asarray(self.values, dtype=float), size=size, p=self._probabilities())


Distribution = Annotated[
    Fixed | Exponential | LogNormal | Gamma | Uniform | Empirical,
    Field(discriminator="dist"),
]
"""Any distribution a scenario may name, chosen by its ``dist`` key."""

FAMILIES = ("fixed", "exponential", "lognormal", "gamma", "uniform", "empirical")
