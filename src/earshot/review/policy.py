"""The review queue's knobs (window, leases, quotas, gold rate, adjudication thresholds).

Read from the deployment's settings (`review_*` fields, when the settings class has them) with these
defaults; a deployment can also carry an explicit policy (`set_policy`), which tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from earshot.deployment import Deployment

# Fastest playback speed the UI offers: a snippet cannot have been heard in less than duration / this.
MAX_PLAYBACK_SPEED = 2.0


@dataclass(frozen=True)
class ReviewPolicy:
    """Assignment and consolidation settings of one deployment."""

    customer_window_days: float = 30.0  # never the same customer to one reviewer within this
    lease_minutes: float = 10.0  # a lease not finished in this time returns to the pool
    quota_per_hour: int = 120  # snippets a reviewer may receive in any rolling hour
    quota_per_shift: int = 600  # ... and in any rolling shift
    shift_hours: float = 8.0
    gold_rate: float = 0.05  # share of assignments that are gold snippets (when one is eligible)
    gold_pass_wer: float = 0.2  # a gold answer within this WER counts as correct
    adjudication_wer: float = 0.25  # mean pairwise WER above this goes to a lead
    adjudication_grade_spread: int = 2  # accuracy grades this far apart go to a lead
    expire_batch: int = 50  # expired leases reclaimed per assignment request

    @property
    def customer_window(self) -> timedelta:
        return timedelta(days=self.customer_window_days)

    @property
    def lease(self) -> timedelta:
        return timedelta(minutes=self.lease_minutes)

    @property
    def shift(self) -> timedelta:
        return timedelta(hours=self.shift_hours)

    @classmethod
    def from_settings(cls, settings: Any) -> ReviewPolicy:  # noqa: ANN401 - any settings object
        """Take every `review_<field>` the settings define; defaults for the rest."""
        values = {}
        for f in fields(cls):
            value = getattr(settings, f"review_{f.name}", None)
            if value is not None:
                values[f.name] = type(getattr(cls, f.name))(value)
        return cls(**values)

    def with_(self, **changes: Any) -> ReviewPolicy:  # noqa: ANN401
        return replace(self, **changes)


_ATTR = "_earshot_review_policy"


def policy_for(deployment: Deployment) -> ReviewPolicy:
    """The deployment's policy: an explicit one if set, else from its settings."""
    explicit = getattr(deployment, _ATTR, None)
    if explicit is not None:
        return explicit
    return ReviewPolicy.from_settings(deployment.settings)


def set_policy(deployment: Deployment, policy: ReviewPolicy | None) -> None:
    """Pin a policy on a deployment object (tests, benchmarks); None goes back to the settings."""
    setattr(deployment, _ATTR, policy)
