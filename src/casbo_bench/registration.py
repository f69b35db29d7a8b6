"""What the claims ledger pre-registers: its decision rule and the claims it judges.

Read :class:`ClaimsRule` first (the thresholds of the two-sided rule), then
:func:`claims_rule_hash`, then :class:`ClaimRecord` and :class:`ClaimsSpec` (the claims as
data, with everything else the ledger needs to know about a config).

A verdict is only as honest as its rule was fixed before the results were seen. The config's
``claims.rule`` block is that rule; :func:`claims_rule_hash` condenses it, with the schema's
defaults filled in, to 16 hex digits

    hash = sha256(canonical JSON of the filled rule)[:16]

that the workflow writes into the provenance of every trace it runs, and the ledger
(:mod:`casbo_bench.analysis.claims`) refuses to judge a trace run under another rule, or
under none.

A claim is a record of the config, never a branch of the code: an id, a scope (``paper``:
the paper's own cross-scope comparison; ``matched``: against baselines that search the same
noises; ``ablation``: ours), whose claim it is (``paper`` or ``ours``), a sentence and either
comparisons (``kind: comparison``: a method against baselines on benchmark groups) or the
rate check's method (``kind: rate``). Each (id, scope) record is judged on its own.

Only the standard library is imported here: the workflow hashes the rule and checks the
claim records with this module before any job runs.

>>> claims_rule_hash({"alpha": 0.05, "min_seeds": 10}) == claims_rule_hash({})
True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from casbo_bench.errors import UserFacingError

RULE_DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "min_seeds": 10,
    "min_effect": 0.3,
    "min_fraction": 0.5,
    "rate_min_seeds": 5,
    "secondary_budgets": [],
}
"""The defaults of ``claims.rule`` in workflow/schemas/config.schema.yaml (a test keeps the
two equal): a rule hashes the same whether a default is written out or left out."""

SCOPES: tuple[str, ...] = ("paper", "matched", "ablation")
"""What a claim record compares: the paper's own cross-scope comparison (CASBO against latent
baselines), same-scope baselines (docs/method.md section 4b), or an ablation of ours."""

SOURCES: tuple[str, ...] = ("paper", "ours")
"""Whose claim a record tests: the paper's, or ours (comparisons the paper does not make)."""

KINDS: tuple[str, ...] = ("comparison", "rate")
"""How a record is judged: paired rank tests on the benchmark traces, or the rate check."""

STEPS: tuple[str, ...] = ("any", "plain", "sequential")
"""The cells a comparison covers: every K, plain problems (K = 1), sequential ones (K > 1)."""

_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]*")
_PER_D = re.compile(r"([1-9][0-9]*)d")


class ClaimsError(UserFacingError, ValueError):
    """The ledger cannot be built from what was given; the message says what to fix."""


