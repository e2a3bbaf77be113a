"""The record of processing activities (GDPR Art. 30(1)), generated from the live deployment.

Everything that can drift - products, facilities and their countries, staff counts, retention
periods, sampling, key and storage backends - is read from the configuration and the database at
the moment the record is generated, so the record describes what actually runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from earshot import __version__
from earshot.access.models import Facility, User
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Product
from earshot.privacy.models import Customer, Erasure
from earshot.review.models import Snippet

# EU/EEA member states: processing there is no transfer under Chapter V.
EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)
# Countries with an EU adequacy decision (Art. 45) at the time of writing; others need Art. 46 safeguards.
ADEQUATE = frozenset("AD AR CA FO GG IL IM JP JE NZ KR CH GB UY US".split())


def _transfer_basis(country: str) -> str:
    if country in EEA:
        return "none (EEA)"
    if country == "US":
        return (
            "Art. 45 adequacy (EU-US Data Privacy Framework: recipient must be certified), else Art. 46 SCCs"
        )
    if country in ADEQUATE:
        return "Art. 45 adequacy decision"
    return "Art. 46 standard contractual clauses + transfer impact assessment required"


def _database_kind(deployment: Deployment) -> str:
    return deployment.db.engine.dialect.name  # never the URL: it may carry credentials


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def processing_record(session: Session, deployment: Deployment, now: datetime | None = None) -> str:
    """The Art. 30 record as Markdown."""
    s = deployment.settings
    now = now or utcnow()
    products = list(session.scalars(select(Product).order_by(Product.name)))
    staff = dict(
        session.execute(
            select(User.role, func.count()).where(User.status == "active").group_by(User.role)
        ).all()
    )
    per_facility = {
        (fid, role): n
        for fid, role, n in session.execute(
            select(User.facility_id, User.role, func.count())
            .where(User.status == "active")
            .group_by(User.facility_id, User.role)
        )
    }
    facilities = list(session.scalars(select(Facility).order_by(Facility.country, Facility.name)))
    consenting = session.scalar(select(func.count()).select_from(Customer).where(Customer.consented)) or 0
    by_status = dict(session.execute(select(Snippet.status, func.count()).group_by(Snippet.status)).all())
    held = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
    erasures = session.scalar(select(func.count()).select_from(Erasure)) or 0

    lines = [
        "# Record of processing activities (GDPR Art. 30(1))",
        "",
        f"Generated {now.isoformat(timespec='seconds')} by Earshot {__version__}"
        " from the live configuration.",
        "",
        "## Controller",
        "",
        f"- Controller: {s.controller_name}",
        f"- Contact: {s.controller_contact}",
        f"- Data protection officer: {s.dpo_contact}",
        "",
        "## Purposes of the processing (Art. 30(1)(b))",
        "",
        "- Improving speech recognition of the voice products listed below: trained reviewers listen to",
        "  short, de-identified snippets of a small sample of recordings, correct the machine transcript",
        "  and grade it; the results form a dataset for model training and an ASR quality report.",
        "- Demonstrating compliance: consent records, erasure receipts and a tamper-evident audit log.",
        "- Lawful basis: consent (Art. 6(1)(a)), given by opt-in in the product and withdrawable at any",
        "  time (Art. 7(3)); voices are anonymised and no biometric identification takes place (Art. 9",
        "  is not relied on).",
        "",
        "## Categories of data subjects (Art. 30(1)(c))",
        "",
        f"- Customers of the voice products who opted in: {consenting} currently consenting.",
        "- Other people audible in a customer's recording (incidental; personal data is bleeped and masked).",
        "- Staff of Earshot (active accounts by role): "
        + (", ".join(f"{role} {n}" for role, n in sorted(staff.items())) or "none"),
        "",
        "Products submitting recordings:",
        "",
        *_md_table(
            ["product", "active", "reviewers per snippet"],
            [[p.name, "yes" if p.active else "no", str(p.graders_per_snippet)] for p in products]
            or [["(no product registered)", "", ""]],
        ),
        "",
        "## Categories of personal data (Art. 30(1)(c))",
        "",
        f"- Sampled recordings ({s.sample_rate:.2%} of consenting customers' recordings, at most"
        f" {s.daily_cap_per_customer} per customer and day), held encrypted only until they are cut.",
        f"- Snippets of at most {s.max_snippet_s:g} s: audio with personal data bleeped and the voice"
        " anonymised; the machine transcript with personal data masked; reviewers' corrected transcripts"
        " and grades. Audio and text are encrypted per customer.",
        "- A random pseudonym per customer, linked to the product's customer id only through a keyed",
        "  hash (the product's id itself is never stored); consent events with the consent text version.",
        "- Staff: e-mail address, role, facility, password hash, MFA credentials, vetting records,",
        "  session and audit records (IP addresses).",
        f"- Snippets held now by status: {held or 'none'}; erasures carried out: {erasures}.",
        "",
        "## Recipients (Art. 30(1)(d)) - reviewers by facility and country",
        "",
        "Reviewers hear snippets only on the networks of these facilities; nobody else receives audio.",
        "",
        *_md_table(
            ["facility", "country", "reviewers", "leads", "transfer outside the EEA (Art. 30(1)(e))"],
            [
                [
                    f.name,
                    f.country,
                    str(per_facility.get((f.id, "reviewer"), 0)),
                    str(per_facility.get((f.id, "lead"), 0)),
                    _transfer_basis(f.country),
                ]
                for f in facilities
            ]
            or [["(no facility configured)", "", "", "", ""]],
        ),
        "",
        f"Allowed countries of processing: {', '.join(s.allowed_countries) or 'none'}.",
        "Dataset exports (pseudonymous transcripts and grades, no audio, no customer ids) go to the",
        "controller's speech team; tombstones of erased snippets are published with them.",
        "",
        "## Time limits for erasure (Art. 30(1)(f))",
        "",
        f"- Snippet audio: {s.retention_after_consolidation_days:g} days after grading.",
        "- Everything of a recording (snippets, transcripts, grades):"
        f" {s.retention_max_age_days:g} days after receipt.",
        "- Raw recordings: deleted as soon as they are cut into snippets.",
        "- On withdrawal of consent: intake stops at once, snippets not yet graded are deleted.",
        "- On request (Art. 17): the customer's data key is destroyed at once (crypto-shredding), rows and",
        "  blobs are removed right after, tombstones tell dataset consumers which rows to drop.",
        f"- The retention sweeper runs every {s.retention_interval_s:g} s and logs every deletion.",
        "",
        "## Technical and organisational security measures (Art. 30(1)(g), Art. 32)",
        "",
        f"- Encryption at rest: AES-256-GCM, one data key per customer, wrapped by a key-encryption key"
        f" (key provider: {s.key_provider}); blob store: {s.blob_store} (ciphertext only); database:"
        f" {_database_kind(deployment)}.",
        "- De-identification before anyone listens: segmentation into short snippets, PII detection,"
        " bleeping and masking, voice anonymisation, metadata stripping.",
        "- Access: invite-only enrolment, mandatory MFA"
        + (
            f" (passkeys required for {', '.join(s.passkey_required_roles)})"
            if s.passkey_required_roles
            else ""
        )
        + f", account lockout after {s.lockout_account_failures} failures, sessions expire after"
        f" {s.session_idle_minutes:g} min idle / {s.session_absolute_hours:g} h, role-based access with"
        " separation of duties.",
        "- Reviewers: facility networks and allowed countries only; vetting, training and a signed"
        " confidentiality agreement required; random assignment, never two snippets of one recording;"
        " per-reviewer audio watermark.",
        "- Accountability: every access and deletion in a Merkle-tree audit log with signed checkpoints.",
        "",
    ]
    return "\n".join(lines)
