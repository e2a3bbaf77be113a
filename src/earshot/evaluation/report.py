"""Self-contained HTML report for `earshot eval`: summary tables, DET curves, score histograms.

Plots are rendered with matplotlib (Agg) into inline PNG data URIs, so the file has no
external references. Only figures and aggregate scores go in; never audio or transcripts.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f4f4f4}.pass{color:#176f2c;font-weight:600}.fail{color:#b00020;font-weight:600}
img{max-width:100%}
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _det_figure(system: str, attacks: dict[str, dict[str, np.ndarray]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    fig, ax = plt.subplots(figsize=(5, 5))
    ticks = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95])
    for att, d in attacks.items():
        miss = np.clip(d["p_miss"], 1e-3, 1 - 1e-3)
        fa = np.clip(d["p_fa"], 1e-3, 1 - 1e-3)
        ax.plot(norm.ppf(fa), norm.ppf(miss), label=att.replace("_", "-"))
    lim = norm.ppf([0.005, 0.995])
    ax.plot(lim, lim, ":", color="grey", linewidth=0.8, label="EER line")
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(f"DET: {system}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    uri = _png(fig)
    plt.close(fig)
    return uri


def _hist_figure(system: str, attacks: dict[str, dict[str, np.ndarray]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(attacks)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
    for ax, (att, d) in zip(axes[0], attacks.items(), strict=True):
        lo = float(min(d["target"].min(), d["nontarget"].min()))
        hi = float(max(d["target"].max(), d["nontarget"].max()))
        bins = np.linspace(lo, hi + 1e-9, 30)
        ax.hist(d["nontarget"], bins=bins, density=True, alpha=0.6, label="different speaker")
        ax.hist(d["target"], bins=bins, density=True, alpha=0.6, label="same speaker")
        ax.set_title(f"{system}: {att.replace('_', '-')}", fontsize=9)
        ax.set_xlabel("score")
    axes[0][0].legend(fontsize=7)
    uri = _png(fig)
    plt.close(fig)
    return uri


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ci(interval: list[float] | None, scale: float = 100.0, unit: str = " %", sign: str = "") -> str:
    """The 95 % interval to print after a figure (from resampled speakers), or nothing."""
    if not interval:
        return ""
    lo, hi = (scale * v for v in interval)
    return f" [95 % CI {lo:{sign}.1f} to {hi:{sign}.1f}{unit}]"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(system, measure, value, target, verdict) rows shared by the HTML and the CLI table."""
    t = report["targets"]
    rows: list[tuple[str, str, str, str, str]] = []
    orig = report.get("original", {})
    if "eer" in orig:
        rows.append((
            "original", "EER (no anonymisation)",
            _pct(orig["eer"]["eer"]) + _ci(orig["eer"].get("eer_ci95")), "", "",
        ))
    if "wer" in orig:
        rows.append(("original", "WER", _pct(orig["wer"]), "", ""))
    if "asr_judge" in report:  # which ASR the WER rows are measured with
        rows.append(("all", "WER judge", report["asr_judge"], "", ""))
    if report.get("channel", "as recorded") != "as recorded":
        rows.append(("all", "channel", report["channel"], "", ""))
    for name, s in report.get("systems", {}).items():
        verdict = s.get("pass", {})
        for att in ("ignorant", "lazy_informed", "semi_informed"):
            if att in s.get("eer", {}):
                ok = verdict.get(f"eer_{att}")
                rows.append((
                    name, f"EER {att.replace('_', '-')}",
                    _pct(s["eer"][att]["eer"]) + _ci(s["eer"][att].get("eer_ci95")),
                    f">= {100 * t[f'eer_{att}_min']:.0f} %", "pass" if ok else "FAIL",
                ))
        if "wer" in s:
            ok = verdict.get("wer_rise")
            rows.append((name, "WER", _pct(s["wer"]), "", ""))
            rows.append((
                name, "WER rise",
                f"{s['wer_rise_points']:+.1f} pts" + _ci(s.get("wer_rise_points_ci95"), 1.0, " pts", "+"),
                f"<= {t['wer_rise_points_max']:.0f} pts", "pass" if ok else "FAIL",
            ))
        rows.append((name, "anonymisation speed", f"{s['anonymise_x_realtime']:.0f}x real time",
                     "", ""))
    rows += _pii_rows(report.get("pii"))
    return rows


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{float(v):.2f}"  # type: ignore[arg-type]


