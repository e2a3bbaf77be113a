"""How `earshot worker` lays out its processes and threads."""

from __future__ import annotations

from earshot.config import Settings
from earshot.pipeline.celery_app import worker_layout


def test_by_default_one_process_per_core_each_on_one_thread() -> None:
    settings, processes = worker_layout(Settings(), None, cores=2)
    assert processes == 2
    assert settings.asr_threads == 1


def test_the_cores_are_shared_out_between_the_processes_asked_for() -> None:
    assert worker_layout(Settings(), 1, cores=2)[0].asr_threads == 2
    assert worker_layout(Settings(), 2, cores=8)[0].asr_threads == 4
    assert worker_layout(Settings(), 3, cores=2)[0].asr_threads == 1  # never zero


def test_threads_set_by_the_operator_are_kept() -> None:
    settings, processes = worker_layout(Settings(asr_threads=2), 2, cores=2)
    assert (processes, settings.asr_threads) == (2, 2)


def test_threads_from_the_settings_file_count_as_set(tmp_path) -> None:  # noqa: ANN001
    from earshot.config import load_settings

    (tmp_path / "earshot.toml").write_text("asr_threads = 2\n")
    assert worker_layout(load_settings(tmp_path), None, cores=2)[0].asr_threads == 2
    assert worker_layout(load_settings(tmp_path / "other"), None, cores=2)[0].asr_threads == 1
