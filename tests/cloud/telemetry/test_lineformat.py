"""The fast line-protocol formatter against influxdb-client's Point, its reference.

Differential: for arbitrary records the contract accepts (and, for the escaping, for text it
does not), `to_lines` writes byte for byte what Point writes. Then a real InfluxDB 1.6 takes
tricky values through the new path and gives back the same float64s.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.telemetry import InfluxStore
from cloud.telemetry._lineformat import LineFormatter, point_lines, to_lines
from ironwatch.ids import ID_PATTERN
from ironwatch.wire import EPOCH_PATTERN, MAX_SEQ, MAX_TS, MIN_TS
from ironwatch_app.local_servers import InfluxD


@dataclass(frozen=True)
class Rec:
    """A StorableRecord without the contract's checks (to_lines must not rely on them)."""

    seq: int
    asset_id: str
    point: str
    ts: datetime
    window_s: float
    stale: bool
    features: Mapping[str, float | None]


# Values repr writes in exponent notation, the edges of float64, signed zero, and the
# neighbours of repr's notation switch (1e-4, 1e16).
TRICKY = [0.0, -0.0, 1e-300, -1e-300, 1e308, -1e308, 1.7976931348623157e308, 5e-324,
          2.2250738585072014e-308, 1e16, 9999999999999998.0, 1e16 + 2, 1e15, 1e-4,
          9.999999999999999e-05, 1e-5, 0.1 + 0.2, 1 / 3, 123456789.0, 3.0, -3.0, 0.5, 1e22]
values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(TRICKY),
    st.floats(min_value=-1e4, max_value=1e4).map(lambda v: round(v, 3)),
)
ids = st.from_regex(ID_PATTERN, fullmatch=True)
epochs = st.one_of(st.just(""), st.from_regex(EPOCH_PATTERN, fullmatch=True))
feature_names = st.from_regex(r"[a-z][a-z0-9_]{0,79}", fullmatch=True)
times = st.datetimes(min_value=MIN_TS.replace(tzinfo=None),
                     max_value=(MAX_TS - timedelta(microseconds=1)).replace(tzinfo=None),
                     timezones=st.just(UTC))
# What the contract takes as a feature name: lower_snake_case ending in a unit.
unit_names = st.from_regex(r"[a-z][a-z0-9_]{0,70}", fullmatch=True).map(lambda s: s + "_ms2")
window_s = st.one_of(st.floats(min_value=1e-6, max_value=86_400), st.sampled_from([1.0, 0.64,
                                                                                   1e-5, 10]))


def records(names: st.SearchStrategy[str], ids_: st.SearchStrategy[str] = ids,
            vals: st.SearchStrategy[float | None] = values) -> st.SearchStrategy[Rec]:
    return st.builds(
        Rec, seq=st.integers(0, MAX_SEQ), asset_id=ids_, point=ids_, ts=times, window_s=window_s,
        stale=st.booleans(), features=st.dictionaries(names, vals, min_size=1, max_size=25),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(gateway=ids, epoch=epochs, recs=st.lists(records(feature_names), max_size=8))
def test_lines_are_points_lines_for_every_contract_record(
    gateway: str, epoch: str, recs: list[Rec]
) -> None:
    assert to_lines(gateway, recs, epoch) == point_lines(gateway, recs, epoch)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    gateway=st.text(), epoch=st.text(),
    recs=st.lists(records(
        st.one_of(st.text(min_size=1), st.sampled_from(["seq", "stale", "window_s", "a.0,b"])),
        ids_=st.text(),
        vals=st.one_of(values, st.floats(), st.booleans(), st.integers(-10**15, 10**15)),
    ), max_size=4),
)
def test_escaping_and_odd_values_match_point_beyond_the_contract(
    gateway: str, epoch: str, recs: list[Rec]
) -> None:
    """Text the contract refuses (commas, spaces, '=', backslashes in ids and names), meta
    names used as features, non-finite values, booleans and integers: still Point's text."""
    assert LineFormatter().lines(gateway, recs, epoch) == point_lines(gateway, recs, epoch)


