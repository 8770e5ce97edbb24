//! Charts as inline SVG: scales, ticks, the four drawing kinds and event markers.
//!
//! Everything here is a pure function of the chart, so the same report gives the same bytes.
//! Non-finite numbers are dropped before any arithmetic; scales work in halves so that a domain
//! near `f64::MAX` cannot overflow to infinity; coordinates are printed with one decimal.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::html::escape;
use crate::model::{Chart, ChartKind, EventKind, EventMarker, Series};

/// The drawing's size in SVG user units; it scales to the page width.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 72.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_TOP: f64 = 12.0;
const MARGIN_BOTTOM: f64 = 44.0;
/// Invisible hover targets per series carrying a tooltip; more would bloat long runs.
const HOVER_POINTS_MAX: usize = 60;

/// Colour-blind-friendlier categorical palette (Tableau 10 plus two), cycled by series index.
const PALETTE: [[u8; 3]; 12] = [
    [0x4e, 0x79, 0xa7],
    [0xf2, 0x8e, 0x2b],
    [0x59, 0xa1, 0x4f],
    [0xe1, 0x57, 0x59],
    [0x76, 0xb7, 0xb2],
    [0xed, 0xc9, 0x48],
    [0xb0, 0x7a, 0xa1],
    [0xff, 0x9d, 0xa7],
    [0x9c, 0x75, 0x5f],
    [0x1f, 0x3f, 0x6e],
    [0xba, 0xb0, 0xac],
    [0x2f, 0x8f, 0x5f],
];

/// The colour a series is drawn in, as `#rrggbb`.
pub(crate) fn series_colour(series: &Series, index: usize) -> String {
    hex(series.colour.unwrap_or(PALETTE[index % PALETTE.len()]))
}

pub(crate) fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The finite points of a series, in the order given.
pub(crate) fn finite_points(series: &Series) -> Vec<(f64, f64)> {
    series
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A linear map from a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    px_from: f64,
    px_to: f64,
}

impl Scale {
    fn map(&self, v: f64) -> f64 {
        // Halves keep `hi - lo` finite even for a domain spanning most of f64.
        let fraction = (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0);
        let fraction = if fraction.is_finite() {
            fraction.clamp(-0.02, 1.02)
        } else {
            0.0
        };
        self.px_from + (self.px_to - self.px_from) * fraction
    }
}

/// Ticks and the domain rounded out to them.
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    ticks: Vec<f64>,
}

/// Round `raw` up to 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised <= 1.0 {
        1.0
    } else if normalised <= 2.0 {
        2.0
    } else if normalised <= 2.5 {
        2.5
    } else if normalised <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// An axis over `[lo, hi]` with about `target` ticks at nice values.
fn value_axis(lo: f64, hi: f64, target: f64) -> Axis {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + lo.abs().max(1.0))
    };
    let fallback = || Axis {
        lo,
        hi,
        step: f64::NAN,
        ticks: vec![lo, hi],
    };
    let span = hi / 2.0 - lo / 2.0;
    let step = nice_step(span * 2.0 / target);
    if !step.is_finite() || step <= 0.0 || !span.is_finite() {
        return fallback();
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let count = last - first;
    if !(1.0..=40.0).contains(&count) || !(first * step).is_finite() || !(last * step).is_finite() {
        return fallback();
    }
    let ticks: Vec<f64> = (0..=count as u32)
        .map(|i| (first + f64::from(i)) * step)
        .collect();
    Axis {
        lo: first * step,
        hi: last * step,
        step,
        ticks,
    }
}

/// Steps a time axis may use, in seconds: readable clock intervals.
const TIME_STEPS: [f64; 18] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10800.0, 21600.0, 43200.0, 86400.0,
];

/// A time axis over `[lo, hi]` seconds; the domain stays exactly the run, ticks fall inside it.
fn time_axis(lo: f64, hi: f64) -> Axis {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 60.0) };
    let span = hi - lo;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 10.0)
        .unwrap_or_else(|| nice_step(span / 86400.0 / 8.0) * 86400.0);
    if !step.is_finite() || !span.is_finite() || span / step > 40.0 {
        return Axis {
            lo,
            hi,
            step: f64::NAN,
            ticks: vec![lo, hi],
        };
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    Axis {
        lo,
        hi,
        step,
        ticks,
    }
}

