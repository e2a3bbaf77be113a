"""Closing a deployment ends its background audit sequencer (which would keep the engine alive
and reopen connections on it every second)."""

from __future__ import annotations

from earshot.audit import context


def test_close_stops_the_background_sequencer(make_deployment) -> None:  # noqa: ANN001
    dep = make_deployment()
    context.use_background_sequencer(dep)
    ctx = context.install(dep)
    sequencer = context.Sequencer(dep.db.engine)
    ctx.sequencer = sequencer
    sequencer.start()
    assert sequencer.is_alive()
    dep.close()
    assert not sequencer.is_alive()
    assert ctx.sequencer is None and ctx.inline_sequencing  # a later commit cannot restart one