def _known_keys(given: Mapping[str, Any], known: Sequence[str], what: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ClaimsError(f"{what} has unknown key(s) {unknown}; use {', '.join(known)}")


def _required_keys(given: Mapping[str, Any], required: Sequence[str], what: str) -> None:
    missing = [key for key in required if key not in given]
    if missing:
        raise ClaimsError(f"{what} lacks {missing}; give them")


def _labels(values: Any, what: str) -> tuple[str, ...]:
    """``values`` as a tuple of distinct method or group labels."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ClaimsError(f"{what} must be a non-empty list of labels; got {values!r}")
    labels = tuple(str(value) for value in values)
    bad = [label for label in labels if not _LABEL.fullmatch(label)]
    if bad:
        raise ClaimsError(f"{what} has malformed label(s) {bad}; use a-z, 0-9, '_' and '-'")
    if len(set(labels)) != len(labels):
        raise ClaimsError(f"{what} lists a label twice; list each once")
    return labels


@dataclass(frozen=True)
class SecondaryBudget:
    """An evaluation count of a secondary verdict: ``multiple x d``, or ``multiple`` itself.

    Written ``"10d"`` (10 x d evaluations) or ``200`` in config; never more than the
    evaluations the cell is compared at (:meth:`evaluations`).

    >>> SecondaryBudget.parse("10d").evaluations(d=4, compared=300)
    40
    >>> SecondaryBudget.parse(500).evaluations(d=4, compared=300)
    300
    """

    multiple: int
    per_d: bool

    @classmethod
    def parse(cls, value: int | str) -> SecondaryBudget:
        """``"Nd"`` (N x d) or a positive integer N; ClaimsError otherwise."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return cls(value, per_d=False)
        match = _PER_D.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ClaimsError(
                f"secondary budget {value!r} is neither 'Nd' (N x d evaluations, e.g. '10d') "
                f"nor a positive integer; write one of those"
            )
        return cls(int(match.group(1)), per_d=True)

    @property
    def label(self) -> str:
        """How config writes it, and the suffix of its ledger columns (``verdict_10d``)."""
        return f"{self.multiple}d" if self.per_d else str(self.multiple)

    def config_value(self) -> int | str:
        """As config writes it: ``"10d"``, or the number (it hashes as written)."""
        return self.label if self.per_d else self.multiple

    def evaluations(self, d: int, compared: int) -> int:
        """``min(multiple x d, compared)`` (per d) or ``min(multiple, compared)``."""
        return min(self.multiple * d if self.per_d else self.multiple, compared)


@dataclass(frozen=True)
class ClaimsRule:
    """The pre-registered decision rule of the ledger (:mod:`casbo_bench.analysis.claims`).

    Attributes:
        alpha: family-wise error rate of the Holm-adjusted two-sided tests.
        min_seeds: fewest paired seeds for a comparison cell to be tested.
        min_effect: the smallest |rank-biserial correlation| that counts as an advantage.
        min_fraction: the share of ALL of a claim's cells (inconclusive ones included) that
            must agree for a one-sided claim verdict.
        rate_min_seeds: fewest seeds for a rate-check cell to count.
        secondary_budgets: evaluation counts of the secondary verdicts (never deciding).
    """

    alpha: float = RULE_DEFAULTS["alpha"]
    min_seeds: int = RULE_DEFAULTS["min_seeds"]
    min_effect: float = RULE_DEFAULTS["min_effect"]
    min_fraction: float = RULE_DEFAULTS["min_fraction"]
    rate_min_seeds: int = RULE_DEFAULTS["rate_min_seeds"]
    secondary_budgets: tuple[SecondaryBudget, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ClaimsError(f"alpha must lie strictly between 0 and 1; got {self.alpha}")
        if self.min_seeds < 2 or self.rate_min_seeds < 2:
            raise ClaimsError(
                f"min_seeds and rate_min_seeds must be >= 2; got {self.min_seeds} and "
                f"{self.rate_min_seeds}"
            )
        if not 0.0 <= self.min_effect <= 1.0:
            raise ClaimsError(f"min_effect must lie in [0, 1]; got {self.min_effect}")
        if not 0.0 < self.min_fraction <= 1.0:
            raise ClaimsError(f"min_fraction must lie in (0, 1]; got {self.min_fraction}")
        labels = [budget.label for budget in self.secondary_budgets]
        if len(set(labels)) != len(labels):
            raise ClaimsError(f"secondary_budgets lists a budget twice ({labels}); list each once")

    @classmethod
    def from_mapping(cls, rule: Mapping[str, Any]) -> ClaimsRule:
        """The rule of a config's ``claims.rule`` block; left-out keys take the defaults."""
        _known_keys(rule, list(RULE_DEFAULTS), "claims.rule")
        filled = {**RULE_DEFAULTS, **rule}
        budgets = filled["secondary_budgets"]
        if isinstance(budgets, str) or not isinstance(budgets, Sequence):
            raise ClaimsError(f"secondary_budgets must be a list, e.g. ['10d']; got {budgets!r}")
        try:
            return cls(
                alpha=float(filled["alpha"]),
                min_seeds=_integer(filled["min_seeds"], "min_seeds"),
                min_effect=float(filled["min_effect"]),
                min_fraction=float(filled["min_fraction"]),
                rate_min_seeds=_integer(filled["rate_min_seeds"], "rate_min_seeds"),
                secondary_budgets=tuple(SecondaryBudget.parse(value) for value in budgets),
            )
        except ClaimsError:
            raise
        except (TypeError, ValueError) as error:
            raise ClaimsError(f"claims.rule holds a value that is not a number: {error}") from None

    def as_mapping(self) -> dict[str, Any]:
        """The rule as its config block, every key written out, numbers in canonical types."""
        return {
            "alpha": self.alpha,
            "min_seeds": self.min_seeds,
            "min_effect": self.min_effect,
            "min_fraction": self.min_fraction,
            "rate_min_seeds": self.rate_min_seeds,
            "secondary_budgets": [budget.config_value() for budget in self.secondary_budgets],
        }

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`as_mapping`, first 16 hex digits."""
        canonical = json.dumps(self.as_mapping(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def cells_needed(self, total: int) -> int:
        """The fewest of ``total`` cells that make up ``min_fraction`` of them: ceil(f n)."""
        # Rounded first: 0.3 * 10 is 3.0000000000000004 in binary floating point.
        return math.ceil(round(self.min_fraction * total, 9))

    def describe(self) -> str:
        """The rule in one paragraph, for the ledger's header."""
        secondary = ", ".join(budget.label for budget in self.secondary_budgets)
        return (
            f"Comparison cells: one two-sided paired Wilcoxon signed-rank test per cell on the "
            f"best-so-far loss per seed at the smaller of the two budgets, Holm-adjusted over "
            f"the tested cells of each claim record; reproduced iff p_holm < {self.alpha:g} and "
            f"the rank-biserial r >= {self.min_effect:g} (the method lower), contradicted iff "
            f"p_holm < {self.alpha:g} and r <= -{self.min_effect:g} (the baseline lower), "
            f"not-significant otherwise; inconclusive with fewer than {self.min_seeds} paired "
            f"seeds or a run missing on either side. Claims, over ALL their cells: reproduced "
            f"iff at least {self.min_fraction:.0%} of the cells are reproduced and none is "
            f"contradicted; contradicted iff at least {self.min_fraction:.0%} are contradicted "
            f"and none reproduced; inconclusive iff fewer than {self.min_fraction:.0%} of the "
            f"cells are decided (reproduced, contradicted or not-significant); mixed otherwise. "
            f"Secondary budgets ({secondary or 'none'}; N d = N x d evaluations, never more "
            f"than the compared budget): each its own Holm family and its own columns, never "
            f"deciding. Rate claim: a rate-check cell with fewer than {self.rate_min_seeds} "
            f"seeds is inconclusive, pass is reproduced, fail contradicted, no positive "
            f"evidence not-significant; the claim is inconclusive if a control misbehaves, "
            f"contradicted if any convex problem fails, reproduced if all pass, else "
            f"inconclusive."
        )


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ClaimsError(f"claims.rule.{name} must be an integer; got {value!r}")
    return int(value)


def claims_rule_hash(rule: Mapping[str, Any]) -> str:
    """The rule hash of a config's ``claims.rule`` block (defaults filled): 16 hex digits.

    Raises:
        ClaimsError: the block has an unknown key or a value out of its range.
    """
    return ClaimsRule.from_mapping(rule).hash


@dataclass(frozen=True)
class Comparison:
    """``method`` against each of ``baselines`` on the cells of ``steps``."""

    method: str
    baselines: tuple[str, ...]
    steps: str = "any"

    def covers(self, n_steps: int) -> bool:
        """Whether a cell with K = ``n_steps`` belongs to this comparison."""
        return self.steps == "any" or (self.steps == "plain") == (n_steps == 1)


@dataclass(frozen=True)
class ClaimRecord:
    """One claim in one scope: its own Holm family and its own overall verdict.

    Attributes:
        claim_id: the claim's key; several records (one per scope) may share it.
        scope: one of :data:`SCOPES`.
        source: one of :data:`SOURCES`.
        sentence: the claim in one sentence.
        kind: one of :data:`KINDS`.
        groups: the benchmark groups its cells come from (comparisons).
        comparisons: what is compared (comparisons).
        method: the rate check's method (rate).
    """

    claim_id: str
    scope: str
    source: str
    sentence: str
    kind: str = "comparison"
    groups: tuple[str, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    method: str = ""

    @property
    def title(self) -> str:
        """``id (scope)``, how errors and reasons name the record."""
        return f"{self.claim_id} ({self.scope})"

    @property
    def labels(self) -> tuple[str, ...]:
        """Every method label the record names, in the order written."""
        if self.kind == "rate":
            return (self.method,)
        named = [label for c in self.comparisons for label in (c.method, *c.baselines)]
        return tuple(dict.fromkeys(named))

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any]) -> ClaimRecord:
        """A record of the config's ``claims.claims`` list; ClaimsError naming what is wrong."""
        what = f"claim {record.get('id', '?')} ({record.get('scope', '?')})"
        _known_keys(
            record,
            ["id", "kind", "scope", "source", "sentence", "groups", "comparisons", "method"],
            what,
        )
        _required_keys(record, ["id", "scope", "source", "sentence"], what)
        claim_id = str(record["id"])
        if not _LABEL.fullmatch(claim_id):
            raise ClaimsError(f"{what}: malformed id; use a-z, 0-9, '_' and '-'")
        for key, allowed in (("scope", SCOPES), ("source", SOURCES), ("kind", KINDS)):
            value = record.get(key, "comparison")
            if value not in allowed:
                raise ClaimsError(f"{what}: {key} {value!r} is not one of {', '.join(allowed)}")
        sentence = str(record["sentence"]).strip()
        if not sentence:
            raise ClaimsError(f"{what}: the sentence is empty; state the claim")
        head = cls(claim_id, str(record["scope"]), str(record["source"]), sentence)
        if record.get("kind", "comparison") == "rate":
            if "groups" in record or "comparisons" in record:
                raise ClaimsError(
                    f"{what}: a rate claim is judged from the rate check; drop its groups and "
                    f"comparisons"
                )
            _required_keys(record, ["method"], f"{what} (kind rate)")
            (method,) = _labels([record["method"]], f"{what}: method")
            return replace(head, kind="rate", method=method)
        if "method" in record:
            raise ClaimsError(
                f"{what}: method belongs to rate claims; name a comparison's method under "
                f"comparisons"
            )
        _required_keys(record, ["groups", "comparisons"], f"{what} (kind comparison)")
        comparisons = record["comparisons"]
        if isinstance(comparisons, str | Mapping) or not isinstance(comparisons, Sequence):
            raise ClaimsError(f"{what}: comparisons must be a list of {{method, baselines}}")
        if not comparisons:
            raise ClaimsError(f"{what}: comparisons is empty; give at least one")
        return replace(
            head,
            groups=_labels(record["groups"], f"{what}: groups"),
            comparisons=tuple(_comparison(item, what) for item in comparisons),
        )


def _comparison(item: Any, what: str) -> Comparison:
    if not isinstance(item, Mapping):
        raise ClaimsError(f"{what}: a comparison must be {{method, baselines, steps}}")
    _known_keys(item, ["method", "baselines", "steps"], f"{what}: a comparison")
    _required_keys(item, ["method", "baselines"], f"{what}: a comparison")
    (method,) = _labels([item["method"]], f"{what}: comparison method")
    baselines = _labels(item["baselines"], f"{what}: baselines of {method}")
    if method in baselines:
        raise ClaimsError(f"{what}: {method} is compared with itself; drop it from its baselines")
    steps = item.get("steps", "any")
    if steps not in STEPS:
        raise ClaimsError(f"{what}: steps {steps!r} is not one of {', '.join(STEPS)}")
    return Comparison(method, baselines, str(steps))


SPEC_KEYS: tuple[str, ...] = (
    "config",
    "reference",
    "rule",
    "claims",
    "variants",
    "stand_ins",
    "molecule_benchmark",
    "results_dir",
    "figures_dir",
    "registered",
)
"""The keys of a claims spec (results/<name>/claims_spec.json); the first four are required.
``registered`` holds what else was fixed before the run and enters the registration hash:
the variants' definitions and the rate check's rule."""


@dataclass(frozen=True)
class ClaimsSpec:
    """Everything the ledger needs to know about a config, resolved from it by the workflow.

    Attributes:
        config: the config the results come from, as the ledger names it.
        reference: the label of CASBO (its verdicts are re-derived with each variant).
        rule: the pre-registered decision rule.
        records: the claim records, in the order written.
        variants: labels of the reference's robustness variants.
        stand_ins: method -> the method whose traces stand in for it at K = 1 (config
            ``methods[*].on_plain``: CMA-ES over all K x d noises is plain CMA-ES at K = 1).
        molecule_benchmark: the group of the molecule benchmark (its evidence is the
            molecule tables), or None.
        results_dir: where the config's tables lie (evidence column).
        figures_dir: where its figures lie (evidence column).
    """

    config: str
    reference: str
    rule: ClaimsRule
    records: tuple[ClaimRecord, ...]
    variants: tuple[str, ...] = ()
    stand_ins: Mapping[str, str] = field(default_factory=dict)
    molecule_benchmark: str | None = None
    results_dir: str = ""
    figures_dir: str = ""
    registered: Mapping[str, Any] = field(default_factory=dict)

    @property
    def registration_hash(self) -> str:
        """What was fixed before the run, condensed: sha256 of the canonical JSON of the rule
        (defaults filled), the claim records, the reference and :attr:`registered` (variant
        definitions, the rate check's rule), first 16 hex digits. Every trace the workflow
        runs carries it; a change to any of them makes the ledger refuse the old traces."""
        registered = {
            "rule": self.rule.as_mapping(),
            "records": [asdict(record) for record in self.records],
            "reference": self.reference,
            **self.registered,
        }
        canonical = json.dumps(registered, sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def __post_init__(self) -> None:
        keys = [record.title for record in self.records]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ClaimsError(
                f"claim record(s) {twice} appear twice; give each (id, scope) one record"
            )
        if not self.records:
            raise ClaimsError("the claims list is empty; give at least one claim record")
        if self.reference in self.variants or len(set(self.variants)) != len(self.variants):
            raise ClaimsError(
                f"variants must be distinct and differ from the reference {self.reference!r}; "
                f"got {list(self.variants)}"
            )
        for label, stand_in in self.stand_ins.items():
            if stand_in == label or stand_in in self.stand_ins:
                raise ClaimsError(
                    f"{label} stands in for itself or through another stand-in ({stand_in}); "
                    f"name a method that runs at K = 1 as its on_plain"
                )

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> ClaimsSpec:
        """The spec the workflow writes (keys :data:`SPEC_KEYS`); ClaimsError if malformed."""
        _known_keys(spec, SPEC_KEYS, "the claims spec")
        _required_keys(spec, SPEC_KEYS[:4], "the claims spec")
        claims = spec["claims"]
        if isinstance(claims, str | Mapping) or not isinstance(claims, Sequence):
            raise ClaimsError("the claims spec's claims must be a list of claim records")
        name = str(spec["config"]).split(" ", 1)[0] or "default"
        variants = spec.get("variants", [])
        stand_ins = spec.get("stand_ins", {})
        if not isinstance(stand_ins, Mapping):
            raise ClaimsError("stand_ins must map a method label to the label standing in for it")
        return cls(
            config=str(spec["config"]),
            reference=_labels([spec["reference"]], "reference")[0],
            rule=ClaimsRule.from_mapping(spec["rule"]),
            records=tuple(ClaimRecord.from_mapping(record) for record in claims),
            variants=_labels(variants, "variants") if variants else (),
            stand_ins={str(label): str(other) for label, other in stand_ins.items()},
            molecule_benchmark=(
                None if spec.get("molecule_benchmark") is None else str(spec["molecule_benchmark"])
            ),
            results_dir=str(spec.get("results_dir") or f"results/{name}"),
            figures_dir=str(spec.get("figures_dir") or f"paper_figures/{name}"),
            registered=dict(spec.get("registered") or {}),
        )


def read_spec(path: str | os.PathLike[str]) -> ClaimsSpec:
    """The claims spec in JSON file ``path`` (results/<name>/claims_spec.json).

    Raises:
        ClaimsError: the file is missing, not JSON, or not a valid spec.
    """
    source = Path(path)
    if not source.is_file():
        raise ClaimsError(
            f"claims spec {source} does not exist; the workflow writes it (rule claims_spec)"
        )
    try:
        spec = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ClaimsError(f"claims spec {source} is not JSON ({error}); write it again") from None
    if not isinstance(spec, Mapping):
        raise ClaimsError(f"claims spec {source} must hold one JSON object")
    try:
        return ClaimsSpec.from_mapping(spec)
    except ClaimsError as error:
        raise ClaimsError(f"claims spec {source}: {error}") from None
