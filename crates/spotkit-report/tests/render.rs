//! The rendered page: structure, escaping, no network, determinism, the embedded data, and
//! numbers that are empty, single, huge or not finite.

mod common;

use std::time::Duration;

use common::sample_report;
use spotkit_report::{
    Chart, ChartKind, EventKind, EventMarker, Notice, REPORT_FILE_NAME, ReportError, RunReport,
    Series, read_report_data, render_html, write_report,
};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The `<section>` of one chart.
fn chart_section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section class=\"chart\" id=\"chart-{id}\">"))
        .unwrap_or_else(|| panic!("no section for chart {id}"));
    let length = html[start..].find("</section>").expect("section is closed");
    &html[start..start + length]
}

/// The page without the embedded JSON, i.e. everything a browser draws.
fn drawn_part(html: &str) -> &str {
    &html[..html
        .find("<script type=\"application/json\"")
        .expect("data block present")]
}

/// Every number in a coordinate attribute parses and is finite.
fn assert_coordinates_finite(html: &str) {
    let drawn = drawn_part(html);
    for attribute in [
        " x=\"",
        " y=\"",
        " x1=\"",
        " y1=\"",
        " x2=\"",
        " y2=\"",
        " cx=\"",
        " cy=\"",
        " width=\"",
        " height=\"",
    ] {
        for (at, _) in drawn.match_indices(attribute) {
            let value = &drawn[at + attribute.len()..];
            let value = &value[..value.find('"').unwrap()];
            let number: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{attribute}{value}"));
            assert!(number.is_finite(), "{attribute}{value}");
        }
    }
    for attribute in [" points=\"", " d=\""] {
        for (at, _) in drawn.match_indices(attribute) {
            let value = &drawn[at + attribute.len()..];
            let value = &value[..value.find('"').unwrap()];
            for token in value.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')) {
                if !token.is_empty() {
                    let number: f64 = token.parse().unwrap_or_else(|_| panic!("{value}"));
                    assert!(number.is_finite(), "{value}");
                }
            }
        }
    }
}

