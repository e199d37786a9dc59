"""The web UI ships inside the package and loads nothing from elsewhere: every module it imports
is a file next to it, and no asset points at a CDN or any other host."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from apex.web import STATIC_DIR

IMPORT = re.compile(
    r"""(?:^|\s)(?:import|export)\b[^'"]*?\bfrom\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)""",
    re.M,
)
ASSET = re.compile(r"""(?:src|href)=["']([^"'#]+)["']""")
URL = re.compile(r"""\bhttps?://[^\s"'`)]+""")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# Published builds of third-party libraries, unchanged: their comments and XML namespaces name
# hosts, so they are checked against the hashes their README lists instead.
VENDOR = STATIC_DIR / "vendor"


def sources(suffix: str) -> list[Path]:
    return sorted(STATIC_DIR.rglob(f"*{suffix}"))


def test_every_module_import_is_a_file_in_the_package() -> None:
    modules = sources(".js")
    assert STATIC_DIR / "js" / "main.js" in modules
    for module in modules:
        for match in IMPORT.finditer(module.read_text()):
            specifier = match.group(1) or match.group(2)
            assert specifier.startswith("./") or specifier.startswith("../"), (
                f"{module.name}: {specifier}"
            )
            assert (module.parent / specifier).resolve().is_file(), f"{module.name}: {specifier}"


def test_the_page_references_only_shipped_assets() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    assets = ASSET.findall(index)
    assert {"js/main.js", "css/app.css", "favicon.svg"} <= set(assets)
    for asset in assets:
        if asset.startswith("/api/"):
            continue
        assert (STATIC_DIR / asset).is_file(), asset


def test_nothing_is_loaded_from_another_host() -> None:
    for path in [*sources(".js"), *sources(".css"), *sources(".html"), *sources(".svg")]:
        if VENDOR in path.parents:
            continue
        urls = [url for url in URL.findall(path.read_text()) if url != SVG_NAMESPACE]
        assert urls == [], f"{path.relative_to(STATIC_DIR)} refers to {urls}"


def test_vendored_libraries_are_the_published_builds() -> None:
    readme = (VENDOR / "README.md").read_text()
    builds = [*VENDOR.rglob("*.js"), *VENDOR.rglob("*.mjs")]
    assert builds
    for path in builds:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"`{digest}`" in readme, f"{path.relative_to(STATIC_DIR)} is not the listed build"
        assert (path.parent / "LICENSE").is_file(), path.parent
