"""Review domain: the queue reviewers work from and everything around a grade.

- `models`: snippets, leases (assignments), grades, per-reviewer exclusions, escalations, consolidations.
- `assignment`: random, unlinkable, leased, quota-bound assignment (row locks / SKIP LOCKED).
- `services`: storing snippets, the reviewer's task (view, audio, played, grade), gold, export.
- `escalation`: flags (sensitive, personal data, accidental activation), skips, the lead's handling.
- `consolidation` + `rover` + `text`: ROVER vote, agreement figures, adjudication.
- `lead`: queue counts and per-reviewer figures. `policy`: the knobs. `simulation`: bulk pools and checks.
- `views`: reviewer, lead and queue pages and API. `media`, `watermark*`, `delivery_models`: single-use,
  watermarked audio deliveries and leak tracing.
"""
