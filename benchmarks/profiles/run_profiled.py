"""`serve` under pyinstrument, for `profile_hot_path.py`: samples only the stacks that run
(async mode off, so time spent awaiting the upstream is not charged to the awaiting frames),
and on exit writes a text summary: the call tree, the functions with the most own time, and
own time per package. Idle time (the event loop waiting in `select`) is left out of the
shares, so they are shares of the CPU the process spent.

    python -m benchmarks.profiles.run_profiled OUT.txt   # then stop it with SIGINT
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.frame import Frame

_IDLE = {"select", "poll", "epoll.poll", "sleep"}  # the event loop waiting for work


def _own_times(frame: Frame, by_function: dict[str, float], by_package: dict[str, float]) -> None:
    real = [child for child in frame.children if not child.is_synthetic]
    own = frame.time - sum(child.time for child in real)  # [self] leaves are own time
    if own > 0 and frame.function not in _IDLE:
        where = frame.file_path_short or frame.file_path or "?"
        name = f"{frame.function}  {where}:{frame.line_no}"
        by_function[name] = by_function.get(name, 0.0) + own
        package = _package(frame.file_path or "")
        by_package[package] = by_package.get(package, 0.0) + own
    for child in real:
        _own_times(child, by_function, by_package)


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/services/" in path:
        return "services (this service)"
    if path.startswith("<") or not path:
        return "<built-in or generated>"
    return "stdlib: " + Path(path).name


def _most(times: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(times.items(), key=lambda item: item[1], reverse=True)[:count]


def summary(profiler: Profiler) -> str:
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    assert root is not None
    by_function: dict[str, float] = {}
    by_package: dict[str, float] = {}
    _own_times(root, by_function, by_package)
    busy = sum(by_function.values())
    lines = [f"busy samples: {busy:.1f} s of own time (idle waiting excluded)", ""]
    lines += ["own time per package (share of busy time):"]
    lines += [f"  {t / busy:6.1%}  {name}" for name, t in _most(by_package, 15)]
    lines += ["", "top 40 functions by own time:"]
    lines += [f"  {t / busy:6.1%}  {name}" for name, t in _most(by_function, 40)]
    tree = profiler.output_text(unicode=True, color=False, show_all=False)
    return "\n".join(lines) + "\n\ncall tree:\n" + tree


def main() -> int:
    out = Path(sys.argv[1])
    from services.llm_provider_service.__main__ import main as serve

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        code = serve(["serve"])
    finally:
        profiler.stop()
        out.write_text(summary(profiler))
    return code


if __name__ == "__main__":
    sys.exit(main())
