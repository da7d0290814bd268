"""README and docs/: every relative link resolves (file and #anchor), nothing points outside."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def links(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [m.group(1) for m in LINK.finditer(text)]


def test_docs_has_the_pages_readme_promises():
    names = {p.name for p in PAGES}
    for name in ("migration.md", "module.md", "bucketing_module.md", "sequential_module.md",
                 "kvstores.md", "training.md", "files.md", "cluster.md"):
        assert name in names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in links(page):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to missing {target}"
        assert ROOT in dest.parents or dest == ROOT, f"{page.name}: {target} leaves the project"
        if anchor:
            assert anchor in anchors(dest), f"{page.name}: no heading #{anchor} in {dest.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_project(page):
    text = page.read_text()
    assert "shared/" not in text and "/work/" not in text, page.name


def test_readme_links_every_docs_page():
    readme_links = {pathlib.PurePosixPath(t.partition("#")[0]).name
                    for t in links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page.name in readme_links, f"README does not link docs/{page.name}"
