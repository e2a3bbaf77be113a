"""The audit event vocabulary: action names, outcomes and detail keys every domain uses.

Each record says who (`actor`: "user:<id>", "product:<id>", "pipeline", "cli:<name>"), what
(`action` below, `target`: a pseudonymous id such as a snippet, assignment or customer pseudonym,
never audio, transcript or the product's customer id), when (UTC, set by the log), where (`ip`) and
the outcome. Details are small JSON; `services.FORBIDDEN_DETAIL_KEYS` are refused.
"""

from __future__ import annotations

# -- outcomes -------------------------------------------------------------------------------------
OK = "ok"
DENIED = "denied"  # an authorisation decision said no
FAILED = "failed"  # the actor tried and it did not work (wrong password, bad code)
ERROR = "error"

# -- accounts and sessions ------------------------------------------------------------------------
LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
MFA_ENROLLED = "mfa.enrolled"
MFA_REMOVED = "mfa.removed"
MFA_RESET = "mfa.reset"
SESSION_END = "session.end"  # logout, idle or absolute timeout (details: reason)
ROLE_CHANGED = "user.role_changed"
FACILITY_CHANGED = "user.facility_changed"
USER_INVITED = "user.invited"
USER_DISABLED = "user.disabled"
AUTHZ_DENIED = "authz.denied"  # outcome "denied"; details: permission, reason

# -- review ---------------------------------------------------------------------------------------
TASK_ASSIGNED = "task.assigned"
AUDIO_DELIVERED = "audio.delivered"  # each delivery of a snippet's audio (each play request)
AUDIO_PLAYED = "audio.played"  # details: played_s (how long it was actually heard)
GRADE_SUBMITTED = "task.graded"
SNIPPET_FLAGGED = "snippet.flagged"
EXPORT = "export"

# -- customers' rights ----------------------------------------------------------------------------
CONSENT_GRANT = "consent.grant"
CONSENT_WITHDRAW = "consent.withdraw"
CONSENT_CHANGES = (CONSENT_GRANT, CONSENT_WITHDRAW)
ERASURE = "customer.erased"
CUSTOMER_EXPORT = "customer.exported"

# -- administration -------------------------------------------------------------------------------
CONFIG_CHANGED = "config.changed"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
CANARY_REGISTERED = "canary.registered"

# -- detail keys the monitoring rules read -------------------------------------------------------
SESSION = "session"  # a pseudonymous reference to the web session (e.g. a prefix of its hash)
DEVICE = "device"  # a pseudonymous device reference (e.g. a hash of the user agent)

# Actions through which someone obtains a snippet's content: a canary must never appear here.
SNIPPET_ACCESS = frozenset({TASK_ASSIGNED, AUDIO_DELIVERED, AUDIO_PLAYED, "audio.requested", "task.viewed"})
# Actions that are a person working (for shift and network rules).
HUMAN_ACTIVITY = frozenset(
    {LOGIN_SUCCESS, TASK_ASSIGNED, AUDIO_DELIVERED, AUDIO_PLAYED, GRADE_SUBMITTED, SNIPPET_FLAGGED, EXPORT}
)


def user_actor(user_id: str) -> str:
    """The actor string for a staff account."""
    return f"user:{user_id}"
