"""The documentation site, as a reader's browser renders it: headless Chromium (tests/browser.py)
opens the built site over HTTP and every check reads the rendered DOM, not the HTML files.

The site is the one ``scripts/test`` built with ``mkdocs build --strict`` (``PGAC_DOCS_SITE``),
else it is built here into a temporary directory. It is served over http:// because Material's
search runs in a web worker, which file:// pages cannot start. Skipped, saying why, where no
Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import inspect
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import Browser, BrowserError, find_chromium

from perfectgym_appointments_client import AppointmentsClient

ROOT = Path(__file__).resolve().parent.parent


class _ConfigLoader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name:`` and ``!ENV`` tags (Material's emoji, pymdownx
    options); the nav needs none of them, so any tag reads as its plain value."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node)


_ConfigLoader.add_multi_constructor("", _plain)


def mkdocs_config() -> dict[str, Any]:
    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as fh:
        config: dict[str, Any] = yaml.load(fh, Loader=_ConfigLoader)  # noqa: S506 - a safe loader
    return config


def guides(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, source path) of every page of the nav's Guides section, in order."""
    for item in config["nav"]:
        if isinstance(item, dict) and "Guides" in item:
            pages = []
            for entry in item["Guides"]:
                assert isinstance(entry, dict), f"a guide without a title in mkdocs.yml: {entry!r}"
                [(title, path)] = entry.items()
                pages.append((str(title), str(path)))
            return pages
    raise AssertionError("mkdocs.yml's nav has no Guides section")


def page_url(source: str, config: dict[str, Any]) -> str:
    """The URL, relative to the site's root, that MkDocs gives the page built from ``source``."""
    stem = source.removesuffix(".md")
    directory, _, name = stem.rpartition("/")
    prefix = f"{directory}/" if directory else ""
    if name in ("index", "README"):
        return prefix if config.get("use_directory_urls", True) else f"{prefix}index.html"
    return f"{prefix}{name}/" if config.get("use_directory_urls", True) else f"{prefix}{name}.html"


def first_paragraph(doc: str | None) -> str:
    """A docstring's summary as its rendered text: whitespace collapsed, code backticks gone."""
    assert doc, "no docstring"
    summary = inspect.cleandoc(doc).split("\n\n")[0]
    return " ".join(re.sub(r"`+", "", summary).split())


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium on PATH (chromium, chromium-browser or google-chrome); .ci/run installs Debian's chromium"
        )
    return path


