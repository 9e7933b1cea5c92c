"""The README stays the short front door: size, the quick start, working links."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# The quick start's two commands, character for character (CI and users copy them).
QUICK_START = (
    'pip install -e ".[bench]" && python -m fastloss bench'
    '     # 1. install, run the benchmark suite\n'
    'pip install -e ".[test]" && pytest                         # 2. install, run the test suite\n'
)


@pytest.fixture(scope="module")
def text():
    if not README.exists():
        pytest.skip("README.md not present (tests run from an installed wheel)")
    return README.read_text(encoding="utf-8")


def test_readme_is_at_most_8_kb():
    if not README.exists():
        pytest.skip("README.md not present")
    assert README.stat().st_size <= 8 * 1024


def test_quick_start_commands_verbatim(text):
    assert "```bash\n" + QUICK_START + "```" in text


def test_headline_table_marker_precedes_a_table(text):
    after = text.split("<!-- headline-table -->", 1)
    assert len(after) == 2, "the marker the bench refresh looks for is gone"
    assert re.search(r"^\| .+\|\n\|[-| ]+\|\n", after[1], re.M)


def test_local_links_resolve(text):
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links
    # an sdist carries the guide's Markdown but not the rest of docs/
    has_docs = (ROOT / "docs" / "conf.py").exists()
    missing = [link for link in links
               if not link.startswith(("http://", "https://")) and not (ROOT / link).exists()
               and (has_docs or not link.startswith("docs/"))]
    assert not missing, f"README links to missing files: {missing}"
