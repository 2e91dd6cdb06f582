"""UI strings in English and Simplified Chinese: ``web/i18n/<lang>.json`` maps keys to text, and each page may
bring its own ``web/i18n/<lang>.<page>.json`` (so that pages are added without editing one shared file).

Templates call ``t("key", name=...)``; ``{name}`` placeholders are filled with str.format. A key missing from a
catalog falls back to English, then to the key itself (a test keeps both catalogs complete).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import orjson

LANGUAGES: Final = {"en": "English", "zh": "简体中文"}
DEFAULT_DIR: Final = Path(__file__).parent / "i18n"


class Catalog:
    """The UI strings of every language."""

    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.texts: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            texts: dict[str, str] = orjson.loads((directory / f"{lang}.json").read_bytes())
            for part in sorted(directory.glob(f"{lang}.*.json")):
                more: dict[str, str] = orjson.loads(part.read_bytes())
                twice = texts.keys() & more.keys()
                if twice:
                    raise ValueError(f"{part.name}: keys already defined elsewhere: {', '.join(sorted(twice))}")
                texts.update(more)
            self.texts[lang] = texts

    def language(self, wanted: str | None, default: str = "en") -> str:
        return wanted if wanted in LANGUAGES else default

    def translator(self, lang: str) -> Callable[..., str]:
        texts = self.texts.get(lang, {})
        english = self.texts["en"]

        def t(key: str, **values: object) -> str:
            text = texts.get(key) or english.get(key) or key
            return text.format(**values) if values else text

        return t
