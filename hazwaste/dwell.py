"""The stage model: how long each waste type stays in each stage, and which stage follows which, learnt from the
ledger's history; flags containers whose next step is missing or far later than usual and names that step.

The sources (seeds-summary section 10) ask for a Markov state model with Bayesian correction. Here:

* **transitions**: a Markov chain over ledger stages per waste type, with a Dirichlet prior (``alpha``) pulled
  towards the pooled chain of all types, so that a type with little history borrows from the others;
* **dwell times**: the log of the time spent in a stage is Normal with unknown mean and variance, with a
  Normal-Inverse-Gamma prior centred on the pooled estimate for that stage (empirical Bayes, ``kappa0`` and
  ``nu0`` pseudo-observations); the posterior predictive is a Student t on the log scale, so the probability
  that a container is still in the stage after ``t`` has a closed form;
* **late**: a container in a stage longer than the predictive ``1 - p_late`` quantile is late; the step named is
  the most probable next stage from the chain;
* **missing**: a recorded transition a -> b that the chain says almost never happens directly (probability below
  ``p_skip``) while a path through one or two stages is likely: the intermediate stages are named.

Pure functions over ``Event`` tuples; ``load_events`` reads them from the ledger.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import psycopg

from core.db import execute

TERMINAL = frozenset({"own_use", "own_disposal", "sent_use", "sent_disposal", "export_use", "export_disposal"})


class Event(NamedTuple):
    container: int
    waste_type: str
    stage: str
    at: datetime


@dataclass(frozen=True)
class Anomaly:
    container: int
    waste_type: str
    kind: str  # "late" or "missing"
    stage: str  # the stage the container is in (late) or came from (missing)
    missing: tuple[str, ...]  # the step(s) that most likely were not recorded
    detail: str
    p: float  # predictive probability of what was seen (small = surprising)


@dataclass
class _LogNormal:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)


def _student_sf(t: float, df: float) -> float:
    """Survival function of Student's t (regularised incomplete beta through a continued fraction)."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return tail if t > 0 else 1 - tail


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbeta) * _cf(a, b, x) / a
    return 1 - math.exp(lbeta) * _cf(b, a, 1 - x) / b


def _cf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 200):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return h


def _histories(events: Iterable[Event]) -> dict[int, list[Event]]:
    by: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by[e.container].append(e)
    for hist in by.values():
        hist.sort(key=lambda e: e.at)
    return by


