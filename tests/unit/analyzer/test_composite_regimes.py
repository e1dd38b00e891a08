"""The composite detector after a change of regime: a quieter or shifted series
becomes the new normal after a day at any sampling interval, so a later
anomaly is not hidden behind the first alarm of the episode."""

from __future__ import annotations

import numpy as np

from nazar_analyzer.detection import STATISTICS, CompositeConfig, DetectorBank

T0 = 1_700_000_000.0
HOUR = 3600.0


def _run(values: np.ndarray, step: float, **settings: float) -> tuple[np.ndarray, np.ndarray]:
    bank = DetectorBank(CompositeConfig(refractory_s=6 * HOUR, **settings))
    slot = bank.add()
    res = bank.update(
        np.full(values.size, slot), T0 + step * np.arange(values.size), values
    )
    return np.flatnonzero(res.is_anomaly), res.statistic


def test_a_series_that_went_quiet_is_the_new_normal_after_a_day() -> None:
    rng = np.random.default_rng(5)
    day = 288  # 5-minute points
    values = 100.0 + rng.normal(0, 5.0, 6 * day)
    quiet = 3 * day
    values[quiet:] = 100.0 + rng.normal(0, 0.5, values.size - quiet)
    spike = quiet + int(1.5 * day)
    values[spike] += 60.0  # twelve deviations of the old noise
    alarms, statistic = _run(values, 300.0)
    assert spike in alarms
    assert STATISTICS[statistic[spike]] in ("z_up", "j_up", "range_up")
    # one alarm for the change itself at most, none between it and the spike
    assert alarms[(alarms > quiet + day // 4) & (alarms < spike)].size == 0


def test_an_hourly_series_is_rebaselined_after_a_day_not_after_288_points() -> None:
    rng = np.random.default_rng(7)
    values = 20.0 + rng.normal(0, 1.0, 600)
    shift = 400
    values[shift:] += 15.0
    spike = shift + 48  # two days after the shift
    values[spike] += 60.0
    alarms, _ = _run(values, HOUR)
    assert alarms[(alarms >= shift) & (alarms < shift + 6)].size == 1  # the shift
    assert spike in alarms
    # measured in points only, the episode would last 288 hours and hide the spike
    alarms_points, _ = _run(
        values, HOUR, rebaseline_s=0.0, cusum_window_s=0.0, record_halflife_s=0.0
    )
    assert spike not in alarms_points


def test_a_moderate_spike_after_a_level_shift_is_caught() -> None:
    """The first points of a shift, before the CUSUM recognises it, are not
    learnt as the size of normal residuals (records learn with a delay and
    drop what preceded an alarm of a level shift)."""
    day = 288
    caught = {0: 0, 6: 0}
    for seed in range(10):
        rng = np.random.default_rng([11, seed])
        values = 50.0 + rng.normal(0, 2.0, 6 * day)
        shift = 3 * day
        values[shift:] += 10.0  # five deviations
        spike = shift + 2 * day
        values[spike] += 14.0  # seven deviations
        for delay in caught:
            alarms, _ = _run(values, 300.0, record_delay=delay)
            caught[delay] += spike in alarms
    assert caught[6] >= 9
    assert caught[6] > caught[0]


def test_a_steady_trend_is_learnt_and_stays_quiet() -> None:
    """A series rising steadily (5 deviations a day) is judged against its
    trend: no alarm once the first day is learnt, on any seed."""
    day = 288
    for seed in range(10):
        rng = np.random.default_rng([13, seed])
        k = np.arange(8 * day, dtype=float)
        values = 50.0 + 10.0 * k / day + rng.normal(0, 2.0, k.size)
        alarms, _ = _run(values, 300.0)
        assert alarms[alarms >= day].size == 0, (seed, alarms[:5])


def test_the_expected_value_holds_during_an_episode_and_the_trend_resumes() -> None:
    """While an anomaly episode lasts nothing confirms the learnt trend, so the
    expected value holds instead of following the slope (a slope extrapolated
    for a day walks the expected value away from the series and the episode
    feeds itself). Once the shifted series is the new normal, the trend's line
    moves with the level and the steady trend stays quiet."""
    day = 288
    for seed in range(10):
        rng = np.random.default_rng([13, seed])
        t = np.arange(8 * day)
        values = 100.0 + 10.0 * t / day + rng.normal(0, 2.0, t.size)  # 5 deviations a day
        shift = 4 * day
        values[shift:] += 40.0
        bank = DetectorBank(CompositeConfig(refractory_s=6 * HOUR))
        slot = bank.add()
        res = bank.update(np.full(t.size, slot), T0 + 300.0 * t, values)
        during = res.centre[shift + 10 : shift + day - 10]
        assert np.ptp(during) < 1e-6  # the trend alone would move it by 9
        assert np.flatnonzero(res.is_anomaly).tolist() == [shift]


def test_a_trend_that_ends_is_unlearnt_despite_the_drift_against_it() -> None:
    """A drift in progress is not learnt as the trend, except a drift against
    the slope (the series has become flatter than the line): otherwise a slope
    that has ended is never corrected, because the drift against it is what
    keeps the line from learning."""
    from nazar_analyzer.detection import composite as c

    day = 288
    rng = np.random.default_rng(21)
    t = np.arange(2 * day)
    values = 100.0 - 10.0 * t / day + rng.normal(0, 2.0, t.size)  # falling 5 deviations a day
    learnt = {}
    for direction in (1.0, -1.0):  # drift up: flatter than the line; down: steeper
        bank = DetectorBank(CompositeConfig())
        slot = bank.add()
        bank.update(np.full(t.size, slot), T0 + 300.0 * t, values)
        st = bank._s[:, slot]
        assert st[c.C_TREND] < 0
        sig = st[c.C_SCALE] * c.MAD_TO_SIGMA
        st[c.C_REF] = st[c.C_MID] - direction * 3.0 * sig  # 3 deviations of drift
        before = st[c.C_TW]
        expected = st[c.C_LEVEL] + st[c.C_TREND]
        bank.update(np.array([slot]), np.array([T0 + 300.0 * t.size]), np.array([expected]))
        learnt[direction] = bank._s[c.C_TW, slot] > before
    assert learnt == {1.0: True, -1.0: False}


def test_a_daily_series_sampled_every_minute_is_judged_on_the_time_scales_of_5_minutes() -> None:
    """Told its sampling interval, the detector scales the time constants it
    counts in points (half-lives, windows) to the same durations as at 5
    minutes: a daily count series sampled every minute is learnt and stays
    quiet. With the counts taken as points (a level that forgets in 2.4 hours,
    a trend of 4.8 hours) it follows the daily cycle and spends days in alarm."""
    step = 60.0
    day = int(86400 / step)
    k = np.arange(12 * day)
    series = []
    for phase in (0.25, 0.75):  # first seen at 6:00 and at 18:00
        rate = (40.0 + 60.0 * (1.0 - np.cos(2 * np.pi * (k / day + phase)))) * step / 300.0
        series += [np.random.default_rng(seed).poisson(rate).astype(float) for seed in range(3)]
    worthy = {}
    for told in (True, False):
        bank = DetectorBank(CompositeConfig(interval_s=step if told else 0.0, min_history=750))
        slots = bank.add_many(len(series))
        raw = np.empty((len(series), k.size))
        season = np.empty((len(series), k.size))
        for j in range(k.size):
            res = bank.update(slots, np.full(len(series), T0 + step * j), [v[j] for v in series])
            raw[:, j], season[:, j] = res.raw, res.season
        worthy[told] = (raw[:, 3 * day :] >= 0.5).sum(axis=1)
        if told:
            assert (season[:, -1] == 1).all()  # the daily pattern is found
    assert worthy[True].sum() <= 5, worthy[True]  # of 77,760 points judged
    # not told, they spend more than a day alarm-worthy (two of the six for
    # two to three days)
    assert worthy[False].sum() > day, worthy[False]


def test_a_daily_count_series_that_starts_at_its_trough_or_peak_stays_quiet() -> None:
    """Requests per 5 minutes between 40 at night and 160 by day (Poisson),
    first seen at the trough or the peak: the first half day rises (or falls)
    steadily and is learnt as a trend; once the series turns, the points are
    an anomaly episode. While no seasonality is chosen, the seasonal profiles
    learn from every point of the first two days anyway, against the level
    (which holds during the episode), so the daily pattern is found at day 2
    and the series is explained from then on."""
    day = 288
    k = np.arange(12 * day)
    for phase in (0.0, 0.5):  # trough, peak
        rate = 40.0 + 60.0 * (1.0 - np.cos(2 * np.pi * (k / day + phase)))
        for seed in range(6):
            values = np.random.default_rng(seed).poisson(rate).astype(float)
            bank = DetectorBank(CompositeConfig())
            slot = bank.add()
            res = bank.update(np.full(values.size, slot), T0 + 300.0 * k, values)
            worthy = int((res.raw[3 * day :] >= 0.5).sum())
            assert worthy == 0, (phase, seed, worthy)
            assert int(res.season[-1]) == 1  # the daily pattern is found


def test_a_daily_count_series_sampled_every_minute_that_starts_at_its_trough_stays_quiet() -> (
    None
):
    """The same at one point a minute. The drift's reference re-anchors once
    its statistic has stayed elevated for a day: learning one point of it
    then left the reference going on with the trend, and the series had one
    day-long drift episode after day 3."""
    step = 60.0
    day = int(86400 / step)
    k = np.arange(8 * day)
    series = []
    for phase in (0.0, 0.5):
        rate = (40.0 + 60.0 * (1.0 - np.cos(2 * np.pi * (k / day + phase)))) * step / 300.0
        series += [np.random.default_rng(seed).poisson(rate).astype(float) for seed in range(2)]
    values = np.array(series)
    bank = DetectorBank(CompositeConfig(interval_s=step, min_history=750))
    slots = bank.add_many(len(series))
    raw = np.empty_like(values)
    for j in range(k.size):
        raw[:, j] = bank.update(slots, np.full(len(series), T0 + step * j), values[:, j]).raw
    worthy = (raw[:, 3 * day :] >= 0.5).sum(axis=1)
    assert (worthy <= 5).all(), worthy


def test_a_weak_daily_pattern_is_chosen_once_not_chosen_and_dropped_by_turns() -> None:
    """A daily pattern of one to one and a half noise deviations sits where
    the daily model's residuals are about the gain (0.85) of no model's. The
    seasonality was chosen whenever they were below it and dropped whenever
    they were not: up to 18 changes in two weeks, each one a new learning
    period (three hours without alarms) and a restart of the CUSUMs. A change
    now needs the new model to explain the series clearly better than the
    current one, as the first choice does."""
    day = 288
    k = np.arange(14 * day)
    cases = [(amplitude, seed) for amplitude in (2.0, 2.5, 3.0) for seed in range(4)]
    values = np.array(
        [
            50
            + a * np.sin(2 * np.pi * k / day)
            + np.random.default_rng([31, seed]).normal(0, 2.0, k.size)
            for a, seed in cases
        ]
    )
    bank = DetectorBank(CompositeConfig())
    slots = bank.add_many(len(cases))
    # every series' k-th point in round k (points interleaved in time order)
    res = bank.update(
        np.tile(slots, k.size), np.repeat(T0 + 300.0 * k, len(cases)), values.T.ravel()
    )
    season = res.season.reshape(k.size, len(cases)).T
    learning = res.learning.reshape(k.size, len(cases)).T
    for i, case in enumerate(cases):
        changes = int((np.diff(season[i]) != 0).sum())
        assert changes <= 1, (case, changes)
        # after the first learning period: at most one re-learning (3 hours)
        assert int(learning[i, day:].sum()) <= 36 + 1, case
