//! The page around the charts: header, summary cards, legends, tables, and the embedded data.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use crate::model::{Chart, RunReport, Verdict};
use crate::svg;

/// The `id` of the `<script type="application/json">` block that carries the report's data.
pub const DATA_ELEMENT_ID: &str = "report-data";

/// Rows of the events table shown on the page; all events stay in the embedded data.
const EVENT_ROWS_MAX: usize = 500;
/// Above this many events the table starts folded.
const EVENT_ROWS_OPEN_MAX: usize = 30;

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px 20px 40px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
.subtitle { margin: 0 0 4px; }
.meta { margin: 0; color: var(--muted); font-size: 13px; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; margin-top: 18px; }
.card { border: 1px solid var(--line); border-left-width: 5px; border-radius: 6px; padding: 8px 12px; background: var(--panel); }
.card.ok { border-left-color: #2b8a3e; }
.card.bad { border-left-color: #c92a2a; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 20px; font-weight: 600; }
.card .verdict { font-size: 12px; font-weight: 600; }
.card.ok .verdict { color: #2b8a3e; }
.card.bad .verdict { color: #c92a2a; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 4px 12px 10px; margin-top: 18px; }
.chart h2 { margin: 8px 0 2px; }
.chart-svg { width: 100%; height: auto; display: block; }
.chart-svg text { font-size: 12px; fill: var(--muted); }
.chart-svg .axis-label { font-size: 12px; fill: var(--fg); }
.chart-svg .grid { stroke: #eaeef2; stroke-width: 1; }
.chart-svg .axis-line, .chart-svg .tick { stroke: #8c959f; stroke-width: 1; }
.chart-svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; }
.chart-svg .band { stroke: #ffffff; stroke-width: 0.6; fill-opacity: 0.9; }
.chart-svg .marker { stroke-width: 1.5; stroke-opacity: 0.75; }
.chart-svg .hover { fill-opacity: 0; }
.chart-svg .hover:hover { fill-opacity: 0.9; }
.chart-svg .no-data { font-size: 16px; }
.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px; }
.swatch.line { height: 0; border-top: 2px solid; border-radius: 0; }
.swatch.marker { width: 0; height: 14px; border-left: 2px solid; border-radius: 0; }
.legend .empty { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 6px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td.time { font-variant-numeric: tabular-nums; white-space: nowrap; }
details summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"#;

/// Escape text for HTML text and attribute values alike.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// JSON that cannot end the `<script>` element holding it nor open a comment in it: `<`, `>`
/// and `&` become `\u003c`, `\u003e`, `\u0026`, which read back as the same characters.
pub(crate) fn script_safe_json(report: &RunReport) -> String {
    let json = serde_json::to_string(report)
        .unwrap_or_else(|_| unreachable!("the report model has only string keys and plain data"));
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            // Line and paragraph separators end lines in older JavaScript parsers.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

/// `12 min 5 s`, `1 h 05 min`.
fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{:.1} s", duration.as_secs_f64()),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m:02} min"),
    }
}

/// An HTML id from a chart id: `[a-z0-9-]`, never empty, never repeated on the page.
fn chart_anchor(chart: &Chart, index: usize, used: &mut BTreeSet<String>) -> String {
    let cleaned: String = chart
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let base = if cleaned.trim_matches('-').is_empty() {
        format!("chart-{}", index + 1)
    } else {
        format!("chart-{cleaned}")
    };
    let mut anchor = base.clone();
    let mut n = 2;
    while !used.insert(anchor.clone()) {
        anchor = format!("{base}-{n}");
        n += 1;
    }
    anchor
}

/// Render the report as one self-contained HTML5 document: inline CSS and SVG, no scripts to
/// run, nothing loaded from anywhere (a Content-Security-Policy of `default-src 'none'` makes a
/// browser refuse any load), and the report's data embedded as JSON in
/// `<script type="application/json" id="report-data">`. Same report, same bytes.
pub fn render_html(report: &RunReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let run_end_s = report.duration.as_secs_f64();
    let title = escape(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"generator\" content=\"spotkit-report {}\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = write!(
        out,
        "<header>\n<h1>{title}</h1>\n<p class=\"subtitle\">{}</p>\n\
         <p class=\"meta\">Started {} · duration {}</p>\n</header>\n",
        escape(&report.subtitle),
        escape(&report.started_at),
        format_duration(report.duration)
    );

    if !report.summary.is_empty() {
        out.push_str("<section class=\"summary\" id=\"summary\">\n");
        for item in &report.summary {
            let (class, verdict) = match item.verdict {
                Some(Verdict::Ok) => (" ok", "<div class=\"verdict\">✓ on target</div>"),
                Some(Verdict::Bad) => (" bad", "<div class=\"verdict\">✗ off target</div>"),
                None => ("", ""),
            };
            let _ = writeln!(
                out,
                "<div class=\"card{class}\"><div class=\"label\">{}</div><div class=\"value\">{}</div>{verdict}</div>",
                escape(&item.label),
                escape(&item.value)
            );
        }
        out.push_str("</section>\n");
    }

    let mut anchors = BTreeSet::new();
    for (index, chart) in report.charts.iter().enumerate() {
        let anchor = chart_anchor(chart, index, &mut anchors);
        let _ = writeln!(
            out,
            "<section class=\"chart\" id=\"{anchor}\">\n<h2>{}</h2>",
            escape(&chart.title)
        );
        svg::render_chart(&mut out, chart, &report.events, run_end_s);
        out.push_str("<ul class=\"legend\">\n");
        let swatch = match chart.kind {
            crate::model::ChartKind::Line | crate::model::ChartKind::StepLine => "swatch line",
            _ => "swatch",
        };
        for (i, series) in chart.series.iter().enumerate() {
            let colour = svg::series_colour(series, i);
            let style = if swatch == "swatch" {
                "background"
            } else {
                "border-color"
            };
            let empty = if svg::finite_points(series).is_empty() {
                " <span class=\"empty\">(no data)</span>"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<li class=\"legend-series\"><span class=\"{swatch}\" style=\"{style}:{colour}\"></span>{}{empty}</li>",
                escape(&series.name)
            );
        }
        // A kind already in the legend as a series (the evictions chart's bars) needs no second entry.
        let kinds = svg::marker_kinds(chart, &report.events);
        for kind in kinds
            .into_iter()
            .filter(|k| chart.series.iter().all(|s| s.name != k.describe()))
        {
            let _ = writeln!(
                out,
                "<li class=\"legend-marker\"><span class=\"swatch marker\" style=\"border-color:{}\"></span>{}</li>",
                svg::hex(kind.colour()),
                kind.describe()
            );
        }
        out.push_str("</ul>\n</section>\n");
    }

    if !report.events.is_empty() {
        let with_hours = run_end_s >= 3600.0;
        let open = if report.events.len() <= EVENT_ROWS_OPEN_MAX {
            " open"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<section class=\"events\" id=\"events\">\n<h2>Events</h2>\n<details{open}>\
             <summary>{} events</summary>\n<table>\n<thead><tr><th>time</th><th>kind</th><th>what</th></tr></thead>\n<tbody>",
            report.events.len()
        );
        for event in report.events.iter().take(EVENT_ROWS_MAX) {
            let _ = writeln!(
                out,
                "<tr><td class=\"time\">{}</td><td>{}</td><td>{}</td></tr>",
                svg::format_time(event.at, with_hours),
                event.kind.describe(),
                escape(&event.label)
            );
        }
        out.push_str("</tbody>\n</table>\n");
        if report.events.len() > EVENT_ROWS_MAX {
            let _ = writeln!(
                out,
                "<p class=\"meta\">{} more events are in the embedded data (#{DATA_ELEMENT_ID}).</p>",
                report.events.len() - EVENT_ROWS_MAX
            );
        }
        out.push_str("</details>\n</section>\n");
    }

    for table in &report.tables {
        let _ = writeln!(
            out,
            "<section class=\"table\">\n<h2>{}</h2>\n<table>\n<thead><tr>",
            escape(&table.title)
        );
        for column in &table.columns {
            let _ = write!(out, "<th>{}</th>", escape(column));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let width = table
            .columns
            .len()
            .max(table.rows.iter().map(Vec::len).max().unwrap_or(0));
        for row in &table.rows {
            out.push_str("<tr>");
            for i in 0..width {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    escape(row.get(i).map_or("", String::as_str))
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    let _ = write!(
        out,
        "<footer>Generated by spotkit-report {}. This file is self-contained: it loads no scripts, \
         fonts or images, and carries its data as JSON in #{DATA_ELEMENT_ID}.</footer>\n\
         <script type=\"application/json\" id=\"{DATA_ELEMENT_ID}\">{}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        script_safe_json(report)
    );
    out
}
