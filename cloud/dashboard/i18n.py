"""The dashboard's message translation: one `gettext` for templates and Python alike.

Templates write `{{ _("Alerts") }}` (Jinja's i18n extension, new-style: `%(name)s`
placeholders are keyword arguments); Python view code imports `gettext as _` from here.
The translations in force are per request (a context variable), so concurrent requests
in different languages never mix. Until a catalogue is installed for a request, messages
come back as written (English).
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar

__all__ = ["current_translations", "gettext", "ngettext", "use_translations"]

_NULL = _gettext.NullTranslations()
_current: ContextVar[_gettext.NullTranslations] = ContextVar("ironwatch_translations")


def current_translations() -> _gettext.NullTranslations:
    return _current.get(_NULL)


def use_translations(translations: _gettext.NullTranslations) -> None:
    """Install the translations for the rest of this request (context)."""
    _current.set(translations)


def gettext(message: str) -> str:
    return current_translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return current_translations().ngettext(singular, plural, n)
