"""`/docs` (Swagger UI) and `/redocs` (ReDoc) render in headless Chromium with no network: every
host but 127.0.0.1 resolves to nothing, so a page that needed a CDN would stay blank.

Needs Debian's `chromium` (`.ci/run` installs it). Set `DOCS_SCREENSHOT_DIR` to keep the
screenshots (`documentation/images/docs-swagger.png` and `docs-redoc.png` come from here).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.llm_provider_service.settings import Settings
from tests.support.served_app import ServedApp, served_app

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHROMIUM_SECONDS = 60.0
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
PAGES = {
    "/docs": ("docs-swagger.png", "opblock"),  # Swagger UI's class for a rendered operation
    "/redocs": ("docs-redoc.png", "operation-"),  # ReDoc's ids of rendered operations
}


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "headless Chromium is missing: install Debian's `chromium` "
            "(apt-get install -y chromium; .ci/run does it)"
        )
    return found


async def run_chromium(profile: Path, *args: str) -> bytes:
    """Chromium headless, offline, with its own profile; its stdout."""
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        OFFLINE,
        "--window-size=1280,900",
        "--virtual-time-budget=15000",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CHROMIUM_SECONDS):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), (depth, interlace)
    channels = {2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                nearest = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                row[i] = (row[i] + nearest) & 0xFF
        rows.append(row)
        previous = row
    pixels = [bytes(row[x : x + 3]) for row in rows for x in range(0, stride, channels)]
    return width, height, pixels


@pytest.fixture
async def served(make_settings: Callable[..., Settings]) -> AsyncIterator[ServedApp]:
    async with served_app(make_settings()) as app:
        yield app


@pytest.mark.parametrize("page", sorted(PAGES))
async def test_the_docs_page_renders_without_network(served: ServedApp, tmp_path: Path, page: str):
    name, marker = PAGES[page]
    url = f"{served.base_url}{page}"
    screenshot = tmp_path / name

    await run_chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    dom = (await run_chromium(tmp_path / "profile-dom", "--dump-dom", url)).decode()

    # The page was rendered from the document: its operations are in the DOM.
    assert marker in dom, f"{page}: no rendered operation in the DOM"
    for path in ("/api/v1/comparison", "/api/v1/status/"):
        assert path in dom, f"{page}: {path} not rendered"
    # And it shows: not a blank page, but text and colours across the window.
    width, height, pixels = png_pixels(screenshot.read_bytes())
    assert (width, height) == (1280, 900)
    non_white = sum(1 for p in pixels if p != b"\xff\xff\xff")
    assert len(set(pixels)) > 50, f"{page}: {len(set(pixels))} colours, a blank page"
    assert non_white > 0.01 * len(pixels), f"{page}: {non_white} non-white pixels"
    if keep := os.environ.get("DOCS_SCREENSHOT_DIR"):
        shutil.copyfile(screenshot, Path(keep) / name)
