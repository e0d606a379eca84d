"""The dashboard's message translation: one `gettext` for templates and Python alike.

Templates write `{{ _("Alerts") }}` (Jinja's i18n extension, new-style: `%(name)s`
placeholders are keyword arguments); Python view code imports `gettext as _` from here.
The translations in force are per request (a context variable), so concurrent requests
in different languages never mix. Until a catalogue is installed for a request, messages
come back as written (English).

Catalogues are the `.po` files under `cloud/dashboard/locale/<locale>/LC_MESSAGES/`,
compiled in memory with Babel when first needed: every `.po` file of a locale is merged
into one catalogue, so each area of the dashboard can keep its own file. A fresh clone
needs no build step.
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.core import LOCALE_ALIASES, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_COOKIE",
    "LOCALES",
    "LOCALE_DIR",
    "N_",
    "catalogue",
    "catalogues",
    "current_locale",
    "current_translations",
    "gettext",
    "html_lang",
    "ngettext",
    "parse_accept_language",
    "pick_locale",
    "use_locale",
    "use_translations",
]

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "en"
# The languages offered, with their names as their speakers write them (never translated).
LOCALES: Mapping[str, str] = {"en": "English", "zh_CN": "中文"}
# A person's own choice from the language switch; wins over the browser's Accept-Language.
LANGUAGE_COOKIE = "ironwatch_lang"

# Babel's aliases plus Chinese: any Chinese (zh, zh-Hans, zh-TW) reads the simplified pages
# better than English ones.
_ALIASES = {**LOCALE_ALIASES, "zh": "zh_CN"}

_NULL = _gettext.NullTranslations()
_current: ContextVar[_gettext.NullTranslations] = ContextVar("ironwatch_translations")
_current_locale: ContextVar[str] = ContextVar("ironwatch_locale")


def N_(message: str) -> str:
    """Mark a message for extraction without translating it now (module-level constants)."""
    return message


def current_translations() -> _gettext.NullTranslations:
    return _current.get(_NULL)


def current_locale() -> str:
    return _current_locale.get(DEFAULT_LOCALE)


def use_translations(translations: _gettext.NullTranslations) -> None:
    """Install the translations for the rest of this request (context)."""
    _current.set(translations)


def use_locale(locale: str) -> None:
    """Install `locale`'s catalogue (English: none) for the rest of this request."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    _current_locale.set(locale)
    use_translations(catalogue(locale))


def gettext(message: str) -> str:
    return current_translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return current_translations().ngettext(singular, plural, n)


def _compile(po_path: Path, locale: str) -> Translations:
    with po_path.open("rb") as fh:
        parsed = read_po(fh, locale=locale, domain=po_path.stem)
    buffer = io.BytesIO()
    write_mo(buffer, parsed, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


@cache
def catalogue(locale: str) -> _gettext.NullTranslations:
    """Every `.po` file of `locale` merged into one catalogue (sorted by name, later wins)."""
    if locale == DEFAULT_LOCALE:
        return _NULL
    files = sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))
    if not files:
        log.warning("no message catalogue for %s under %s", locale, LOCALE_DIR)
        return _NULL
    merged = _compile(files[0], locale)
    for path in files[1:]:
        merged.merge(_compile(path, locale))
    return merged


def catalogues() -> dict[str, _gettext.NullTranslations]:
    """Each offered locale's catalogue (English is the source language: no catalogue)."""
    return {locale: catalogue(locale) for locale in LOCALES}


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an `Accept-Language` header, most wanted first (q=0 dropped)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:32]):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            weighted.append((-q, i, tag))
    return [tag for _q, _i, tag in sorted(weighted)]


def _candidates(tags: Iterable[str]) -> list[str]:
    # zh-Hans-CN, zh-TW, zh: each also as its bare language, which the aliases map to the
    # offered locale (zh -> zh_CN).
    out: list[str] = []
    for tag in tags:
        norm = tag.replace("-", "_")
        out.append(norm)
        out.append(norm.split("_")[0])
    return out


def pick_locale(chosen: str | None, accept_language: str | None) -> str:
    """A person's saved choice, else the browser's preference (Babel's negotiation), else
    English."""
    if chosen is not None and chosen in LOCALES:
        return chosen
    offered = {code.lower(): code for code in LOCALES}
    match = negotiate_locale(
        _candidates(parse_accept_language(accept_language)),
        list(LOCALES),
        sep="_",
        aliases=_ALIASES,
    )
    if match is None:
        return DEFAULT_LOCALE
    return offered.get(match.lower(), DEFAULT_LOCALE)


def html_lang(locale: str | None = None) -> str:
    """The BCP 47 tag for `<html lang>`: zh_CN -> zh-CN."""
    return (locale or current_locale()).replace("_", "-")
