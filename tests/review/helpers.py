"""Review test helpers: people, customers, recordings and snippets made directly in the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from earshot.access.models import User
from earshot.intake.models import Recording
from earshot.pipeline.types import DeidSnippet
from earshot.privacy.models import Customer
from earshot.review import services


def tone(seconds: float = 1.0, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds), dtype=np.float32) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@dataclass
class Pool:
    """A deployment with a product, and helpers to add people and snippets."""

    deployment: Any
    product_id: str = ""
    snippets: list[str] = field(default_factory=list)

    def user(self, role: str = "reviewer", email: str | None = None) -> str:
        with self.deployment.db.session() as s:
            u = User(email=email or f"{role}-{secrets.token_hex(4)}@example.org", role=role, status="active")
            s.add(u)
            s.flush()
            return u.id

    def customer(self) -> str:
        with self.deployment.db.session() as s:
            c = Customer(lookup_hash=secrets.token_hex(16), consented=True)
            s.add(c)
            s.flush()
            return c.id

    def recording(self, customer_id: str) -> str:
        with self.deployment.db.session() as s:
            r = Recording(
                customer_id=customer_id, product_id=self.product_id, duration_s=5.0, status="processed"
            )
            s.add(r)
            s.flush()
            return r.id

    def snippet(
        self,
        recording_id: str,
        *,
        text: str = "turn on the kitchen lights",
        graders: int = 2,
        seconds: float = 1.0,
    ) -> str:
        with self.deployment.db.session() as s:
            rec = s.get(Recording, recording_id)
            row = services.add_snippet(
                s,
                self.deployment,
                rec,
                DeidSnippet(tone(seconds), 0.0, seconds, text),
                position=len(self.snippets),
                graders_needed=graders,
            )
            self.snippets.append(row.id)
            return row.id

    def fill(
        self, customers: int, recordings_per: int = 1, snippets_per: int = 1, graders: int = 2
    ) -> list[str]:
        made = []
        for _ in range(customers):
            c = self.customer()
            for _ in range(recordings_per):
                r = self.recording(c)
                for _ in range(snippets_per):
                    made.append(self.snippet(r, graders=graders))
        return made
