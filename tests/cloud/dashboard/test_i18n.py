"""Languages and time zones: every message of the dashboard has a Chinese translation, the
language follows the viewer's choice, else the browser, else English, and every time is
shown in a named zone (the plant's, else the viewer's, else UTC)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from cloud.dashboard import i18n, zones
from cloud.dashboard._format import fmt_duration, fmt_num, fmt_time, fmt_zone
from cloud.dashboard._labels import term
from cloud.dashboard._svg import time_ticks

from .conftest import LOCAL, DashboardClient, Fleet, make_app

ROOT = Path(__file__).resolve().parents[3]
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6"}


def extracted_messages() -> dict[str | tuple[str, ...], str]:
    """Every message id Babel's extractor finds with the project's babel.cfg, and where."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]
    found: dict[str | tuple[str, ...], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "N_": None, "gettext": None,
                                                     "ngettext": (1, 2)}
    ):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def test_babel_finds_the_dashboards_messages() -> None:
    found = extracted_messages()
    # Templates, view modules and the vocabulary are all read, not just one of them.
    assert len(found) > 250
    assert "Fleet overview" in found and "overdue by %(duration)s" in found
    assert "bearing outer race" in found and "Velocity RMS (ISO 10–1000 Hz)" in found
    assert ("%(num)d suggested action", "%(num)d suggested actions") in found


def test_every_message_has_a_chinese_translation() -> None:
    # The compiled catalogue's table: msgid (or (msgid, n) for plurals) -> non-empty msgstr.
    # A translation may equal its source ("API"); a missing or empty one is not in the table.
    table: dict[object, str] = getattr(i18n.catalogue("zh_CN"), "_catalog", {})
    missing: list[str] = []
    for message, where in sorted(extracted_messages().items(), key=lambda kv: kv[1]):
        if isinstance(message, tuple):
            ok = bool(table.get((message[0], 0)))
        else:
            ok = bool(table.get(message))
        if not ok:
            missing.append(f"  {where}: {message!r}")
    assert not missing, (
        f"{len(missing)} dashboard message(s) have no zh_CN translation; add them to a .po file "
        "under cloud/dashboard/locale/zh_CN/LC_MESSAGES/ (see docs/dashboard.md):\n"
        + "\n".join(missing)
    )


def test_translations_keep_their_placeholders() -> None:
    catalogue = i18n.catalogue("zh_CN")
    placeholder = re.compile(r"%\(\w+\)[sd]")
    for message in extracted_messages():
        source = message[0] if isinstance(message, tuple) else message
        translated = (
            catalogue.ngettext(message[0], message[1], 1)
            if isinstance(message, tuple)
            else catalogue.gettext(message)
        )
        assert sorted(placeholder.findall(translated)) == sorted(placeholder.findall(source)), (
            source,
            translated,
        )


@pytest.fixture
def locale_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.catalogue.cache_clear()
    yield folder
    i18n.catalogue.cache_clear()


PO = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'


def test_every_po_file_of_a_locale_is_merged(locale_dir: Path) -> None:
    (locale_dir / "dashboard.po").write_text(PO + 'msgid "Fleet"\nmsgstr "设备总览"\n')
    (locale_dir / "kpis.po").write_text(PO + 'msgid "KPIs"\nmsgstr "关键指标"\n')
    catalogue = i18n.catalogue("zh_CN")
    assert catalogue.gettext("Fleet") == "设备总览"
    assert catalogue.gettext("KPIs") == "关键指标"
    assert catalogue.gettext("untranslated") == "untranslated"


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        (None, "zh", "zh_CN"),
        (None, "zh-Hans-CN", "zh_CN"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "de-DE,zh;q=0.5", "zh_CN"),  # German is not offered; Chinese is wanted next
        (None, "en;q=0.3,zh-CN;q=0.8", "zh_CN"),  # q-values order, not position
        (None, "fr, *;q=0.1", "en"),
        (None, "zh;q=0", "en"),  # q=0 means "not this one"
        (None, None, "en"),
        (None, ";;;,q=x", "en"),
        ("en", "zh-CN", "en"),  # a saved choice wins over the browser
        ("zh_CN", "en-US", "zh_CN"),
        ("xx", "zh-CN", "zh_CN"),  # a forged cookie is ignored
    ],
)
def test_locale_choice(chosen: str | None, header: str | None, expected: str) -> None:
    assert i18n.pick_locale(chosen, header) == expected


