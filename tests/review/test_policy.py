"""The review policy comes from `review_*` settings when the settings define them, defaults otherwise."""

from types import SimpleNamespace

from earshot.review.policy import ReviewPolicy, policy_for, set_policy


def test_from_settings_and_defaults():
    p = ReviewPolicy.from_settings(SimpleNamespace(review_customer_window_days=7, review_quota_per_hour="5"))
    assert p.customer_window_days == 7.0 and p.quota_per_hour == 5
    assert p.lease_minutes == ReviewPolicy().lease_minutes and p.customer_window.days == 7
    assert ReviewPolicy.from_settings(object()) == ReviewPolicy()


def test_explicit_policy_wins(deployment):
    assert policy_for(deployment).customer_window_days == getattr(
        deployment.settings, "review_customer_window_days", 30.0
    )
    set_policy(deployment, ReviewPolicy(quota_per_hour=1))
    assert policy_for(deployment).quota_per_hour == 1
    set_policy(deployment, None)
    assert (
        policy_for(deployment).quota_per_hour
        == ReviewPolicy.from_settings(deployment.settings).quota_per_hour
    )
