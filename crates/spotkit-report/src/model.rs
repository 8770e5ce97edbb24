//! The report's data model: what a run (`spotkit demo`, later `spotkit bench pools`) fills in.
//!
//! Every time on a chart or an event is **seconds since the start of the run** (`f64`), so the
//! model needs no clock and no date library; [`RunReport::started_at`] is the one wall-clock
//! label, given as text by the caller.
//!
//! Values that are not finite (NaN, ±inf) may appear anywhere a number does: the renderer skips
//! them, and the embedded JSON carries them as `null`, which reads back as NaN.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// One run, everything the HTML report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The page's heading, e.g. `spotkit demo`.
    pub title: String,
    /// One or two sentences saying what the run did (the scenario).
    pub subtitle: String,
    /// When the run started, as the caller wants it shown (e.g. RFC 3339 UTC).
    pub started_at: String,
    /// How long the run lasted; also the x-axis extent of every chart.
    pub duration: Duration,
    /// Headline figures, shown as cards at the top.
    pub summary: Vec<SummaryItem>,
    /// Charts, in page order.
    pub charts: Vec<Chart>,
    /// What happened when: drawn on charts that have [`Chart::markers`] set, and listed in a table.
    pub events: Vec<EventMarker>,
    /// Extra tables, shown after the charts.
    pub tables: Vec<Table>,
}

impl RunReport {
    /// A report with a title and scenario and nothing else yet.
    pub fn new(
        title: impl Into<String>,
        subtitle: impl Into<String>,
        started_at: impl Into<String>,
        duration: Duration,
    ) -> Self {
        Self {
            title: title.into(),
            subtitle: subtitle.into(),
            started_at: started_at.into(),
            duration,
            summary: Vec::new(),
            charts: Vec::new(),
            events: Vec::new(),
            tables: Vec::new(),
        }
    }
}

/// A headline figure: `label: value`, optionally judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryItem {
    /// What is measured, e.g. `evictions`.
    pub label: String,
    /// The figure as shown, units included, e.g. `12 (3 without notice)`.
    pub value: String,
    /// Whether the figure meets its goal, when there is one.
    pub verdict: Option<Verdict>,
}

impl SummaryItem {
    /// A figure with no goal.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            verdict: None,
        }
    }

    /// A figure judged against its goal.
    pub fn judged(label: impl Into<String>, value: impl Into<String>, verdict: Verdict) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            verdict: Some(verdict),
        }
    }
}

/// Whether a summary figure meets its goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The goal is met.
    Ok,
    /// The goal is missed.
    Bad,
}

/// One chart: a set of series over run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Stable identifier, used as the HTML `id` (`chart-<id>`); keep it to `[a-z0-9-]`.
    pub id: String,
    /// Shown above the chart.
    pub title: String,
    /// The y-axis label, e.g. `VMs running`.
    pub y_label: String,
    /// The unit of y values, shown in tooltips, e.g. `VMs`, `USD`.
    pub unit: String,
    /// How the series are drawn.
    pub kind: ChartKind,
    /// The data; each series gets a colour and a legend entry.
    pub series: Vec<Series>,
    /// Whether the report's [`RunReport::events`] are drawn on this chart as vertical lines.
    pub markers: bool,
}

/// How a chart draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Straight lines between points (one `<polyline>` per series).
    Line,
    /// A value holds until the next point (one `<path>` per series), e.g. a queue depth.
    StepLine,
    /// Series are step functions stacked on each other at the union of their sample times (one
    /// filled `<path>` per series); the top edge is the total, e.g. capacity by pool.
    StackedArea,
    /// Each point `(t, v)` is a bin `[t, t + bin_s)` of height `v`, series stacked in each bin
    /// (one `<rect>` per non-zero bin and series), e.g. evictions per minute by kind.
    StackedBars {
        /// The width of a bin in seconds.
        bin_s: f64,
    },
}

/// One named series of `(seconds since start, value)` points, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The legend entry, e.g. `eastus / D4s_v5 / spot`.
    pub name: String,
    /// The points; non-finite coordinates are skipped when drawing.
    #[serde(deserialize_with = "points_with_nulls")]
    pub points: Vec<(f64, f64)>,
    /// An RGB colour for this series; `None` takes the next colour of the report's palette.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<[u8; 3]>,
}

