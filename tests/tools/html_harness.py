"""Reading the HTML reports in tests: the tags of a page with what encloses each, and the same page as
headless Chromium renders it (Debian's chromium, installed here when missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

# What Chromium needs to start as root on a machine with no network and no display, and not to reach out.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


class Elements(HTMLParser):
    """Every start tag with its attributes, and the tags (as 'tag.class') open around it."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self.stack: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.handle_startendtag(tag, attrs)
        if tag not in ("meta", "br"):  # void elements written without a slash
            self.stack.append(f"{tag}.{dict(attrs).get('class') or ''}")

    def handle_startendtag(self, tag, attrs):  # <rect .../>: nothing opens
        self.tags.append((tag, {k: v or "" for k, v in attrs}, tuple(self.stack)))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop().split(".")[0] != tag:
            pass

    def count(self, tag: str, cls: str | None = None, inside: str | None = None) -> int:
        """How many `tag` elements (of class `cls`) there are (within an element 'tag.class' `inside`)."""
        return sum(1 for t, a, around in self.tags if t == tag and (cls is None or a.get("class") == cls)
                   and (inside is None or inside in around))


def _apt_install() -> str:
    """Why chromium could not be installed, or '' once it is."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium is not installed and apt-get cannot install it here (no apt-get, or not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    for attempt in (install, ["apt-get", "update"], install):
        done = subprocess.run(attempt, capture_output=True, text=True, env=env, timeout=900)
        if attempt is install and done.returncode == 0:
            return ""
    return f"apt-get install chromium failed: {done.stderr.strip()[-300:]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium, installed when missing; the test is skipped, saying why, where it
    cannot be."""
    if shutil.which("chromium") is None:
        reason = _apt_install()
        if reason or shutil.which("chromium") is None:
            pytest.skip(reason or "apt-get installed chromium but it is not on PATH")
    return shutil.which("chromium")


def render(chromium: str, page: Path, profile: Path, *flags: str) -> str:
    """Chromium's stdout for `page` with `flags` (--dump-dom prints the DOM after layout)."""
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
