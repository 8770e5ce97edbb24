//! A small but complete report shared by the rendering and browser tests.

use std::time::Duration;

use spotkit_report::{
    Chart, EventKind, EventMarker, Notice, RunReport, Series, SummaryItem, Table, Verdict,
};

/// Every chart kind, every event kind, a summary with both verdicts and a table.
pub fn sample_report() -> RunReport {
    let duration = Duration::from_secs(900);
    let events = vec![
        EventMarker::new(
            120.0,
            EventKind::Eviction {
                notice: Notice::Standard,
            },
            "vm-1 evicted",
        ),
        EventMarker::new(
            130.0,
            EventKind::Eviction {
                notice: Notice::Short,
            },
            "vm-2 evicted",
        ),
        EventMarker::new(
            135.0,
            EventKind::Eviction {
                notice: Notice::None,
            },
            "vm-3 gone",
        ),
        EventMarker::new(200.0, EventKind::Replacement, "vm-4 up in westeurope"),
        EventMarker::new(400.0, EventKind::CapacityChange, "target 6 -> 5"),
        EventMarker::new(600.0, EventKind::Note, "eastus capacity back"),
    ];
    let mut report = RunReport::new(
        "Sample run",
        "Three pools, one eviction of each kind.",
        "2026-12-02T04:00:00Z",
        duration,
    );
    report.summary = vec![
        SummaryItem::new("evictions", "3"),
        SummaryItem::judged("messages lost", "0", Verdict::Ok),
        SummaryItem::judged("time below target", "3 min 20 s", Verdict::Bad),
    ];
    report.charts = vec![
        Chart::capacity_by_pool(vec![
            Series::new(
                "eastus / D4s_v5",
                vec![(0.0, 2.0), (120.0, 1.0), (135.0, 0.0)],
            ),
            Series::new("westeurope / D4s_v5", vec![(0.0, 2.0), (200.0, 3.0)]),
            Series::new("southeastasia / D8s_v5", vec![(0.0, 2.0)]),
        ]),
        Chart::evictions_per_minute(&events, duration),
        Chart::queue_depth(vec![Series::new(
            "waiting",
            (0..=90)
                .map(|i| (f64::from(i) * 10.0, f64::from((i * 7) % 40)))
                .collect(),
        )]),
        Chart::cumulative_cost(
            vec![(0.0, 0.0), (450.0, 0.05), (900.0, 0.11)],
            vec![(0.0, 0.0), (450.0, 0.29), (900.0, 0.58)],
        ),
    ];
    report.events = events;
    report.tables = vec![Table {
        title: "Pools".into(),
        columns: vec!["pool".into(), "evictions".into()],
        rows: vec![
            vec!["eastus / D4s_v5".into(), "3".into()],
            vec!["westeurope / D4s_v5".into()],
        ],
    }];
    report
}