#[test]
fn every_chart_is_present_with_its_title_legend_and_one_shape_per_series() {
    let report = sample_report();
    let html = render_html(&report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(count(&html, "<svg class=\"chart-svg\""), 4);

    let capacity = chart_section(&html, "capacity");
    assert!(capacity.contains("<h2>Capacity over time by pool</h2>"));
    assert_eq!(count(capacity, "<path class=\"band\""), 3);
    assert_eq!(count(capacity, "<li class=\"legend-series\">"), 3);
    for name in [
        "eastus / D4s_v5",
        "westeurope / D4s_v5",
        "southeastasia / D8s_v5",
    ] {
        assert!(
            capacity.contains(&format!("</span>{name}</li>")),
            "legend entry {name}"
        );
    }
    // All six event kinds are marked and explained in the legend.
    assert_eq!(count(capacity, "<line class=\"marker\""), 6);
    assert_eq!(count(capacity, "<li class=\"legend-marker\">"), 6);

    let evictions = chart_section(&html, "evictions");
    assert!(evictions.contains("<h2>Evictions per minute by notice</h2>"));
    // One eviction of each notice, at 2:00, 2:10 and 2:15: one bar each, stacked in minute 2.
    assert_eq!(count(evictions, "<rect class=\"bar\""), 3);
    assert_eq!(count(evictions, "<li class=\"legend-series\">"), 3);
    // The eviction kinds are already series there; only the other three get marker entries.
    assert_eq!(count(evictions, "<li class=\"legend-marker\">"), 3);

    let queue = chart_section(&html, "queue-depth");
    assert!(queue.contains("<h2>Queue depth</h2>"));
    assert_eq!(count(queue, "<path class=\"series\""), 1);

    let cost = chart_section(&html, "cost");
    assert!(cost.contains("<h2>Cumulative cost</h2>"));
    assert_eq!(count(cost, "<polyline class=\"series\""), 2);
    assert!(cost.contains("</span>spotkit (spot fleet)</li>"));
    assert!(cost.contains("</span>all on-demand</li>"));
    assert_eq!(
        count(cost, "<line class=\"marker\""),
        0,
        "the cost chart has markers off"
    );

    // Axes: labelled ticks on both axes of every chart.
    assert_eq!(count(&html, "time since start (m:ss)"), 4);
    assert!(capacity.contains(">0:00</text>") && capacity.contains(">14:00</text>"));
    assert!(capacity.contains(">VMs running</text>"));

    // Summary cards with verdicts, events table, extra table padded to its columns.
    assert_eq!(count(&html, "<div class=\"card"), 3);
    assert_eq!(count(&html, "<div class=\"card ok\">"), 1);
    assert_eq!(count(&html, "<div class=\"card bad\">"), 1);
    assert!(html.contains("<summary>6 events</summary>"));
    assert!(html.contains("<tr><td>westeurope / D4s_v5</td><td></td></tr>"));
}

#[test]
fn text_is_escaped_everywhere_and_data_cannot_close_its_script() {
    let evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    let mut report = sample_report();
    report.title = evil.into();
    report.subtitle = evil.into();
    report.started_at = evil.into();
    report.summary[0].label = evil.into();
    report.summary[0].value = evil.into();
    report.charts[0].title = evil.into();
    report.charts[0].y_label = evil.into();
    report.charts[0].unit = evil.into();
    report.charts[0].id = evil.into();
    report.charts[0].series[0].name = evil.into();
    report.events[0].label = evil.into();
    report.tables[0].title = evil.into();
    report.tables[0].columns[0] = evil.into();
    report.tables[0].rows[0][0] = evil.into();

    let html = render_html(&report);
    assert_eq!(
        count(&html, "<script"),
        1,
        "only the data block is a script element"
    );
    assert_eq!(count(&html, "</script>"), 1);
    assert!(!html.contains("<img"));
    assert!(!html.contains("alert(1)</script>"));
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x"));
    assert!(html.contains("&quot;&#39;&amp;"));
    // The id became a plain anchor.
    assert_eq!(count(&html, "id=\"chart-"), 4);
    assert!(!html.contains("id=\"chart-<"));
    // And the data still reads back exactly.
    assert_eq!(read_report_data(&html).unwrap(), report);
}

#[test]
fn the_page_loads_nothing_from_anywhere() {
    let mut report = sample_report();
    // URLs in text are fine: they stay text.
    report.subtitle = "see https://example.com and //cdn.example.com/x.js".into();
    report.charts[0].series[0].name = "http://evil.example/".into();
    let html = render_html(&report);

    for attribute in [
        "src=",
        "href=",
        "srcset=",
        "action=",
        "xlink:href=",
        "poster=",
        "data=",
    ] {
        for (at, _) in html.match_indices(attribute) {
            let value = html[at + attribute.len()..].trim_start_matches(['"', '\'']);
            for forbidden in ["http:", "https:", "//"] {
                assert!(
                    !value.starts_with(forbidden),
                    "{attribute} points outside: {}",
                    &value[..value.len().min(60)]
                );
            }
        }
    }
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(!style.contains("url("), "no CSS loads");
    assert!(!style.contains("@import"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<iframe"));
    assert!(!html.contains("<img"));
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    // The only script element is data, not code.
    assert_eq!(count(&html, "<script"), 1);
    assert!(html.contains("<script type=\"application/json\" id=\"report-data\">"));
}

#[test]
fn same_report_renders_to_the_same_bytes() {
    let first = render_html(&sample_report());
    let second = render_html(&sample_report());
    assert_eq!(first, second);
    let mut changed = sample_report();
    changed.events[0].at = 121.0;
    assert_ne!(first, render_html(&changed));
}

#[test]
fn embedded_data_reads_back_as_the_same_report() {
    let report = sample_report();
    let html = render_html(&report);
    assert_eq!(read_report_data(&html).unwrap(), report);

    assert!(matches!(
        read_report_data("<html></html>"),
        Err(ReportError::NoEmbeddedData)
    ));
    let broken = html.replace("\"title\":", "\"titel\":");
    let err = read_report_data(&broken).unwrap_err();
    assert!(matches!(err, ReportError::BadEmbeddedData(_)), "{err}");
}

#[test]
fn non_finite_numbers_are_skipped_when_drawn_and_read_back_as_nan() {
    let mut report = sample_report();
    report.charts[0].series[0].points.push((f64::NAN, 1.0));
    report.charts[0].series[1]
        .points
        .push((300.0, f64::INFINITY));
    report.charts[2].series[0]
        .points
        .insert(3, (35.0, f64::NEG_INFINITY));
    report.charts[3].series[0].points.push((f64::INFINITY, 3.0));
    report
        .events
        .push(EventMarker::new(f64::NAN, EventKind::Note, "when?"));
    let html = render_html(&report);
    assert_coordinates_finite(&html);
    assert!(!drawn_part(&html).contains("NaN"));

    let back = read_report_data(&html).unwrap();
    assert!(back.charts[0].series[0].points.last().unwrap().0.is_nan());
    assert!(
        back.charts[0].series[1].points.last().unwrap().1.is_nan(),
        "inf travels as null"
    );
    assert!(back.events.last().unwrap().at.is_nan());
}

fn one_chart(kind: ChartKind, series: Vec<Series>) -> RunReport {
    let mut report = RunReport::new("edge", "edge cases", "now", Duration::from_secs(60));
    report.charts = vec![Chart {
        id: "edge".into(),
        title: "Edge".into(),
        y_label: "y".into(),
        unit: "u".into(),
        kind,
        series,
        markers: true,
    }];
    report.events = vec![EventMarker::new(
        30.0,
        EventKind::Eviction {
            notice: Notice::None,
        },
        "e",
    )];
    report
}

const ALL_KINDS: [ChartKind; 4] = [
    ChartKind::Line,
    ChartKind::StepLine,
    ChartKind::StackedArea,
    ChartKind::StackedBars { bin_s: 10.0 },
];

#[test]
fn empty_series_and_charts_draw_axes_and_say_no_data() {
    for kind in ALL_KINDS {
        let html = render_html(&one_chart(kind, vec![Series::new("nothing", vec![])]));
        assert_coordinates_finite(&html);
        assert!(html.contains(">no data</text>"), "{kind:?}");
        assert!(
            html.contains("nothing <span class=\"empty\">(no data)</span>"),
            "{kind:?}"
        );
        let html = render_html(&one_chart(kind, vec![]));
        assert!(html.contains(">no data</text>"), "{kind:?}");
        assert_coordinates_finite(&html);
    }
    let mut empty = RunReport::new("", "", "", Duration::ZERO);
    empty
        .charts
        .push(Chart::evictions_per_minute(&[], Duration::ZERO));
    assert_coordinates_finite(&render_html(&empty));
}

#[test]
fn a_single_point_is_drawn_as_a_dot() {
    for kind in [ChartKind::Line, ChartKind::StepLine] {
        let html = render_html(&one_chart(
            kind,
            vec![Series::new("one", vec![(20.0, 5.0)])],
        ));
        assert_coordinates_finite(&html);
        assert_eq!(count(&html, "<circle class=\"dot\""), 1, "{kind:?}");
        assert!(!html.contains(">no data</text>"));
    }
    for kind in [
        ChartKind::StackedArea,
        ChartKind::StackedBars { bin_s: 10.0 },
    ] {
        let html = render_html(&one_chart(
            kind,
            vec![Series::new("one", vec![(20.0, 5.0)])],
        ));
        assert_coordinates_finite(&html);
        assert_eq!(
            count(&html, "class=\"band\"") + count(&html, "class=\"bar\""),
            1,
            "{kind:?}"
        );
    }
}

#[test]
fn huge_and_tiny_values_keep_coordinates_finite_and_labels_short() {
    let extremes = [
        vec![(0.0, f64::MAX), (30.0, f64::MAX), (60.0, -f64::MAX)],
        vec![(0.0, 1e300), (60.0, 1e301)],
        vec![(0.0, 2.5e9), (60.0, 7.5e9)],
        vec![(0.0, 1e-9), (60.0, 3e-9)],
        vec![(1e15, 1.0), (2e15, 2.0)],
        vec![(-30.0, -5.0), (30.0, 5.0)],
    ];
    for points in extremes {
        for kind in ALL_KINDS {
            let html = render_html(&one_chart(kind, vec![Series::new("big", points.clone())]));
            assert_coordinates_finite(&html);
        }
    }
    let html = render_html(&one_chart(
        ChartKind::Line,
        vec![Series::new("big", vec![(0.0, 2.5e9), (60.0, 7.5e9)])],
    ));
    assert!(
        html.contains(">8G</text>") || html.contains(">7.5G</text>"),
        "SI tick labels"
    );
}

#[test]
fn write_report_creates_the_directory_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/out");
    let path = write_report(&out, &sample_report()).unwrap();
    assert_eq!(path, out.join(REPORT_FILE_NAME));
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(html, render_html(&sample_report()));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no partial file left behind"
    );
}

#[test]
fn write_report_error_names_the_path_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = write_report(&file.join("sub"), &sample_report()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ReportError::CreateDir { .. }), "{message}");
    assert!(
        message.contains(&file.join("sub").display().to_string()),
        "{message}"
    );
    assert!(message.contains("--out DIR"), "{message}");

    // A directory where the file should be: the write itself fails.
    std::fs::create_dir(dir.path().join(REPORT_FILE_NAME)).unwrap();
    let err = write_report(dir.path(), &sample_report()).unwrap_err();
    assert!(matches!(err, ReportError::Write { .. }), "{err}");
    assert!(err.to_string().contains(REPORT_FILE_NAME), "{err}");
}

#[test]
fn chart_ids_become_unique_html_anchors() {
    let mut report = sample_report();
    report.charts[1].id = "capacity".into();
    report.charts[2].id = "Queue Depth!".into();
    report.charts[3].id = String::new();
    let html = render_html(&report);
    for anchor in [
        "chart-capacity",
        "chart-capacity-2",
        "chart-queue-depth-",
        "chart-4",
    ] {
        assert_eq!(count(&html, &format!("id=\"{anchor}\"")), 1, "{anchor}");
    }
}
