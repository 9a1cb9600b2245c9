"""Impossible-travel detection, Datadog's ``impossible_travel`` method.

Each event of a group (a user) that has a location is compared with the group's previous located
event: the travel between them is impossible when it is longer than 500 km and faster than
1,000 km/h (Datadog's numbers). The later event is a trigger; the signal lifecycle (keepAlive,
maxSignalDuration) then joins a group's triggers into signals, and a signal's events are its
triggers, as for new-value rules.

With ``baselineUserLocations`` a group first learns its usual locations for 24 hours (from its
first located event) without signals; after that an impossible travel raises a signal only when
it leads to a location (city and country; the coordinates where the event names neither) not
seen in the last 30 days, along a transition (from one location to another) the group has not
made before.

Locations come from a geo_data query's attribute (``@network.client.geoip``): its
``location.latitude``/``longitude``, and ``city.name``/``country.name`` for the baseline. secmon has
no GeoIP database: the events must carry them (Okta's events do, as its geographical context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.new_value import DAY_MS, ROW
from secmon.detect.rule_frame import EID, TS

MIN_DISTANCE_KM = 500.0
MAX_SPEED_KMH = 1000.0
EARTH_RADIUS_KM = 6371.0088  # the mean radius
LEARNING_MS = DAY_MS
FORGET_MS = 30 * DAY_MS
_HOUR_MS = 3_600_000
FROM, TO = "__from_place", "__to_place"  # the places of a trigger's travel (city, 0x1f, country)


def distance_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distances (haversine) between two arrays of points, in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def impossible(distance: np.ndarray, elapsed_ms: np.ndarray) -> np.ndarray:
    """Whether travelling ``distance`` km in ``elapsed_ms`` is impossible (any speed over the
    limit: a long distance in no time too)."""
    return (distance > MIN_DISTANCE_KM) & (distance * _HOUR_MS > MAX_SPEED_KMH * elapsed_ms)


def triggering_locations(before: str, after: str) -> dict[str, Any]:
    """What a signal's message reads of the travel that raised it (Datadog's variables
    ``{{@impossible_travel.triggering_locations.first_location.city}}``, ``...country``, and
    ``second_location``), from the two places (city and country joined by 0x1f)."""
    def location(place: str) -> dict[str, str]:
        city, _, country = place.partition("\x1f")
        return {key: value for key, value in (("city", city), ("country", country)) if value}

    return {"impossible_travel": {"triggering_locations": {"first_location": location(before), "second_location": location(after)}}}


def place_key(place: str, latitude: float, longitude: float) -> str:
    """What the baseline calls a location: the place (city and country joined by 0x1f), or the
    rounded coordinates when the event names neither."""
    return place if place != "\x1f" else f"{latitude:.2f},{longitude:.2f}"


def impossible_travel_triggers(compiled: CompiledRule, frame: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """The rows of ``frame`` (sorted by group, time and event order) that arrive by impossible
    travel: (``by`` columns..., timestamp, __eid, __row, the places travelled from and to, __case)
    in frame order."""
    options = compiled.rule.options.impossible_travel_options
    located = (
        frame.with_row_index(ROW)
        .filter(pl.col("__q0") & pl.col("__lat0").is_not_null() & pl.col("__lon0").is_not_null())
        .filter(pl.col("__lat0").is_between(-90, 90) & pl.col("__lon0").is_between(-180, 180))
    )
    if located.height < 2:
        return pl.DataFrame()
    if by:
        group = located.select(pl.struct(list(by)).rle_id()).to_series().to_numpy()
    else:
        group = np.zeros(located.height, dtype=np.int64)
    ts = located[TS].to_numpy()
    lat, lon = located["__lat0"].to_numpy(), located["__lon0"].to_numpy()
    same_group = np.zeros(len(ts), dtype=bool)
    same_group[1:] = group[1:] == group[:-1]
    travelled = np.zeros(len(ts), dtype=bool)
    travelled[1:] = impossible(distance_km(lat[:-1], lon[:-1], lat[1:], lon[1:]), (ts[1:] - ts[:-1]).astype(np.float64))
    fired = same_group & travelled
    if options is not None and options.baseline_user_locations:
        places = [place_key(place, la, lo) for place, la, lo in zip(located["__place0"].to_list(), lat.tolist(), lon.tolist())]
        fired = _against_baseline(fired, same_group, ts, places)
    # Where each traveller came from: the previous located row's place (the first row's is its own).
    located = located.with_columns(pl.col("__place0").shift(1, fill_value=pl.col("__place0").first()).alias(FROM))
    triggers = located.filter(pl.Series(fired)).select([*by, TS, EID, ROW, FROM, pl.col("__place0").alias(TO)])
    return triggers.with_columns(pl.lit(0, dtype=pl.Int32).alias("__case"))


def _against_baseline(fired: np.ndarray, same_group: np.ndarray, ts: np.ndarray, places: list[str]) -> np.ndarray:
    """``fired`` narrowed by each group's learned locations and transitions (one pass in order)."""
    kept = np.zeros(len(fired), dtype=bool)
    start = 0
    seen: dict[str, int] = {}
    transitions: set[tuple[str, str]] = set()
    for i, (t, place) in enumerate(zip(ts.tolist(), places)):
        if not same_group[i]:
            start, seen, transitions = t, {}, set()
        else:
            previous = places[i - 1]
            common = place in seen and t - seen[place] <= FORGET_MS
            kept[i] = fired[i] and t > start + LEARNING_MS and not common and (previous, place) not in transitions
            if previous != place:
                transitions.add((previous, place))
        seen[place] = t
    return kept