/// `m:ss` within the first hour of the axis, `h:mm` or `h:mm:ss` beyond it.
pub(crate) fn format_time(seconds: f64, with_hours: bool) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    if seconds.abs() >= 1e9 {
        return format!("{seconds:.3e} s");
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let total = seconds.abs().round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if with_hours {
        if s == 0 {
            format!("{sign}{h}:{m:02}")
        } else {
            format!("{sign}{h}:{m:02}:{s:02}")
        }
    } else {
        format!("{sign}{}:{s:02}", total / 60)
    }
}

/// A number for a label: SI suffixes from ten thousand up, scientific past 10^15; decimals
/// enough to tell `step`-spaced ticks apart (`step` NaN: three significant decimals at most).
pub(crate) fn format_number(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return "?".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().max(if step.is_finite() { step.abs() } else { 0.0 });
    if magnitude >= 1e15 {
        // `1.50e300` → `1.5e300`: short enough for the y-axis margin.
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        return format!("{mantissa}e{exponent}");
    }
    let (divisor, suffix) = match magnitude {
        m if m >= 1e12 => (1e12, "T"),
        m if m >= 1e9 => (1e9, "G"),
        m if m >= 1e6 => (1e6, "M"),
        m if m >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let scaled = v / divisor;
    let decimals = if step.is_finite() && step > 0.0 {
        let scaled_step = step / divisor;
        // The fewest decimals that show the step exactly: 0.25 needs two, 0.5 one.
        (0..6)
            .find(|&d| {
                let shifted = scaled_step * 10f64.powi(d);
                (shifted - shifted.round()).abs() < 1e-6 * shifted.max(1.0)
            })
            .unwrap_or(6) as usize
    } else {
        3
    };
    let mut text = format!("{scaled:.decimals$}");
    if !step.is_finite() && text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if text == "-0" {
        text = "0".into();
    }
    text + suffix
}

/// Above this many points a line is thinned to what its pixels can show.
const THIN_ABOVE_POINTS: usize = 2000;

/// Keep, per pixel column, the first, lowest, highest and last point (in their order), so a long
/// series draws the same envelope with a bounded number of vertices. Short series pass as given.
fn thin(points: &[(f64, f64)], sx: &Scale) -> Vec<(f64, f64)> {
    if points.len() <= THIN_ABOVE_POINTS {
        return points.to_vec();
    }
    let mut kept = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let column = sx.map(points[start].0).floor();
        let mut end = start + 1;
        while end < points.len() && sx.map(points[end].0).floor() == column {
            end += 1;
        }
        let group = &points[start..end];
        let by_value = |a: &(usize, &(f64, f64)), b: &(usize, &(f64, f64))| a.1.1.total_cmp(&b.1.1);
        let lowest = group
            .iter()
            .enumerate()
            .min_by(by_value)
            .map_or(0, |(i, _)| i);
        let highest = group
            .iter()
            .enumerate()
            .max_by(by_value)
            .map_or(0, |(i, _)| i);
        let mut indices = [0, lowest, highest, group.len() - 1];
        indices.sort_unstable();
        let mut previous = None;
        for index in indices {
            if previous != Some(index) {
                kept.push(group[index]);
                previous = Some(index);
            }
        }
        start = end;
    }
    kept
}

/// Values stacked per x of a common grid: `bottoms[s][i]`, `tops[s][i]` for series `s`.
struct Stack {
    xs: Vec<f64>,
    bottoms: Vec<Vec<f64>>,
    tops: Vec<Vec<f64>>,
}

