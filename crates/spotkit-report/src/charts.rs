//! Ready-made charts for the four views every spotkit run report has, so a run only supplies
//! its data: capacity by pool, evictions, queue depth and cumulative cost.

use std::time::Duration;

use crate::model::{Chart, ChartKind, EventKind, EventMarker, Notice, Series};

/// The width of a bin of [`Chart::evictions_per_minute`].
pub const EVICTION_BIN_S: f64 = 60.0;

impl Chart {
    /// Running VMs over time, one stacked band per pool or offering (name each series after it,
    /// e.g. `eastus / D4s_v5 / spot`); the top edge is the fleet's total. Event markers on.
    pub fn capacity_by_pool(series: Vec<Series>) -> Chart {
        Chart {
            id: "capacity".into(),
            title: "Capacity over time by pool".into(),
            y_label: "VMs running".into(),
            unit: "VMs".into(),
            kind: ChartKind::StackedArea,
            series,
            markers: true,
        }
    }

    /// Evictions counted per minute, stacked by the notice they came with (one series per
    /// [`Notice`], always all three so the legend is stable). Other events are ignored; events
    /// with a non-finite or negative time are skipped. Event markers on.
    pub fn evictions_per_minute(events: &[EventMarker], duration: Duration) -> Chart {
        // Bins are [k·60, (k+1)·60); a 600 s run has bins 0..=9.
        let last_bin = ((duration.as_secs_f64() / EVICTION_BIN_S).ceil() - 1.0).max(0.0);
        let series = [Notice::Standard, Notice::Short, Notice::None]
            .into_iter()
            .map(|notice| {
                let mut counts = std::collections::BTreeMap::<u64, f64>::new();
                for event in events {
                    if event.kind != (EventKind::Eviction { notice })
                        || !event.at.is_finite()
                        || event.at < 0.0
                    {
                        continue;
                    }
                    // An eviction at the very end still lands in the last bin shown.
                    let bin = (event.at / EVICTION_BIN_S).floor().min(last_bin);
                    *counts.entry(bin as u64).or_default() += 1.0;
                }
                let points = counts
                    .into_iter()
                    .map(|(bin, n)| (bin as f64 * EVICTION_BIN_S, n))
                    .collect();
                let kind = EventKind::Eviction { notice };
                Series::new(kind.describe(), points).with_colour(kind.colour())
            })
            .collect();
        Chart {
            id: "evictions".into(),
            title: "Evictions per minute by notice".into(),
            y_label: "evictions per minute".into(),
            unit: "evictions".into(),
            kind: ChartKind::StackedBars {
                bin_s: EVICTION_BIN_S,
            },
            series,
            markers: true,
        }
    }

    /// Messages waiting in the work queue over time (a step line per series, e.g. `visible` and
    /// `in flight`). Event markers on.
    pub fn queue_depth(series: Vec<Series>) -> Chart {
        Chart {
            id: "queue-depth".into(),
            title: "Queue depth".into(),
            y_label: "messages".into(),
            unit: "messages".into(),
            kind: ChartKind::StepLine,
            series,
            markers: true,
        }
    }

    /// Money spent so far: what spotkit's fleet cost against what the same capacity would have
    /// cost all on-demand. Both inputs are cumulative USD; see
    /// [`Series::cumulative_from_hourly_rate`] to build them from prices.
    pub fn cumulative_cost(spotkit_usd: Vec<(f64, f64)>, on_demand_usd: Vec<(f64, f64)>) -> Chart {
        Chart {
            id: "cost".into(),
            title: "Cumulative cost".into(),
            y_label: "USD spent".into(),
            unit: "USD".into(),
            kind: ChartKind::Line,
            series: vec![
                Series::new("spotkit (spot fleet)", spotkit_usd),
                Series::new("all on-demand", on_demand_usd),
            ],
            markers: false,
        }
    }
}

impl Series {
    /// Cumulative cost from a fleet's hourly rate: each `(t, usd_per_hour)` sample holds until the
    /// next one (or `end_s`), so the result has a point at 0, at every sample time and at `end_s`.
    /// Samples with a non-finite time or rate are skipped; samples must be in time order.
    pub fn cumulative_from_hourly_rate(
        name: impl Into<String>,
        rates: &[(f64, f64)],
        end_s: f64,
    ) -> Series {
        let mut points = vec![(0.0, 0.0)];
        let mut spent = 0.0;
        let mut current: Option<(f64, f64)> = None;
        let finite = rates
            .iter()
            .copied()
            .filter(|(t, r)| t.is_finite() && r.is_finite());
        for (t, rate) in finite.chain(end_s.is_finite().then_some((end_s, 0.0))) {
            if let Some((since, held)) = current {
                if t < since {
                    continue;
                }
                spent += held * (t - since) / 3600.0;
            }
            if points.last().is_some_and(|&(last_t, _)| last_t == t) {
                points.pop();
            }
            points.push((t, spent));
            current = Some((t, rate));
        }
        Series::new(name, points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evictions_are_counted_per_minute_by_notice() {
        let ev = |at, notice| EventMarker::new(at, EventKind::Eviction { notice }, "x");
        let events = vec![
            ev(5.0, Notice::Standard),
            ev(59.9, Notice::Standard),
            ev(61.0, Notice::Standard),
            ev(70.0, Notice::None),
            ev(f64::NAN, Notice::None),
            ev(600.0, Notice::Short),
            EventMarker::new(10.0, EventKind::Replacement, "r"),
        ];
        let chart = Chart::evictions_per_minute(&events, Duration::from_secs(600));
        let names: Vec<_> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "eviction, 30 s notice",
                "eviction, short notice",
                "eviction, no notice"
            ]
        );
        assert_eq!(chart.series[0].points, vec![(0.0, 2.0), (60.0, 1.0)]);
        // At exactly the end of the run: counted in the last minute, not a bin past the axis.
        assert_eq!(chart.series[1].points, vec![(540.0, 1.0)]);
        assert_eq!(chart.series[2].points, vec![(60.0, 1.0)]);
    }

    #[test]
    fn cumulative_cost_integrates_a_held_hourly_rate() {
        let s = Series::cumulative_from_hourly_rate(
            "c",
            &[(0.0, 3.6), (1800.0, f64::NAN), (1800.0, 7.2)],
            3600.0,
        );
        // 3.6 USD/h for half an hour, then 7.2 USD/h for half an hour.
        assert_eq!(s.points, vec![(0.0, 0.0), (1800.0, 1.8), (3600.0, 5.4)]);
    }
}