impl Series {
    /// A series from its points, coloured from the palette.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            colour: None,
        }
    }

    /// The same series drawn in `rgb`.
    #[must_use]
    pub fn with_colour(mut self, rgb: [u8; 3]) -> Self {
        self.colour = Some(rgb);
        self
    }
}

/// Something that happened at one instant of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMarker {
    /// Seconds since the start of the run.
    #[serde(deserialize_with = "f64_or_null")]
    pub at: f64,
    /// What kind of thing happened (decides the marker's colour and legend).
    pub kind: EventKind,
    /// Free text, e.g. `vm-0012 eastus/D4s_v5 evicted`.
    pub label: String,
}

impl EventMarker {
    /// An event at `at` seconds since the start.
    pub fn new(at: f64, kind: EventKind, label: impl Into<String>) -> Self {
        Self {
            at,
            kind,
            label: label.into(),
        }
    }
}

/// The kinds of events a run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A spot VM was evicted, with the notice it got.
    Eviction {
        /// How much warning the eviction came with.
        notice: Notice,
    },
    /// A replacement VM was requested or came up.
    Replacement,
    /// The pool's target or actual capacity changed for another reason (scale, config).
    CapacityChange,
    /// Anything else worth a line on the chart.
    Note,
}

impl EventKind {
    /// Every kind, in legend order.
    pub const ALL: [EventKind; 6] = [
        EventKind::Eviction {
            notice: Notice::Standard,
        },
        EventKind::Eviction {
            notice: Notice::Short,
        },
        EventKind::Eviction {
            notice: Notice::None,
        },
        EventKind::Replacement,
        EventKind::CapacityChange,
        EventKind::Note,
    ];

    /// The colour of the kind's markers (and of its bars in the evictions chart): amber, orange
    /// and red for less and less notice, green for replacements.
    pub fn colour(self) -> [u8; 3] {
        match self {
            EventKind::Eviction {
                notice: Notice::Standard,
            } => [0xd9, 0x9a, 0x00],
            EventKind::Eviction {
                notice: Notice::Short,
            } => [0xe8, 0x59, 0x0c],
            EventKind::Eviction {
                notice: Notice::None,
            } => [0xc9, 0x2a, 0x2a],
            EventKind::Replacement => [0x2b, 0x8a, 0x3e],
            EventKind::CapacityChange => [0x5f, 0x6b, 0x7a],
            EventKind::Note => [0x70, 0x48, 0xe8],
        }
    }

    /// The legend text of the kind.
    pub fn describe(self) -> &'static str {
        match self {
            EventKind::Eviction {
                notice: Notice::Standard,
            } => "eviction, 30 s notice",
            EventKind::Eviction {
                notice: Notice::Short,
            } => "eviction, short notice",
            EventKind::Eviction {
                notice: Notice::None,
            } => "eviction, no notice",
            EventKind::Replacement => "replacement",
            EventKind::CapacityChange => "capacity change",
            EventKind::Note => "note",
        }
    }
}

/// How much warning an eviction came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The notice Azure promises for a `Preempt` Scheduled Event: at least 30 s.
    Standard,
    /// Less than the promised 30 s (the simulator's short-notice fault gives under 10 s).
    Short,
    /// No notice at all: the VM was gone before an event was seen.
    None,
}

impl Notice {
    /// The class of a notice of `seconds` (`None`: no event was seen before the VM went away).
    pub fn classify(seconds: Option<f64>) -> Notice {
        match seconds {
            Some(s) if s >= 30.0 => Notice::Standard,
            Some(s) if s > 0.0 => Notice::Short,
            _ => Notice::None,
        }
    }
}

/// A plain table of text cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Shown above the table.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows of cells; a row shorter than `columns` is padded with empty cells.
    pub rows: Vec<Vec<String>>,
}

/// JSON writes non-finite floats as `null`; read those back as NaN so a report round-trips.
fn points_with_nulls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
    let raw: Vec<(Option<f64>, Option<f64>)> = Vec::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(x, y)| (x.unwrap_or(f64::NAN), y.unwrap_or(f64::NAN)))
        .collect())
}

fn f64_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
