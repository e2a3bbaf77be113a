"""Who may call what: the one table of route -> roles (ASVS 5.0 V8.1.1, 8.2.1, 8.3.1).

Every route of the app appears here exactly once, in one of four groups:

- `PUBLIC`: no session (sign-in, enrolment, health, static files);
- `SERVICE`: voice products with a service token, never staff sessions;
- `SESSION_STEPS`: the half-way steps of enrolment and sign-in, which check their own session stage;
- `ROUTE_ROLES`: staff routes and the roles allowed on each.

`earshot.access.deps.require_roles` is the single enforcement point: a request is allowed only if the
principal's role is both declared by the view *and* listed here, so a view cannot widen access by itself;
a route with no `require_roles` at all is reachable by nobody with a session role check, and the test suite
fails on any route missing from this table (ASVS 8.3.1). Separation of duties
(ASVS 8.2.2) is checked by `check_invariants`, which the test suite runs: an admin can never reach audio or
transcripts, a reviewer cannot export or see others' work, and no route lets anyone grant themselves a role
(role changes are admin-only and `services.set_role` refuses self-changes).
"""

from __future__ import annotations

import re

ROLES = ("reviewer", "lead", "privacy", "admin")
STAFF = frozenset(ROLES)

# Where each role lands after sign-in.
ROLE_HOME = {"reviewer": "/review", "lead": "/lead", "privacy": "/account", "admin": "/admin"}

PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/health"),
        ("GET", "/openapi.json"),
        ("GET", "/"),  # redirects by role, or to /login
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/enrol/{token}"),
        ("POST", "/enrol/{token}"),
        ("POST", "/api/v1/session"),
        ("POST", "/api/v1/webauthn/login/options"),
        ("POST", "/api/v1/webauthn/login/verify"),
    }
)

SERVICE: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/recordings"),
        ("PUT", "/api/v1/customers/{customer_id}/consent"),
        ("GET", "/api/v1/customers/{customer_id}/consent"),
        ("DELETE", "/api/v1/customers/{customer_id}"),
        ("GET", "/api/v1/erasures/{erasure_id}"),
        ("GET", "/api/v1/customers/{customer_id}/export"),
    }
)

SESSION_STEPS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/enrol/mfa"),
        ("POST", "/enrol/mfa"),
        ("GET", "/enrol/done"),
        ("GET", "/login/mfa"),
        ("POST", "/login/mfa"),
        ("POST", "/logout"),
        ("DELETE", "/api/v1/session"),
        ("POST", "/api/v1/webauthn/register/options"),
        ("POST", "/api/v1/webauthn/register/verify"),
    }
)