def test_durations_and_numbers_in_chinese() -> None:
    i18n.use_locale("zh_CN")
    try:
        assert fmt_duration(3 * 3600 + 20 * 60) == "3 小时 20 分钟"
        assert fmt_duration(50 * 3600) == "2 天 2 小时"
        assert fmt_num(1480.0) == "1,480" and fmt_num(0.456) == "0.46"
    finally:
        i18n.use_locale("en")
    assert fmt_duration(3 * 3600 + 20 * 60) == "3 h 20 min"


def test_failure_mode_aliases_read_as_their_mode() -> None:
    """A model may name a mode by an alias of the catalogue ('unbalance', 'bpfo')."""
    i18n.use_locale("zh_CN")
    try:
        assert term("unbalance") == term("imbalance") != "imbalance"
        assert term("BPFO") == term("bearing_outer_race")
        assert term("a_new_mode") == "a new mode"  # unknown: shown as written
    finally:
        i18n.use_locale("en")
    assert term("unbalance") == "imbalance"


def test_times_name_their_zone() -> None:
    at = datetime(2026, 11, 27, 6, 5, tzinfo=UTC)
    assert fmt_time(at) == "2026-11-27 06:05 UTC"
    assert fmt_time(at, ZoneInfo("Asia/Shanghai")) == "2026-11-27 14:05 CST"
    assert fmt_time(at, ZoneInfo("Europe/Berlin")) == "2026-11-27 07:05 CET"
    # A zone without an abbreviation is named by its offset.
    assert fmt_time(at, ZoneInfo("America/Sao_Paulo")) == "2026-11-27 03:05 UTC-03:00"
    assert fmt_time(at, ZoneInfo("Asia/Kathmandu")) == "2026-11-27 11:50 UTC+05:45"
    assert fmt_zone(ZoneInfo("Asia/Shanghai")) == "Asia/Shanghai (CST, UTC+08:00)"


