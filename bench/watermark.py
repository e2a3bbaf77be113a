"""Watermark benchmark: embed cost per snippet, trace cost over thousands of deliveries, and how
often `earshot trace` names the right delivery after MP3 64 kbit/s, a volume change and a 5 s trim.

    .venv/bin/python bench/watermark.py [--candidates 5000] [--trims 3] [--audio DIR]

A thin wrapper over `earshot.review.watermark_eval` (the same code docs/watermark.md reports),
run on espeak-ng speech unless --audio names a folder of WAV/FLAC files (e.g.
../shared/data/librispeech_1089). Prints the machine first; CPU times (not wall) so a shared
machine does not distort them.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from earshot.review.watermark_eval import main  # noqa: E402

if __name__ == "__main__":
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, python {platform.python_version()}", flush=True)
    args = sys.argv[1:] or ["--candidates", "5000", "--trims", "3"]
    main(args)