@pytest.fixture(scope="module")
def site_dir(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Needs the browser first: without one, nothing is built for nothing."""
    prebuilt = os.environ.get("PGAC_DOCS_SITE")
    if prebuilt:
        site = Path(prebuilt)
        assert (site / "index.html").is_file(), f"PGAC_DOCS_SITE={prebuilt} holds no built site"
        return site
    site = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=240,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's stderr."""


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """The directory over HTTP on a free loopback port; yields the root URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def site_url(site_dir: Path) -> Iterator[str]:
    with serve(site_dir) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(chromium_path: str, site_url: str) -> Iterator[Browser]:
    # Requested after site_url, so closed before the server: no request is cut off mid-answer.
    with Browser.launch(chromium_path) as browser:
        yield browser


# --- the checks --------------------------------------------------------------------------------

BOOK = """(() => {
    const heading = document.querySelector('[id$="AppointmentsClient.book"]');
    if (!heading) return null;
    const object = heading.closest('.doc-object') || heading.parentElement;
    const signature = heading.nextElementSibling &&
        heading.nextElementSibling.classList.contains('doc-signature')
        ? heading.nextElementSibling.innerText : '';
    const contents = object.querySelector(':scope > .doc-contents');
    return {
        id: heading.id,
        name: (heading.querySelector('.doc-object-name') || heading).innerText,
        heading: heading.innerText,
        signature: signature,
        docstring: contents ? contents.innerText : '',
        visible: heading.getClientRects().length > 0 && !!contents && contents.getClientRects().length > 0,
        title: document.querySelector('article h1') && document.querySelector('article h1').innerText,
    };
})()"""


def test_the_client_reference_page_shows_book_with_its_signature_and_docstring(
    chromium: Browser, site_url: str
) -> None:
    config = mkdocs_config()
    assert chromium.navigate(site_url + page_url("reference/client.md", config)) == 200
    book = chromium.wait_for(BOOK, "the heading of AppointmentsClient.book on reference/client/")
    assert book["visible"], book
    assert book["name"].strip() == "book", book
    signature = " ".join((book["heading"] + " " + book["signature"]).split())
    parameters = [name for name in inspect.signature(AppointmentsClient.book).parameters if name != "self"]
    assert {"customer_id", "bookable_appointment_id", "slot"} <= set(parameters)
    for parameter in parameters:
        assert re.search(rf"\b{parameter}\b", signature), f"{parameter} not in the signature: {signature}"
    summary = first_paragraph(AppointmentsClient.book.__doc__)
    assert summary in " ".join(book["docstring"].split()), book["docstring"][:500]


def reference_page_of(site: Path, name: str) -> str:
    """The site-relative URL of the reference page that documents ``name`` (its anchor's page)."""
    anchor = re.compile(rf'id="((?:\w+\.)*{re.escape(name)})"')
    pages = [
        html.relative_to(site).parent.as_posix() + "/"
        for html in sorted((site / "reference").rglob("*.html"))
        if anchor.search(html.read_text(encoding="utf-8"))
    ]
    assert pages, f"no page under reference/ documents {name}"
    return pages[0]


SEARCH_RESULTS = """[...document.querySelectorAll('.md-search-result__list a.md-search-result__link')]
    .map((a) => a.href)"""


def test_search_finds_ratelimit_on_its_reference_page(
    chromium: Browser, site_url: str, site_dir: Path
) -> None:
    expected_page = site_url + reference_page_of(site_dir, "RateLimit")
    assert chromium.navigate(site_url) == 200
    chromium.wait_for("!!document.querySelector('input.md-search__input')", "Material's search box")
    chromium.evaluate("document.querySelector('input.md-search__input').focus()")
    # Typed as a reader types it: Material queries its search worker on keyup.
    chromium.type_text("RateLimit")
    # The result for the class itself, not RateLimitError's: its page, its anchor (Material may
    # add ?h=... for highlighting).
    wanted = f"""{SEARCH_RESULTS}.find((href) => {{
        const url = new URL(href);
        return url.origin + url.pathname === {json.dumps(expected_page)} && /[#.]RateLimit$/.test(url.hash);
    }})"""
    try:
        found = chromium.wait_for(wanted, f"a search result for RateLimit on {expected_page}")
    except BrowserError as exc:
        raise AssertionError(f"{exc}; the results: {chromium.evaluate(SEARCH_RESULTS)}") from None
    assert found.split("#")[0].split("?")[0] == expected_page


NAV_LINKS = """(() => {
    const nav = document.querySelector('nav.md-nav--primary');
    if (!nav) return null;
    return [...nav.querySelectorAll('a.md-nav__link[href]')].map((a) => {
        const section = a.closest('nav[aria-labelledby]');
        const label = section && document.getElementById(section.getAttribute('aria-labelledby'));
        return {href: a.href, text: a.innerText.trim(), section: label ? label.innerText.trim() : null};
    });
})()"""

PAGE = """(() => {
    const h1 = document.querySelector('article h1');
    const active = [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link--active')];
    return {h1: h1 ? h1.innerText.trim() : null, active: active.map((a) => a.href.split('#')[0])};
})()"""


def test_the_navigation_reaches_every_guide(chromium: Browser, site_url: str) -> None:
    config = mkdocs_config()
    expected = guides(config)
    assert expected, "the Guides section of mkdocs.yml lists no page"
    assert chromium.navigate(site_url) == 200
    links: list[dict[str, Any]] = chromium.wait_for(NAV_LINKS, "the site's navigation")
    by_href = {link["href"]: link for link in links}
    for title, source in expected:
        url = site_url + page_url(source, config)
        assert url in by_href, f"the navigation has no link to {source} ({url}): {sorted(by_href)}"
        link = by_href[url]
        assert link["text"] == title, link
        assert link["section"] == "Guides", link
    for title, source in expected:
        url = by_href[site_url + page_url(source, config)]["href"]
        assert chromium.navigate(url) == 200, f"{title}: {url}"
        page = chromium.wait_for(PAGE, f"the page of {source}")
        assert page["h1"], f"{title} ({url}) renders no h1"
        assert not page["h1"].startswith("404"), f"{title} ({url}) renders the 404 page"
        assert url in page["active"], f"{title}: the navigation does not mark {url} as the current page"


CODE_BLOCKS = """(() => {
    const blocks = [...document.querySelectorAll('.md-typeset pre > code')];
    // Material adds the copy buttons after the load event: wait for them.
    if (!blocks.length || blocks.some((code) => !code.parentElement.querySelector('.md-code__nav'))) return null;
    const range = document.createRange();
    return blocks.map((code) => {
        const nav = code.parentElement.querySelector('.md-code__nav').getBoundingClientRect();
        const box = code.getBoundingClientRect();
        const covered = [];
        const beyond = [];
        const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (!node.textContent.trim()) continue;
            range.selectNodeContents(node);
            for (const r of range.getClientRects()) {
                if (r.right > nav.left && r.left < nav.right && r.bottom > nav.top && r.top < nav.bottom) {
                    covered.push(node.textContent);
                }
                if (r.right > box.right + 0.5) beyond.push(node.textContent);
            }
        }
        // The width of a column: ten characters of the block's font, measured.
        const probe = document.createElement('code');
        probe.textContent = '0123456789';
        probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre;display:inline;padding:0;border:0';
        code.parentElement.appendChild(probe);
        const ch = probe.getBoundingClientRect().width / 10;
        probe.remove();
        // A wrapped line goes on right of its own indentation.
        const dedented = [];
        for (const line of code.querySelectorAll(':scope > span[id^="__span-"]')) {
            range.selectNodeContents(line);
            const rects = [...range.getClientRects()].filter((r) => r.width > 0);
            if (!rects.length) continue;
            const top = Math.min(...rects.map((r) => r.top));
            const rest = rects.filter((r) => r.top > top + 2);
            if (!rest.length) continue;
            const indent = /^ */.exec(line.textContent)[0].length;
            const start = line.getBoundingClientRect().left + indent * ch;
            if (Math.min(...rest.map((r) => r.left)) < start + ch - 1) dedented.push(line.textContent.trim());
        }
        code.setAttribute('data-md-copying', '');  // as Material's copy button reads the text
        const copied = code.innerText.trimEnd();
        code.removeAttribute('data-md-copying');
        return {
            first: code.textContent.split('\\n')[0],
            hidden: code.scrollWidth - code.clientWidth,
            beyond, covered, dedented,
            copiedAsWritten: copied === code.textContent.trimEnd(),
        };
    });
})()"""


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("source", ["index.md", "guides/booking.md"])
def test_code_blocks_show_every_character_and_the_copy_button_covers_none(
    chromium: Browser, site_url: str, source: str, width: int
) -> None:
    """Long lines wrap (docs/stylesheets/extra.css) instead of running on past the block's edge,
    under the line's own indentation (docs/javascripts/code-wrap.js); the copy button sits in a
    gutter of its own; the button copies the code as written."""
    chromium.set_viewport(width)
    try:
        assert chromium.navigate(site_url + page_url(source, mkdocs_config())) == 200
        blocks: list[dict[str, Any]] = chromium.wait_for(CODE_BLOCKS, f"the code blocks of {source}")
    finally:
        chromium.set_viewport(None)
    assert blocks
    for block in blocks:
        assert block["hidden"] <= 0, block  # nothing to scroll to
        assert not block["beyond"], block
        assert not block["covered"], block
        assert not block["dedented"], block
        assert block["copiedAsWritten"], block
    if source == "guides/booking.md":
        # The page's first example has lines longer than the block at both widths: they wrapped.
        assert any(len(line) > 80 for line in (ROOT / "docs" / source).read_text().splitlines())