def test_a_record_with_a_missing_value_and_the_notation_switches() -> None:
    t = datetime(2026, 1, 1, 0, 0, 1, 5, tzinfo=UTC)
    rec = Rec(7, "pump-01", "de", t, 1.0, False,
              {"b_ms2": None, "a_ms2": 1e-5, "c_ms2": 1e16, "d_ms2": 2.0, "e_ms2": -0.0})
    (line,) = to_lines("gw-1", [rec], "00ff00ff")
    assert line == ("features,asset=pump-01,epoch=00ff00ff,gateway=gw-1,point=de "
                    "a_ms2=1e-05,c_ms2=1e+16,d_ms2=2,e_ms2=-0,seq=7i,stale=false,window_s=1 "
                    "1767225601000005000")
    plain = Rec(7, "pump-01", "de", t, 0.5, True, {"b_ms2": None, "a_ms2": 0.25})
    assert to_lines("gw-1", [plain]) == [
        "features,asset=pump-01,gateway=gw-1,point=de a_ms2=0.25,seq=7i,stale=true,"
        "window_s=0.5 1767225601000005000"]


# -- a real InfluxDB ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def influxd() -> Iterator[InfluxD]:
    with InfluxD() as server:
        yield server


def _raw_values(server: InfluxD, asset: str) -> list[dict[str, object]]:
    """The rows of one asset with each number as the text InfluxDB answered."""
    q = f"SELECT * FROM features WHERE \"asset\" = '{asset}'"
    url = f"{server.url}/query?" + urllib.parse.urlencode({"db": server.database, "q": q})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    series = json.loads(body, parse_float=str, parse_int=str)["results"][0]["series"][0]
    return [dict(zip(series["columns"], row, strict=True)) for row in series["values"]]


@pytest.mark.integration
def test_influxd_gives_back_the_tricky_values_written_through_the_new_path(
    influxd: InfluxD, tmp_path: Path
) -> None:
    asset = f"a-{uuid.uuid4().hex[:8]}"
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    names = [f"v{i}_ms2" for i in range(len(TRICKY))]
    recs = [
        Rec(i, asset, "de", t0 + timedelta(microseconds=i), [1.0, 1e-5, 0.64][i % 3],
            bool(i % 2), {n: TRICKY[(j + i) % len(TRICKY)] if (j + i) % 5 else None
                          for j, n in enumerate(names)})
        for i in range(len(TRICKY))
    ]
    with InfluxStore(influxd.url, database=influxd.database, snapshot_dir=tmp_path) as store:
        assert store.write("gw-t", recs, epoch="0123abcd") == len(recs)
        frame = store.query(asset_ids=[asset], features=names)
    assert frame.seqs.tolist() == list(range(len(recs)))
    for row, r in enumerate(recs):
        assert frame.stale[row] == r.stale and frame.window_s[row] == r.window_s
        assert frame.ts_ns[row] == 1769904000000000000 + row * 1000
        for col, n in enumerate(names):
            want = r.features[n]
            got = float(frame.values[row, col])
            if want is None:
                assert math.isnan(got), (n, row)
            else:
                assert got == want, (n, row, got, want)
    # The reader's JSON parse turns "-0" into 0; the server's own answer keeps the sign.
    raw = _raw_values(influxd, asset)
    neg_zero = [(i, n) for i, r in enumerate(recs) for n, v in r.features.items()
                if v == 0 and math.copysign(1, v) < 0]
    assert neg_zero
    for i, n in neg_zero:
        assert raw[i][n] == "-0", raw[i][n]


@pytest.mark.integration
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(recs=st.lists(records(unit_names, vals=st.one_of(st.none(), st.floats(
    allow_nan=False, allow_infinity=False), st.sampled_from(TRICKY))), min_size=1, max_size=6))
def test_influxd_gives_back_what_hypothesis_writes(
    influxd: InfluxD, tmp_path: Path, recs: list[Rec]
) -> None:
    asset = f"h-{uuid.uuid4().hex[:10]}"
    # One asset per example (a fresh series); distinct times so no point overwrites another.
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    recs = [Rec(i, asset, r.point, t0 + timedelta(seconds=i), r.window_s, r.stale, r.features)
            for i, r in enumerate(recs)]
    with InfluxStore(influxd.url, database=influxd.database, snapshot_dir=tmp_path,
                     count_new=False) as store:
        store.write("gw-h", recs)
        names = sorted({n for r in recs for n in r.features})
        frame = store.query(asset_ids=[asset], features=names)
    assert frame.seqs.tolist() == [r.seq for r in recs]
    for row, r in enumerate(recs):
        for col, n in enumerate(names):
            want = r.features.get(n)
            got = float(frame.values[row, col])
            assert math.isnan(got) if want is None else got == want, (n, got, want)
