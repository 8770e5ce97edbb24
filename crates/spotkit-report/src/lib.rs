//! spotkit's run report: one self-contained HTML file with charts, for `spotkit demo` (and later
//! `spotkit bench pools`).
//!
//! A run fills in a [`RunReport`]: a title and scenario, summary figures (each optionally judged
//! [`Verdict::Ok`] or [`Verdict::Bad`]), [`Chart`]s of [`Series`] over run time, the
//! [`EventMarker`]s of what happened (evictions by [`Notice`], replacements, capacity changes) and
//! plain [`Table`]s. The constructors [`Chart::capacity_by_pool`],
//! [`Chart::evictions_per_minute`], [`Chart::queue_depth`] and [`Chart::cumulative_cost`] build
//! the four charts every run report has. [`render_html`] turns the report into a page;
//! [`write_report`] writes it as `spotkit-report.html` into a directory; [`read_report_data`] reads
//! the data back out of a page.
//!
//! ```
//! use std::time::Duration;
//! use spotkit_report::{Chart, EventKind, EventMarker, Notice, RunReport, Series, SummaryItem, Verdict};
//!
//! let duration = Duration::from_secs(600);
//! let mut report = RunReport::new("spotkit demo", "One eviction, one replacement.", "2026-12-02T04:00:00Z", duration);
//! report.events = vec![
//!     EventMarker::new(120.0, EventKind::Eviction { notice: Notice::classify(Some(30.0)) }, "vm-1 evicted"),
//!     EventMarker::new(190.0, EventKind::Replacement, "vm-2 up in westeurope"),
//! ];
//! report.summary.push(SummaryItem::judged("messages lost", "0", Verdict::Ok));
//! report.charts = vec![
//!     Chart::capacity_by_pool(vec![
//!         Series::new("eastus / D4s_v5 / spot", vec![(0.0, 2.0), (150.0, 1.0)]),
//!         Series::new("westeurope / D4s_v5 / spot", vec![(0.0, 0.0), (190.0, 1.0)]),
//!     ]),
//!     Chart::evictions_per_minute(&report.events, duration),
//!     Chart::queue_depth(vec![Series::new("waiting", vec![(0.0, 40.0), (300.0, 12.0)])]),
//!     Chart::cumulative_cost(
//!         Series::cumulative_from_hourly_rate("spot", &[(0.0, 0.08)], 600.0).points,
//!         Series::cumulative_from_hourly_rate("on-demand", &[(0.0, 0.38)], 600.0).points,
//!     ),
//! ];
//! let html = spotkit_report::render_html(&report);
//! assert_eq!(spotkit_report::read_report_data(&html).unwrap(), report);
//! // In the demo: let path = spotkit_report::write_report(&out_dir, &report)?;
//! ```
//!
//! # Guarantees
//!
//! - **Self-contained.** Inline CSS and inline SVG drawn in Rust; no JavaScript; no URL is loaded
//!   (no fonts, images, CDNs), and a `Content-Security-Policy: default-src 'none'` meta tag makes a
//!   browser refuse any load. It opens offline from a `file://` URL or an e-mail attachment.
//! - **Readable without tools.** Axes with ticks and labels, a legend per chart, tooltips through
//!   SVG `<title>`; times are `m:ss` (or `h:mm`) since the start of the run.
//! - **Safe with any text.** All text is HTML-escaped; the embedded JSON escapes `<`, `>` and `&`
//!   so data cannot close its `<script>` element.
//! - **Total.** Empty series, single points, huge values and NaN/±inf are drawn or skipped, never
//!   a panic; non-finite numbers travel in the JSON as `null` and read back as NaN.
//! - **Deterministic.** The same report renders to the same bytes (no clock, no hash order).

mod charts;
mod html;
mod model;
mod svg;

use std::path::{Path, PathBuf};

pub use charts::EVICTION_BIN_S;
pub use html::{DATA_ELEMENT_ID, render_html};
pub use model::{
    Chart, ChartKind, EventKind, EventMarker, Notice, RunReport, Series, SummaryItem, Table,
    Verdict,
};

/// The file name [`write_report`] writes.
pub const REPORT_FILE_NAME: &str = "spotkit-report.html";

/// What can go wrong writing or reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output directory does not exist and could not be created.
    #[error(
        "cannot create report directory {path}: {source}; create it yourself or pass another --out DIR"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The report file could not be written.
    #[error(
        "cannot write report {path}: {source}; check that the directory is writable and has free space, or pass another --out DIR"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The page has no `<script type="application/json" id="report-data">` block.
    #[error(
        "no embedded report data (script#{DATA_ELEMENT_ID}) in this page; is it a spotkit report written by spotkit-report?"
    )]
    NoEmbeddedData,
    /// The embedded block is not a report of this version's shape.
    #[error(
        "embedded report data (script#{DATA_ELEMENT_ID}) is not a valid report: {0}; was it written by another spotkit version?"
    )]
    BadEmbeddedData(#[source] serde_json::Error),
}

/// Write `report` as [`REPORT_FILE_NAME`] into `dir` (created if missing) and return the file's
/// path. The file is written beside its final name and renamed into place, so a reader never
/// sees half a report.
pub fn write_report(dir: &Path, report: &RunReport) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(REPORT_FILE_NAME);
    let partial = dir.join(format!(".{REPORT_FILE_NAME}.partial"));
    let write = std::fs::write(&partial, render_html(report)).and_then(|()| {
        std::fs::rename(&partial, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
    });
    write.map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Read the report's data back from a page [`render_html`] made.
pub fn read_report_data(html: &str) -> Result<RunReport, ReportError> {
    let opening = format!("<script type=\"application/json\" id=\"{DATA_ELEMENT_ID}\">");
    let start = html.find(&opening).ok_or(ReportError::NoEmbeddedData)? + opening.len();
    let length = html[start..]
        .find("</script>")
        .ok_or(ReportError::NoEmbeddedData)?;
    serde_json::from_str(&html[start..start + length]).map_err(ReportError::BadEmbeddedData)
}