def recall_cell(g: dict[str, Any]) -> str:
    """A PII group's recall by listener, attacker ASR and masked text, with its counts."""
    ci = g.get("listener_recall_ci95")
    band = f" [95 % CI {ci[0]:.2f} to {ci[1]:.2f}]" if ci else ""
    return (f"listener {_fmt(g.get('listener_recall'))} ({g['planted']}){band}, "
            f"ASR {_fmt(g.get('audio_recall'))} ({g['recoverable']}), "
            f"text {_fmt(g.get('text_recall_all'))}")  # fmt: skip


def _pii_rows(pii: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """Summary rows of `earshot eval --pii` (see evaluation.pii_eval.verdicts)."""
    if not pii or "groups" not in pii:
        return [("pii", "skipped", str(pii.get("skipped", "")), "", "")] if pii else []
    targets, verdict = pii["targets"], pii.get("verdicts", {})
    rows: list[tuple[str, str, str, str, str]] = []
    for group, key in (("digits", "digits_recall_min"), ("email", "email_recall_min"),
                       ("name", "name_recall_min")):  # fmt: skip
        ok = verdict.get(f"{group}_recall")
        rows.append(("pii", f"{group} removed", recall_cell(pii["groups"][group]),
                     f">= {targets[key]:.2f}", "pass" if ok else "FAIL"))  # fmt: skip
    for key, label, value in (
        ("non_pii_audible", "non-PII speech still audible", pii.get("non_pii_speech_audible")),
        ("non_pii_in_transcript", "non-PII words in transcript", pii.get("non_pii_kept_text")),
        ("non_pii_asr_kept", "non-PII words ASR still gets", pii.get("non_pii_kept_audio")),
    ):
        ok = verdict.get(key)
        rows.append(("pii", label, _fmt(value), f">= {targets['non_pii_kept_min']:.2f}",
                     "pass" if ok else "FAIL"))  # fmt: skip
    real = pii.get("real_digits")
    if real:  # --pii-digits: numbers said by real people
        ok = real["pass"]
        rows.append(("pii", "real digit runs removed", recall_cell(real),
                     f">= {targets['digits_recall_min']:.2f}", "pass" if ok else "FAIL"))  # fmt: skip
    rows.append(("pii", "masking precision (words)", _fmt(pii.get("precision_words")), "", ""))
    return rows


def write_html(
    report: dict[str, Any], det: dict[str, dict[str, dict[str, np.ndarray]]], path: Path
) -> None:
    """Write the self-contained HTML report."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Earshot de-identification"
        f" evaluation</title><style>{_STYLE}</style></head><body>",
        "<h1>Earshot de-identification evaluation</h1>",
        f"<p>Data set <b>{esc(str(report['manifest']))}</b>: {report['n_utterances']} utterances,"
        f" {report['n_speakers']} speakers; figures on {report['n_test_speakers']} test speakers"
        f" ({report['n_test_utterances']} utterances, {report['test_audio_s']} s); semi-informed"
        f" attacker trained on {report['n_attacker_speakers']} other speakers. Seed"
        f" {report['seed']}.</p>",
        "<h2>Summary</h2><table><tr><th>system</th><th>measure</th><th>value</th>"
        "<th>target</th><th>verdict</th></tr>",
    ]
    for row in summary_rows(report):
        cls = "pass" if row[4] == "pass" else ("fail" if row[4] == "FAIL" else "")
        cells = "".join(f"<td>{esc(c)}</td>" for c in row[:4])
        parts.append(f"<tr>{cells}<td class='{cls}'>{esc(row[4])}</td></tr>")
    parts.append("</table>")
    if "pii" in report:
        parts.append("<h2>Personal data</h2><pre>")
        import json

        parts.append(esc(json.dumps(report["pii"], indent=2, default=str)))
        parts.append("</pre>")
    if det:
        parts.append("<h2>Speaker verification</h2>")
        for system, attacks in det.items():
            parts.append(f"<h3>{esc(system)}</h3>")
            parts.append(f"<img alt='DET curves {esc(system)}' src='{_det_figure(system, attacks)}'>")
            parts.append(f"<img alt='score histograms {esc(system)}' "
                         f"src='{_hist_figure(system, attacks)}'>")
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