_R = frozenset({"reviewer"})
_ADMIN = frozenset({"admin"})
_LEAD = frozenset({"lead"})
_LEAD_ADMIN = frozenset({"lead", "admin"})
_OVERSIGHT = frozenset({"lead", "privacy", "admin"})

ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    # Own account: everybody.
    ("GET", "/api/v1/session"): STAFF,
    ("POST", "/api/v1/session/reauth"): STAFF,
    ("GET", "/reauth"): STAFF,
    ("POST", "/reauth"): STAFF,
    ("GET", "/account"): STAFF,
    ("POST", "/account/recovery-codes"): STAFF,
    ("POST", "/account/password"): STAFF,
    ("POST", "/api/v1/account/recovery-codes"): STAFF,
    ("POST", "/api/v1/account/password"): STAFF,
    # Reviewing: a reviewer's own assigned tasks only.
    ("GET", "/api/v1/tasks/next"): _R,
    ("GET", "/api/v1/tasks/{assignment_id}"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/media"): _R,
    ("GET", "/api/v1/media/{token}"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/played"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/grade"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/skip"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/flag"): _R,
    ("GET", "/review"): _R,
    ("POST", "/review/{assignment_id}"): _R,
    # Leads: escalations (flagged, sensitive snippets) and adjudication of disagreements.
    ("GET", "/lead"): _LEAD,
    ("GET", "/api/v1/lead/reviewers"): _LEAD,
    ("GET", "/api/v1/escalations"): _LEAD,
    ("GET", "/api/v1/escalations/{escalation_id}/audio"): _LEAD,
    ("POST", "/api/v1/escalations/{escalation_id}/resolve"): _LEAD,
    ("GET", "/escalations/{escalation_id}"): _LEAD,
    ("POST", "/escalations/{escalation_id}"): _LEAD,
    ("GET", "/api/v1/adjudications"): _LEAD,
    ("GET", "/api/v1/adjudications/{snippet_id}"): _LEAD,
    ("POST", "/api/v1/adjudications/{snippet_id}"): _LEAD,
    ("GET", "/adjudications/{snippet_id}"): _LEAD,
    ("POST", "/adjudications/{snippet_id}"): _LEAD,
    # Queue health (counts only, no content): leads and admins.
    ("GET", "/queue"): _LEAD_ADMIN,
    ("GET", "/api/v1/queue/counts"): _LEAD_ADMIN,
    # Customer rights follow-up (ids only): privacy and admins.
    ("GET", "/api/v1/erased-snippets"): frozenset({"privacy", "admin"}),
    # The audit log (pseudonymous ids only): oversight roles, never reviewers.
    ("GET", "/api/v1/audit/public-key"): _OVERSIGHT,
    ("GET", "/api/v1/audit/checkpoints/latest"): _OVERSIGHT,
    ("GET", "/api/v1/audit/checkpoints"): _OVERSIGHT,
    ("GET", "/api/v1/audit/proofs/inclusion"): _OVERSIGHT,
    ("GET", "/api/v1/audit/proofs/consistency"): _OVERSIGHT,
    ("GET", "/api/v1/audit/records"): _OVERSIGHT,
    ("GET", "/api/v1/audit/alerts"): _LEAD_ADMIN,
    ("POST", "/api/v1/audit/alerts/{alert_id}/acknowledge"): _LEAD_ADMIN,
    # Accounts, facilities, vetting: admin.
    ("GET", "/admin"): _ADMIN,
    ("POST", "/admin/users"): _ADMIN,
    ("POST", "/admin/users/{user_id}/disable"): _ADMIN,
    ("POST", "/admin/users/{user_id}/role"): _ADMIN,
    ("POST", "/admin/users/{user_id}/vetting"): _ADMIN,
    ("POST", "/admin/facilities"): _ADMIN,
    ("GET", "/api/v1/users"): _ADMIN,
    ("POST", "/api/v1/users"): _ADMIN,
    ("POST", "/api/v1/users/{user_id}/disable"): _ADMIN,
    ("PUT", "/api/v1/users/{user_id}/role"): _ADMIN,
    ("POST", "/api/v1/users/{user_id}/vetting"): _ADMIN,
    ("GET", "/api/v1/facilities"): _ADMIN,
    ("POST", "/api/v1/facilities"): _ADMIN,
}

# Paths that carry audio or transcripts (or their grades): never for admin, per separation of duties.
CONTENT_PATTERNS = (
    re.compile(r"/audio\b"),
    re.compile(r"/transcripts?\b"),
    re.compile(r"^/(api/v1/)?(tasks|review|snippets|adjudicat\w*|escalations?)\b"),
    re.compile(r"^/media/"),
)
# Paths that export data: never for reviewers.
EXPORT_PATTERNS = (re.compile(r"/exports?\b"),)


def is_content_route(path: str) -> bool:
    return any(p.search(path) for p in CONTENT_PATTERNS)


def allowed_roles(method: str, path: str, declared: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The roles that may call `method path` (a route template): declared by the view AND in the table."""
    table = ROUTE_ROLES.get((method.upper(), path))
    roles = frozenset(declared) & STAFF
    if table is not None:
        roles &= table
    # A route missing from the table keeps only what its view declared (still never wider); the test suite
    # fails on any unlisted route, so the table stays complete.
    if is_content_route(path):
        roles -= {"admin"}
    if any(p.search(path) for p in EXPORT_PATTERNS):
        roles -= {"reviewer"}
    return roles


def check_invariants() -> list[str]:
    """Separation-of-duties violations in the table (empty when the table is sound)."""
    problems = []
    for (method, path), roles in ROUTE_ROLES.items():
        unknown = roles - STAFF
        if unknown:
            problems.append(f"{method} {path}: unknown roles {sorted(unknown)}")
        if is_content_route(path) and "admin" in roles:
            problems.append(f"{method} {path}: admin may not reach audio or transcripts")
        if any(p.search(path) for p in EXPORT_PATTERNS) and "reviewer" in roles:
            problems.append(f"{method} {path}: reviewers may not export")
        if "/role" in path and roles != _ADMIN:
            problems.append(f"{method} {path}: only admins change roles")
    overlap = (PUBLIC | SERVICE | SESSION_STEPS) & set(ROUTE_ROLES)
    for method, path in sorted(overlap):
        problems.append(f"{method} {path}: listed both as open and as a role route")
    return problems


def classify(method: str, path: str) -> str:
    """'public', 'service', 'step', 'roles' or 'unlisted' for a route template."""
    key = (method.upper(), path)
    if key in PUBLIC:
        return "public"
    if key in SERVICE:
        return "service"
    if key in SESSION_STEPS:
        return "step"
    if key in ROUTE_ROLES:
        return "roles"
    return "unlisted"
