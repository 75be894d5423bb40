"""docs/claims.md is the registry applied to the stored records, nothing typed by hand: rendered
again from records/paper and records/quick, it must equal the committed page."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make_claims():
    spec = importlib.util.spec_from_file_location("make_claims", ROOT / "docs" / "make_claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_claims_page_is_the_registry_on_the_stored_records():
    page = (ROOT / "docs" / "claims.md").read_text()
    assert _make_claims().render() == page, "docs/claims.md is stale: run python docs/make_claims.py"


def test_the_record_blocks_of_the_family_pages_are_the_stored_record():
    make = _make_claims()
    for name in make.FAMILY_PAGES:
        text = (ROOT / "docs" / name).read_text()
        assert make.render_page(text) == text, f"docs/{name} is stale: run python docs/make_claims.py"
    blocks = [m.group(2) for name in make.FAMILY_PAGES for m in make.BLOCK.finditer((ROOT / "docs" / name).read_text())]
    from failgeom.experiments import names

    assert sorted(set(blocks)) == sorted(names()), "every experiment has one record block on its family page"
