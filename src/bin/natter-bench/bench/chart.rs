//! A small SVG chart for BENCHMARKS.md: deliveries per second and p99 latency against the
//! number of clients. Two line series need no plotting library (and its font stack).

use std::fmt::Write;

/// One measured point: clients, deliveries per second, p99 latency in ms.
pub type Point = (usize, f64, f64);

const W: f64 = 360.0;
const H: f64 = 220.0;
const PAD: f64 = 50.0;

/// The chart: two panels side by side.
pub fn svg(points: &[Point], title: &str) -> String {
    let mut out = String::new();
    let width = 2.0 * W + 20.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">"#,
        H + 30.0
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="16" font-size="13">{}</text>"#,
        escape(title)
    );
    let series = [
        (
            "deliveries/s (millions)",
            points.iter().map(|p| (p.0, p.1 / 1e6)).collect::<Vec<_>>(),
        ),
        (
            "p99 latency (ms)",
            points.iter().map(|p| (p.0, p.2)).collect(),
        ),
    ];
    for (i, (label, data)) in series.iter().enumerate() {
        panel(&mut out, i as f64 * (W + 20.0), 25.0, label, data);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, x0: f64, y0: f64, label: &str, data: &[(usize, f64)]) {
    let max_x = data.iter().map(|d| d.0).max().unwrap_or(1).max(1) as f64;
    let max_y = data.iter().map(|d| d.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let px = |x: f64| x0 + PAD + x / max_x * (W - PAD - 10.0);
    let py = |y: f64| y0 + H - PAD + 10.0 - y / max_y * (H - PAD - 10.0);
    let _ = writeln!(
        out,
        r#"<g><rect x="{x0}" y="{y0}" width="{W}" height="{H}" fill="none" stroke="gray"/>"#
    );
    let _ = writeln!(
        out,
        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        px(0.0),
        py(0.0),
        px(max_x),
        py(0.0),
        px(0.0),
        py(0.0),
        px(0.0),
        py(max_y)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}">{}</text>"#,
        x0 + 8.0,
        y0 + 14.0,
        escape(label)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">clients</text>"#,
        px(max_x / 2.0),
        y0 + H - 8.0
    );
    for k in 0..=4 {
        let y = max_y * f64::from(k) / 4.0;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{y:.2}</text>"#,
            px(0.0) - 4.0,
            py(y) + 4.0
        );
    }
    let points: Vec<String> = data
        .iter()
        .map(|d| format!("{:.1},{:.1}", px(d.0 as f64), py(d.1)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="steelblue" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
    for d in data {
        let _ = writeln!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="steelblue"/><text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(d.0 as f64),
            py(d.1),
            px(d.0 as f64),
            py(0.0) + 14.0,
            d.0
        );
    }
    out.push_str("</g>\n");
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_both_series() {
        let svg = super::svg(&[(100, 1.5e6, 0.8), (1000, 2.1e6, 2.0)], "a < b");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
    }
}