/// Total order over finite floats, for the union of sample times.
fn sorted_unique(mut xs: Vec<f64>) -> Vec<f64> {
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Stack step functions: each series holds its last value (0 before its first point).
fn stack_steps(series: &[Vec<(f64, f64)>]) -> Stack {
    let xs = sorted_unique(series.iter().flatten().map(|&(x, _)| x).collect());
    let mut running = vec![0.0; xs.len()];
    let mut bottoms = Vec::new();
    let mut tops = Vec::new();
    for points in series {
        let mut sorted = points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut next = 0;
        let mut held = 0.0;
        let bottom = running.clone();
        for (i, &x) in xs.iter().enumerate() {
            while next < sorted.len() && sorted[next].0 <= x {
                held = sorted[next].1;
                next += 1;
            }
            let top = running[i] + held;
            running[i] = if top.is_finite() { top } else { running[i] };
        }
        bottoms.push(bottom);
        tops.push(running.clone());
    }
    Stack { xs, bottoms, tops }
}

/// Stack bins: each point `(start, v)` is a bin; equal starts add up across series.
fn stack_bins(series: &[Vec<(f64, f64)>]) -> Stack {
    let xs = sorted_unique(series.iter().flatten().map(|&(x, _)| x).collect());
    let mut running = vec![0.0; xs.len()];
    let mut bottoms = Vec::new();
    let mut tops = Vec::new();
    for points in series {
        let bottom = running.clone();
        for &(x, v) in points {
            if let Ok(i) = xs.binary_search_by(|probe| probe.total_cmp(&x)) {
                let top = running[i] + v.max(0.0);
                if top.is_finite() {
                    running[i] = top;
                }
            }
        }
        bottoms.push(bottom);
        tops.push(running.clone());
    }
    Stack { xs, bottoms, tops }
}

/// Render one chart as an `<svg>` element. `events` are drawn when the chart asks for markers.
pub(crate) fn render_chart(
    out: &mut String,
    chart: &Chart,
    events: &[EventMarker],
    run_end_s: f64,
) {
    let series: Vec<Vec<(f64, f64)>> = chart.series.iter().map(finite_points).collect();
    let stack = match chart.kind {
        ChartKind::StackedArea => Some(stack_steps(&series)),
        ChartKind::StackedBars { .. } => Some(stack_bins(&series)),
        ChartKind::Line | ChartKind::StepLine => None,
    };
    let bin_s = match chart.kind {
        ChartKind::StackedBars { bin_s } if bin_s.is_finite() && bin_s > 0.0 => bin_s,
        ChartKind::StackedBars { .. } => 1.0,
        _ => 0.0,
    };
    let markers: Vec<&EventMarker> = if chart.markers {
        events.iter().filter(|e| e.at.is_finite()).collect()
    } else {
        vec![]
    };

    // x: the run, widened to any data outside it.
    let xs = series.iter().flatten().map(|&(x, _)| x);
    let x_data_hi = xs
        .clone()
        .map(|x| x + bin_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let x_data_lo = xs.fold(f64::INFINITY, f64::min);
    let run_end = if run_end_s.is_finite() && run_end_s > 0.0 {
        run_end_s
    } else {
        0.0
    };
    let x_lo = x_data_lo.min(0.0);
    let x_hi = x_data_hi.max(run_end);
    let x_axis = if x_hi.is_finite() && x_hi > x_lo {
        time_axis(x_lo, x_hi)
    } else {
        time_axis(0.0, 60.0)
    };
    let with_hours = x_axis.hi - x_axis.lo >= 3600.0;

    // y: zero and every value drawn (stack totals for stacked kinds).
    let ys: Vec<f64> = match &stack {
        Some(stack) => stack
            .tops
            .iter()
            .chain(&stack.bottoms)
            .flatten()
            .copied()
            .collect(),
        None => series.iter().flatten().map(|&(_, y)| y).collect(),
    };
    let y_lo = ys.iter().copied().fold(0.0, f64::min);
    let y_hi = ys.iter().copied().fold(0.0, f64::max);
    let y_axis = value_axis(y_lo, y_hi, 5.0);

    let plot_right = WIDTH - MARGIN_RIGHT;
    let plot_bottom = HEIGHT - MARGIN_BOTTOM;
    let sx = Scale {
        lo: x_axis.lo,
        hi: x_axis.hi,
        px_from: MARGIN_LEFT,
        px_to: plot_right,
    };
    let sy = Scale {
        lo: y_axis.lo,
        hi: y_axis.hi,
        px_from: plot_bottom,
        px_to: MARGIN_TOP,
    };
    let unit = escape(&chart.unit);

    let _ = write!(
        out,
        "<svg class=\"chart-svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{title}\">\n<title>{title}</title>\n",
        title = escape(&chart.title)
    );

    // Grid and y ticks.
    out.push_str("<g class=\"axis y-axis\">\n");
    for &tick in &y_axis.ticks {
        let y = sy.map(tick);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{MARGIN_LEFT:.1}\" y1=\"{y:.1}\" x2=\"{plot_right:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&format_number(tick, y_axis.step))
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\">{}</text>\n</g>",
        (MARGIN_TOP + plot_bottom) / 2.0,
        escape(&chart.y_label)
    );

    // x ticks.
    out.push_str("<g class=\"axis x-axis\">\n");
    let _ = writeln!(
        out,
        "<line class=\"axis-line\" x1=\"{MARGIN_LEFT:.1}\" y1=\"{plot_bottom:.1}\" \
         x2=\"{plot_right:.1}\" y2=\"{plot_bottom:.1}\"/>"
    );
    for &tick in &x_axis.ticks {
        let x = sx.map(tick);
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{plot_bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 5.0,
            plot_bottom + 18.0,
            format_time(tick, with_hours)
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since start ({})</text>\n</g>",
        (MARGIN_LEFT + plot_right) / 2.0,
        HEIGHT - 6.0,
        if with_hours { "h:mm" } else { "m:ss" }
    );

    out.push_str("<g class=\"data\">\n");
    let hover = |out: &mut String, name: &str, points: &[(f64, f64)], colour: &str| {
        let stride = points.len().div_ceil(HOVER_POINTS_MAX).max(1);
        for &(x, y) in points.iter().step_by(stride) {
            let _ = writeln!(
                out,
                "<circle class=\"hover\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{colour}\"><title>{} · {} · {} {unit}</title></circle>",
                sx.map(x),
                sy.map(y),
                escape(name),
                format_time(x, with_hours),
                format_number(y, f64::NAN)
            );
        }
    };
    for (index, (meta, points)) in chart.series.iter().zip(&series).enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = series_colour(meta, index);
        let name = escape(&meta.name);
        let last = points.last().map_or(f64::NAN, |p| p.1);
        match (&chart.kind, &stack) {
            (ChartKind::Line, _) => {
                let points = &thin(points, &sx);
                let coords: Vec<String> = points
                    .iter()
                    .map(|&(x, y)| format!("{:.1},{:.1}", sx.map(x), sy.map(y)))
                    .collect();
                let _ = writeln!(
                    out,
                    "<polyline class=\"series\" points=\"{}\" stroke=\"{colour}\"><title>{name}: last {} {unit}</title></polyline>",
                    coords.join(" "),
                    format_number(last, f64::NAN)
                );
                if points.len() == 1 {
                    let _ = writeln!(
                        out,
                        "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"/>",
                        sx.map(points[0].0),
                        sy.map(points[0].1)
                    );
                }
                hover(out, &meta.name, points, &colour);
            }
            (ChartKind::StepLine, _) => {
                let mut d = String::new();
                let mut sorted = points.clone();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                let sorted = thin(&sorted, &sx);
                for (i, &(x, y)) in sorted.iter().enumerate() {
                    let (px, py) = (sx.map(x), sy.map(y));
                    if i == 0 {
                        let _ = write!(d, "M{px:.1} {py:.1}");
                    } else {
                        let _ = write!(d, " H{px:.1} V{py:.1}");
                    }
                }
                // A value holds until the next sample: the last one holds to the end of the run.
                let end = sorted.last().map_or(0.0, |p| p.0).max(run_end);
                let _ = write!(d, " H{:.1}", sx.map(end));
                if sorted.len() == 1 {
                    let _ = writeln!(
                        out,
                        "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"/>",
                        sx.map(sorted[0].0),
                        sy.map(sorted[0].1)
                    );
                }
                let _ = writeln!(
                    out,
                    "<path class=\"series\" d=\"{d}\" stroke=\"{colour}\"><title>{name}: last {} {unit}</title></path>",
                    format_number(last, f64::NAN)
                );
                hover(out, &meta.name, &sorted, &colour);
            }
            (ChartKind::StackedArea, Some(stack)) => {
                let end = stack.xs.last().copied().unwrap_or(0.0).max(run_end);
                let (bottom, top) = (&stack.bottoms[index], &stack.tops[index]);
                let edge = |values: &[f64]| -> Vec<(f64, f64)> {
                    let mut vertices = Vec::with_capacity(values.len() * 2);
                    for (i, (&x, &v)) in stack.xs.iter().zip(values).enumerate() {
                        vertices.push((x, v));
                        let next_x = stack.xs.get(i + 1).copied().unwrap_or(end);
                        vertices.push((next_x, v));
                    }
                    vertices
                };
                let mut outline = edge(top);
                outline.extend(edge(bottom).into_iter().rev());
                let mut d = String::new();
                for (i, &(x, v)) in outline.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{:.1} {:.1}",
                        if i == 0 { "M" } else { " L" },
                        sx.map(x),
                        sy.map(v)
                    );
                }
                d.push_str(" Z");
                let _ = writeln!(
                    out,
                    "<path class=\"band\" d=\"{d}\" fill=\"{colour}\"><title>{name}: last {} {unit}, peak {} {unit}</title></path>",
                    format_number(last, f64::NAN),
                    format_number(
                        points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
                        f64::NAN
                    )
                );
            }
            (ChartKind::StackedBars { .. }, Some(stack)) => {
                for &(x, v) in points {
                    if v <= 0.0 {
                        continue;
                    }
                    let Ok(i) = stack.xs.binary_search_by(|probe| probe.total_cmp(&x)) else {
                        continue;
                    };
                    let (x0, x1) = (sx.map(x), sx.map(x + bin_s));
                    let (y0, y1) = (
                        sy.map(stack.tops[index][i]),
                        sy.map(stack.bottoms[index][i]),
                    );
                    let width = (x1 - x0 - 1.0).max(1.0);
                    let _ = writeln!(
                        out,
                        "<rect class=\"bar\" x=\"{:.1}\" y=\"{y0:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                         <title>{name} · {}–{} · {} {unit}</title></rect>",
                        x0 + 0.5,
                        (y1 - y0).max(0.5),
                        format_time(x, with_hours),
                        format_time(x + bin_s, with_hours),
                        format_number(v, f64::NAN)
                    );
                }
            }
            (ChartKind::StackedArea | ChartKind::StackedBars { .. }, None) => {}
        }
    }
    out.push_str("</g>\n");

    // Event markers go over the data (thin, half transparent) so a stacked area cannot hide them.
    if !markers.is_empty() {
        out.push_str("<g class=\"markers\">\n");
        for event in &markers {
            if event.at < x_axis.lo || event.at > x_axis.hi {
                continue;
            }
            let x = sx.map(event.at);
            let dash = match event.kind {
                EventKind::Eviction { .. } => "",
                _ => " stroke-dasharray=\"4 3\"",
            };
            let _ = writeln!(
                out,
                "<line class=\"marker\" x1=\"{x:.1}\" y1=\"{MARGIN_TOP:.1}\" x2=\"{x:.1}\" y2=\"{plot_bottom:.1}\" \
                 stroke=\"{}\"{dash}><title>{} {}: {}</title></line>",
                hex(event.kind.colour()),
                format_time(event.at, with_hours),
                event.kind.describe(),
                escape(&event.label)
            );
        }
        out.push_str("</g>\n");
    }

    if series.iter().all(Vec::is_empty) {
        let _ = writeln!(
            out,
            "<text class=\"no-data\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            (MARGIN_LEFT + plot_right) / 2.0,
            (MARGIN_TOP + plot_bottom) / 2.0
        );
    }
    out.push_str("</svg>\n");
}

