"""The audit event vocabulary: action names, outcomes and detail keys every domain uses.

Each record says who (`actor`: "user:<id>", "product:<id>", "pipeline", "cli:<name>", "anonymous"), what
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
# Sign-ins: success or failure is the outcome (OK, FAILED, DENIED), not a separate action.
LOGIN = "auth.login"
PASSKEY_LOGIN = "auth.passkey"
REAUTH = "auth.reauth"
LOGOUT = "auth.logout"
SESSION_END = "session.end"  # idle or absolute timeout, or ended by an admin (details: reason)
SHARED_LOGIN_SUSPECTED = "session.shared_login_suspected"
MFA_ENROLLED = "user.enrolment.completed"
PASSKEY_REGISTERED = "passkey.registered"
RECOVERY_CODES_CREATED = "user.recovery_codes.created"
MFA_RESET = "user.mfa_reset"
PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an event name
ROLE_CHANGED = "user.role_changed"
FACILITY_CHANGED = "user.facility_changed"
VETTING_RECORDED = "user.vetting_recorded"
USER_INVITED = "user.invited"
USER_DISABLED = "user.disabled"
AUTHZ_DENIED = "authz.denied"  # outcome "denied"; details: route, reason

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

SESSION_ENDS = frozenset({LOGOUT, SESSION_END})
# Actions that are a person working (for the shift rule).
HUMAN_ACTIVITY = frozenset(
    {
        LOGIN,
        PASSKEY_LOGIN,
        REAUTH,
        TASK_ASSIGNED,
        AUDIO_DELIVERED,
        AUDIO_PLAYED,
        GRADE_SUBMITTED,
        SNIPPET_FLAGGED,
        EXPORT,
        CUSTOMER_EXPORT,
        "adjudication.viewed",
        "adjudication.decided",
        "escalation.resolved",
    }
)


def user_actor(user_id: str) -> str:
    """The actor string for a staff account (use this form; a bare 32-hex user id is also understood)."""
    return f"user:{user_id}"


def person_of(actor: str) -> str | None:
    """The user id behind an actor string, if it names a person ("user:<id>" or a bare 32-hex id)."""
    if actor.startswith("user:"):
        return actor[5:] or None
    if len(actor) == 32 and all(c in "0123456789abcdef" for c in actor):
        return actor
    return None