@dataclass
class StageModel:
    alpha: float = 1.0  # Dirichlet pseudo-counts towards the pooled chain
    kappa0: float = 2.0  # pseudo-observations of the pooled mean log-dwell
    nu0: float = 4.0  # pseudo-observations of the pooled variance
    p_late: float = 0.005
    p_skip: float = 0.1  # above the rate of unrecorded steps: the gaps are in the history it learns from
    min_history: int = 5  # stages with fewer pooled observations are not judged
    trans_: dict[tuple[str, str], Counter] = field(default_factory=dict)
    pooled_trans_: dict[str, Counter] = field(default_factory=dict)
    dwell_: dict[tuple[str, str], _LogNormal] = field(default_factory=dict)
    pooled_dwell_: dict[str, _LogNormal] = field(default_factory=dict)

    def fit(self, events: Iterable[Event]) -> StageModel:
        """Learn transitions and dwell times from complete steps of the history (a step and the next one)."""
        self.__dict__.pop("_p_next_cache", None)
        self.trans_, self.pooled_trans_ = defaultdict(Counter), defaultdict(Counter)
        self.dwell_, self.pooled_dwell_ = defaultdict(_LogNormal), defaultdict(_LogNormal)
        for hist in _histories(events).values():
            for a, b in zip(hist, hist[1:], strict=False):
                self.trans_[(a.waste_type, a.stage)][b.stage] += 1
                self.pooled_trans_[a.stage][b.stage] += 1
                x = math.log(max((b.at - a.at).total_seconds() / 3600, 1 / 60))  # hours, at least a minute
                self.dwell_[(a.waste_type, a.stage)].add(x)
                self.pooled_dwell_[a.stage].add(x)
        return self

    def p_next(self, waste_type: str, stage: str) -> dict[str, float]:
        """Posterior mean transition probabilities out of ``stage`` for ``waste_type``."""
        cache = self.__dict__.setdefault("_p_next_cache", {})
        if (waste_type, stage) not in cache:
            cache[(waste_type, stage)] = self._p_next(waste_type, stage)
        return cache[(waste_type, stage)]

    def _p_next(self, waste_type: str, stage: str) -> dict[str, float]:
        pooled = self.pooled_trans_.get(stage, Counter())
        own = self.trans_.get((waste_type, stage), Counter())
        total_p = sum(pooled.values())
        if not total_p:
            return {}
        weights = {k: own[k] + self.alpha * len(pooled) * pooled[k] / total_p for k in pooled}
        z = sum(weights.values())
        return {k: v / z for k, v in weights.items()}

    def p_still(self, waste_type: str, stage: str, hours: float) -> float | None:
        """Posterior predictive probability that a container stays longer than ``hours`` in ``stage``."""
        pooled = self.pooled_dwell_.get(stage)
        if pooled is None or pooled.n < self.min_history:
            return None
        prior_var = pooled.m2 / max(pooled.n - 1, 1) or 1.0
        own = self.dwell_.get((waste_type, stage), _LogNormal())
        k0, nu0, mu0 = self.kappa0, self.nu0, pooled.mean
        kn, nun = k0 + own.n, nu0 + own.n
        mun = (k0 * mu0 + own.n * own.mean) / kn
        ssn = nu0 * prior_var + own.m2 + k0 * own.n / kn * (own.mean - mu0) ** 2
        scale = math.sqrt(ssn / nun * (1 + 1 / kn))
        t = (math.log(max(hours, 1 / 60)) - mun) / scale
        return _student_sf(t, nun)

    def _likely_path(self, waste_type: str, a: str, b: str) -> tuple[tuple[str, ...], float]:
        """The most probable one- or two-stage detour from ``a`` to ``b``, with its probability."""
        best: tuple[tuple[str, ...], float] = ((), 0.0)
        first = self.p_next(waste_type, a)
        for k, pk in first.items():
            if k in (a, b):
                continue
            second = self.p_next(waste_type, k)
            if second.get(b, 0) * pk > best[1]:
                best = ((k,), second.get(b, 0) * pk)
            for j, pj in second.items():
                if j not in (a, b, k) and pk * pj * self.p_next(waste_type, j).get(b, 0) > best[1]:
                    best = ((k, j), pk * pj * self.p_next(waste_type, j).get(b, 0))
        return best

    def detect(self, events: Iterable[Event], now: datetime) -> list[Anomaly]:
        """Containers with an improbable direct step (a missing one) or a last stage held too long."""
        out: list[Anomaly] = []
        for container, hist in _histories(events).items():
            wt = hist[0].waste_type
            flagged = False
            for a, b in zip(hist, hist[1:], strict=False):
                p_direct = self.p_next(wt, a.stage).get(b.stage, 0.0)
                if p_direct < self.p_skip:
                    path, p_path = self._likely_path(wt, a.stage, b.stage)
                    if path and p_path > p_direct:
                        out.append(
                            Anomaly(
                                container,
                                wt,
                                "missing",
                                a.stage,
                                path,
                                f"{a.stage} -> {b.stage} directly is rare (p={p_direct:.3f}); "
                                f"usually via {' -> '.join(path)}",
                                p_direct,
                            )
                        )
                        flagged = True
                        break
            last = hist[-1]
            if flagged or last.stage in TERMINAL:
                continue
            hours = (now - last.at).total_seconds() / 3600
            p = self.p_still(wt, last.stage, hours)
            if p is not None and p < self.p_late:
                nxt = self.p_next(wt, last.stage)
                step = max(nxt, key=nxt.get) if nxt else "next step"
                out.append(
                    Anomaly(
                        container,
                        wt,
                        "late",
                        last.stage,
                        (step,),
                        f"{hours / 24:.0f} days in {last.stage} (p={p:.2g} of staying that long); {step} not recorded?",
                        p,
                    )
                )
        return out


def load_events(*, conn: psycopg.Connection, site_id: int, since: datetime | None = None) -> list[Event]:
    """The site's ledger as it stands, as events: containers still on site, and those with a step since ``since``
    (the container table says which, so that the query stays a hash join at millions of rows)."""
    return [
        Event(*row)
        for row in execute(
            conn,
            """SELECT l.container_id, w.code, l.stage, l.at FROM hw_ledger_current l
           JOIN hw_waste_type w ON w.id = l.waste_type_id
           WHERE l.site_id = %(site)s AND l.container_id IN (
               SELECT id FROM hw_container WHERE site_id = %(site)s
                 AND (%(since)s::timestamptz IS NULL OR last_at >= %(since)s OR NOT stage = ANY(%(final)s)))
           ORDER BY l.container_id, l.at, l.entry_id""",
            {"site": site_id, "since": since, "final": sorted(TERMINAL)},
        ).fetchall()
    ]