/// The event kinds drawn on a chart, in legend order.
pub(crate) fn marker_kinds(chart: &Chart, events: &[EventMarker]) -> Vec<EventKind> {
    if !chart.markers {
        return Vec::new();
    }
    let present: BTreeSet<EventKind> = events
        .iter()
        .filter(|e| e.at.is_finite())
        .map(|e| e.kind)
        .collect();
    EventKind::ALL
        .into_iter()
        .filter(|kind| present.contains(kind))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axis_rounds_out_to_nice_ticks() {
        let axis = value_axis(0.0, 37.0, 5.0);
        assert_eq!(axis.ticks, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!((axis.lo, axis.hi), (0.0, 40.0));
    }

    #[test]
    fn value_axis_survives_a_domain_near_f64_max() {
        let axis = value_axis(-f64::MAX, f64::MAX, 5.0);
        assert!(axis.ticks.iter().all(|t| t.is_finite()));
        let scale = Scale {
            lo: axis.lo,
            hi: axis.hi,
            px_from: 0.0,
            px_to: 100.0,
        };
        assert!((scale.map(0.0) - 50.0).abs() < 1.0);
    }

    #[test]
    fn time_axis_uses_clock_steps() {
        let axis = time_axis(0.0, 1800.0);
        assert_eq!(axis.step, 300.0);
        assert_eq!(axis.ticks.len(), 7);
        assert_eq!(format_time(90.0, false), "1:30");
        assert_eq!(format_time(5400.0, true), "1:30");
        assert_eq!(format_time(5405.0, true), "1:30:05");
    }

    #[test]
    fn numbers_get_si_suffixes_and_enough_decimals() {
        assert_eq!(format_number(20_000.0, 10_000.0), "20k");
        assert_eq!(format_number(2.5e9, 5e8), "2.5G");
        assert_eq!(format_number(0.25, 0.25), "0.25");
        assert_eq!(format_number(3.0, 1.0), "3");
        assert_eq!(format_number(1.5e300, f64::NAN), "1.5e300");
        assert_eq!(format_number(1e301, 2e300), "1e301");
        assert_eq!(format_number(0.0, 2e300), "0");
        assert_eq!(format_number(0.0, 2e9), "0");
        assert_eq!(format_number(12.3400, f64::NAN), "12.34");
    }

    #[test]
    fn long_series_are_thinned_to_their_envelope_per_pixel() {
        let sx = Scale {
            lo: 0.0,
            hi: 100.0,
            px_from: 0.0,
            px_to: 100.0,
        };
        // 100 columns of 50 points each; column k peaks at k + 1000 and dips to -k.
        let points: Vec<(f64, f64)> = (0..5000)
            .map(|i| {
                let x = f64::from(i) / 50.0;
                let y = match i % 50 {
                    10 => 1000.0 + x.floor(),
                    20 => -x.floor(),
                    _ => 1.0,
                };
                (x, y)
            })
            .collect();
        let thinned = thin(&points, &sx);
        assert_eq!(thinned.len(), 400, "first, low, high, last per column");
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        for k in 0..100 {
            assert!(thinned.contains(&(f64::from(k) + 0.2, 1000.0 + f64::from(k))));
            assert!(thinned.contains(&(f64::from(k) + 0.4, -f64::from(k))));
        }
        let short = &points[..THIN_ABOVE_POINTS];
        assert_eq!(thin(short, &sx), short.to_vec());
    }

    #[test]
    fn stacked_steps_hold_values_until_the_next_sample() {
        let stack = stack_steps(&[vec![(0.0, 2.0), (10.0, 1.0)], vec![(5.0, 3.0)]]);
        assert_eq!(stack.xs, vec![0.0, 5.0, 10.0]);
        assert_eq!(stack.tops[0], vec![2.0, 2.0, 1.0]);
        assert_eq!(stack.bottoms[1], vec![2.0, 2.0, 1.0]);
        assert_eq!(stack.tops[1], vec![2.0, 5.0, 4.0]);
    }
}