def test_zone_resolution() -> None:
    assert zones.viewer_zone("Asia/Shanghai", "Europe/Berlin") == ZoneInfo("Asia/Shanghai")
    assert zones.viewer_zone(None, "Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert zones.viewer_zone("Mars/Olympus", "../../etc/passwd") == UTC
    assert zones.viewer_zone(None, None) == UTC
    plant = SimpleNamespace(site=SimpleNamespace(timezone="Asia/Shanghai"))
    assert zones.asset_zone(plant) == ZoneInfo("Asia/Shanghai")
    assert zones.asset_zone(SimpleNamespace(site=None)) is None
    assert zones.asset_zone(SimpleNamespace()) is None  # before assets had sites


def test_time_axis_ticks_fall_on_local_whole_hours() -> None:
    start = datetime(2026, 11, 27, 0, 0, tzinfo=UTC).timestamp()
    ticks = time_ticks(start, start + 6 * 3600, zone=ZoneInfo("Asia/Kolkata"))
    assert ticks and all(label.endswith(":00") for _, label in ticks)
    assert ticks[0][1] == "06:00"  # 00:30 UTC is 06:00 in India, the first whole hour


def test_pages_follow_the_browser_then_the_switch(fleet: Fleet) -> None:
    with DashboardClient(make_app(fleet), client=LOCAL) as c:
        en = c.get("/")
        assert '<html lang="en" ' in en.text and "Fleet overview" in en.text
        zh = c.get("/", headers=ZH)
        assert '<html lang="zh-CN" ' in zh.text and "设备总览" in zh.text
        assert "Fleet overview" not in zh.text
        assert "轴承外圈故障" in zh.text and "已逾期 30 分钟" in zh.text
        # The switch in the header: a CSRF-protected form that keeps the page.
        assert 'name="lang" value="zh_CN"' in en.text
        r = c.post("/preferences", data={"lang": "en", "next": "/work-orders"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/work-orders"
        assert c.cookies.get(i18n.LANGUAGE_COOKIE) == "en"
        page = c.get("/work-orders", headers=ZH)
        assert '<html lang="en" ' in page.text and "Work-order board" in page.text
        c.post("/preferences", data={"lang": "zh_CN", "next": "/"})
        page = c.get("/work-orders")
        assert '<html lang="zh-CN" ' in page.text and "工单看板" in page.text
        # Back to the browser's language.
        c.post("/preferences", data={"lang": "", "next": "/"})
        assert "Work-order board" in c.get("/work-orders").text
        # An off-site target is not followed.
        r = c.post("/preferences", data={"lang": "en", "next": "//evil.example/"},
                   follow_redirects=False)
        assert r.headers["location"] == "/"


def test_pages_show_times_in_the_viewers_zone(fleet: Fleet) -> None:
    with DashboardClient(make_app(fleet), client=LOCAL) as c:
        assert re.search(r"\d{2}:\d{2} UTC<", c.get("/").text)  # nothing known: UTC, named
        c.cookies.set(zones.BROWSER_ZONE_COOKIE, "Asia/Shanghai")
        html = c.get(f"/alerts/{fleet.alert_id}").text
        assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} CST", html)
        assert "Times in Asia/Shanghai (CST, UTC+08:00)." in html
        # A chosen zone wins over the browser's.
        c.post("/preferences", data={"zone": "Europe/Berlin", "next": "/"})
        assert (c.cookies.get(zones.ZONE_COOKIE) or "").strip('"') == "Europe/Berlin"
        html = c.get(f"/alerts/{fleet.alert_id}").text
        assert " CET" in html and " CST" not in html
        # A zone name zoneinfo does not know is not kept.
        c.post("/preferences", data={"zone": "../../etc/passwd", "next": "/"})
        assert c.cookies.get(zones.ZONE_COOKIE) is None
        prefs = c.get("/preferences").text
        assert '<option value="Asia/Shanghai">' in prefs


def test_a_plants_times_are_in_the_plants_zone(fleet: Fleet) -> None:
    from cloud.db.models import Asset, Customer, Site

    with fleet.session_factory() as session:
        session.add(Customer(id="acme", name="ACME Pumps"))
        session.add(Site(id="acme-sh", customer_id="acme", name="Shanghai works",
                         timezone="Asia/Shanghai"))
        session.flush()
        pump = session.get(Asset, "pump-01")
        assert pump is not None
        pump.site_id = "acme-sh"
        session.commit()
    with DashboardClient(make_app(fleet), client=LOCAL) as c:
        c.cookies.set(zones.BROWSER_ZONE_COOKIE, "Europe/Berlin")
        html = c.get("/assets/pump-01").text
        assert "Times in Asia/Shanghai (CST, UTC+08:00)." in html and " CST" in html
        assert " CET" not in html.split("</header>", 1)[1]  # only the header clock is CET
        alert = c.get(f"/alerts/{fleet.alert_id}").text
        assert "Times in Asia/Shanghai" in alert
        # On the fleet page the pump's work order is in its plant's zone, the others in the
        # viewer's.
        due = c.get("/").text.split('id="due-h"')[1]
        rows = due.split("<tr")[2:]
        pump_row = next(r for r in rows if "pump-01" in r)
        assert " CST" in pump_row and " CET" not in pump_row
        assert all(" CET" in r for r in rows if "pump-01" not in r)
        board = c.get("/work-orders").text
        card = board.split("WO-1</span>")[1].split("</article>")[0]
        assert " CST" in card and " CET" not in card
        assert zones.asset_zone(SimpleNamespace(site=SimpleNamespace(timezone="UTC"))) == \
            ZoneInfo("UTC")


def test_the_customer_portal_speaks_chinese_in_the_plants_zone(fleet: Fleet) -> None:
    from .test_portal import _signed_in, add_customers

    tokens = add_customers(fleet)
    c = _signed_in(fleet, tokens["acme"])
    page = c.get("/portal", headers=ZH)
    assert page.status_code == 200
    assert '<html lang="zh-CN" ' in page.text
    assert "您的设备" in page.text and "报修" in page.text and "Your machines" not in page.text
    assert "轴承外圈故障" in page.text  # the pump's open alert, in words of the language
    machine = c.get("/portal/assets/pump-01", headers=ZH).text
    assert re.search(r"\d{2}:\d{2} CST", machine)  # the Shanghai plant's zone
    # The switch is on the portal too, and the choice holds without the header.
    assert 'name="lang" value="en"' in page.text
    c.post("/preferences", data={"lang": "en", "next": "/portal"})
    assert "Your machines" in c.get("/portal", headers=ZH).text
