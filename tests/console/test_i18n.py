"""The UI catalogs: every key in both languages, and every key the templates use exists."""

from __future__ import annotations

import re
import string

from cloudsoc.api.console import TEMPLATES
from cloudsoc.web.i18n import LANGUAGES, Catalog


def test_every_key_in_every_language() -> None:
    catalog = Catalog()
    keys = {lang: set(texts) for lang, texts in catalog.texts.items()}
    assert set(keys) == set(LANGUAGES)
    for lang, lang_keys in keys.items():
        assert lang_keys == keys["en"], f"{lang}: missing {keys['en'] - lang_keys}, extra {lang_keys - keys['en']}"
    for key in keys["en"]:
        fields = [{f for _, f, _, _ in string.Formatter().parse(catalog.texts[lang][key]) if f} for lang in LANGUAGES]
        assert all(f == fields[0] for f in fields), f"{key}: placeholders differ between languages"


def test_templates_use_known_keys() -> None:
    known = set(Catalog().texts["en"])
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\(\s*["']([a-z_.]+)["']""", path.read_text()))
    assert used and used <= known, used - known


def test_translator_falls_back_and_formats() -> None:
    t = Catalog().translator("zh")
    assert t("nav.signed_in_as", user="alice", role="admin") == "当前用户 alice（admin）"
    assert t("no.such.key") == "no.such.key"