def generated_history(
    n: int,
    now: datetime,
    *,
    seed: int = 7,
    gaps: float = 0.1,
    late_factor: float = 3.0,
) -> tuple[list[Event], dict[int, tuple[str, tuple[str, ...]]]]:
    """A synthetic history of ``n`` containers with planted gaps; returns events and the truth
    ``{container: (kind, missing steps)}`` (for the evaluation, tests and benchmark).

    Dwell times are log-normal around a median per type and stage, and 5 % of them are 1.5 to 4 times longer
    (ordinary delays, which the model should not flag). Planted gaps: the storage steps of a complete history
    removed ("missing"), or a history cut at a stage entered more than ``late_factor`` medians ago ("late").
    """
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    # per waste type: (paths with weights, median hours per stage, log-sd)
    types: dict[str, tuple[list[tuple[tuple[str, ...], float]], dict[str, float], float]] = {
        "electrolyte": (
            [(("generation", "storage_in", "storage_out", "sent_disposal"), 1.0)],
            {"generation": 6, "storage_in": 24 * 40, "storage_out": 3},
            0.5,
        ),
        "carbon": (
            [
                (("generation", "storage_in", "storage_out", "sent_disposal"), 0.8),
                (("generation", "storage_in", "storage_out", "sent_use"), 0.2),
            ],
            {"generation": 24, "storage_in": 24 * 90, "storage_out": 4},
            0.45,
        ),
        "packaging": (
            [(("generation", "storage_in", "storage_out", "sent_use"), 0.7), (("generation", "own_use"), 0.3)],
            {"generation": 12, "storage_in": 24 * 30, "storage_out": 2},
            0.6,
        ),
        "lab": (
            [(("generation", "storage_in", "storage_out", "sent_disposal"), 1.0)],
            {"generation": 2, "storage_in": 24 * 60, "storage_out": 2},
            0.5,
        ),
    }
    events: list[Event] = []
    truth: dict[int, tuple[str, tuple[str, ...]]] = {}
    span = timedelta(days=720)
    for cid in range(1, n + 1):
        wt = rng.choice(sorted(types))
        paths, medians, sd = types[wt]
        path = rng.choices([p for p, _ in paths], [w for _, w in paths])[0]
        t = now - span * rng.random()
        hist = []
        for i, stage in enumerate(path):
            if t > now:
                break
            hist.append(Event(cid, wt, stage, t))
            if i + 1 < len(path):
                slow = rng.uniform(1.5, 4) if rng.random() < 0.05 else 1.0  # ordinary delays: a heavier tail
                t += timedelta(hours=medians[stage] * math.exp(rng.gauss(0, sd)) * slow)
        if rng.random() < gaps and len(hist) == len(path) and len(path) == 4:
            if rng.random() < 0.5:  # the storage steps were never recorded
                hist = [hist[0], hist[3]]
                truth[cid] = ("missing", ("storage_in", "storage_out"))
            else:  # it left long ago, but nobody recorded it
                keep = rng.choice([1, 2])  # stuck in generation or in storage
                stage = hist[keep - 1].stage
                if now - hist[keep - 1].at > timedelta(hours=medians[stage] * late_factor):
                    hist = hist[:keep]
                    truth[cid] = ("late", (path[keep],))
        events += hist
    return events, truth


def score(found: Sequence[Anomaly], truth: dict[int, tuple[str, tuple[str, ...]]]) -> dict[str, float]:
    """Precision and recall of the flagged containers, and how often the named step was the missing one."""
    flagged = {a.container: a for a in found}
    tp = [c for c in flagged if c in truth]
    named = sum(1 for c in tp if flagged[c].missing[:1] == truth[c][1][:1])
    return {
        "planted": len(truth),
        "flagged": len(flagged),
        "true_positives": len(tp),
        "precision": round(len(tp) / len(flagged), 3) if flagged else 0.0,
        "recall": round(len(tp) / len(truth), 3) if truth else 0.0,
        "step_named_right": round(named / len(tp), 3) if tp else 0.0,
    }
