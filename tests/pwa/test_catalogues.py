"""The PWA's message catalogues: the same keys in every language, and every key the code names exists."""

from __future__ import annotations

import json
import re

from tests.support import REPO_ROOT

PWA = REPO_ROOT / "mobile_pwa"
LANGS = ("zh-CN", "en")


def _catalogue(lang: str) -> dict[str, str]:
    return json.loads((PWA / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_catalogues_have_the_same_keys() -> None:
    zh, en = (set(_catalogue(lang)) for lang in LANGS)
    assert zh == en, {"only zh-CN": sorted(zh - en), "only en": sorted(en - zh)}


def test_catalogues_have_the_same_placeholders() -> None:
    zh, en = (_catalogue(lang) for lang in LANGS)
    names = re.compile(r"\{(\w+)\}")
    assert {k: set(names.findall(v)) for k, v in zh.items()} == {k: set(names.findall(v)) for k, v in en.items()}


def test_every_literal_key_in_the_code_exists() -> None:
    keys = set(_catalogue("zh-CN"))
    used: set[str] = set()
    for path in [*PWA.glob("js/*.js"), *PWA.glob("screen/*.js")]:
        used |= set(re.findall(r"""\bt\(\s*["']([\w.-]+)["']""", path.read_text(encoding="utf-8")))
        used |= set(re.findall(r'data-i18n="([\w.-]+)"', path.read_text(encoding="utf-8")))
    used |= set(re.findall(r'data-i18n="([\w.-]+)"', (PWA / "index.html").read_text(encoding="utf-8")))
    assert used, "no keys found: the pattern no longer matches the code"
    assert not used - keys, sorted(used - keys)
