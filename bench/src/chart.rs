//! The SVG chart: what one getppid of an untraced host process costs above
//! the no-BPF baseline, against the number of traced containers. Hand-made
//! SVG, so the bench needs no plotting library and the file diffs cleanly.

use std::fmt::Write;

use crate::report::{old, Figures, Row};
use crate::stats::Summary;

const W: f64 = 860.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 350.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// The x axis: K values as evenly spaced categories, since the claim is
/// "flat", not a fit to a curve.
const KS: [usize; 4] = [0, 1, 4, 16];

/// One measured series: (K, ns above baseline) for K = 0, 1, 4, 16.
pub struct Line {
    pub label: &'static str,
    pub colour: &'static str,
    pub points: Vec<(usize, Summary)>,
}

pub struct Chart {
    pub lines: Vec<Line>,
    /// The empty program's cost above baseline.
    pub floor: f64,
    /// The reference program's untraced path (namespace read, hash miss):
    /// the least a recorder of this design costs.
    pub reference: f64,
    /// The old tool's figure at K = 1, for scale.
    pub old_at_one: f64,
}

/// A round step for about `n` gridlines over `span`: 1, 2 or 5 times a
/// power of ten.
fn step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Where values land: K categories across, ns above baseline up.
struct Plot {
    y0: f64,
    y1: f64,
    dy: f64,
}

const PLOT_W: f64 = W - LEFT - RIGHT;
const PLOT_H: f64 = H - TOP - BOTTOM;

impl Plot {
    fn y(&self, v: f64) -> f64 {
        TOP + PLOT_H * (1.0 - (v - self.y0) / (self.y1 - self.y0))
    }

    fn x(&self, k: usize) -> f64 {
        let i = KS.iter().position(|&v| v == k).unwrap_or(0);
        LEFT + PLOT_W * (i as f64 + 0.5) / KS.len() as f64
    }
}

impl Chart {
    /// The chart of RESULTS.md: real containers (section 4) and stand-ins
    /// (section 5) against K, with the floor and the reference program.
    pub fn of(f: &Figures) -> Chart {
        let line = |label, colour, base: &Row, ks: &[(usize, Row)]| Line {
            label,
            colour,
            points: std::iter::once((0, base.paired))
                .chain(ks.iter().map(|(k, r)| (*k, r.paired)))
                .filter_map(|(k, d)| d.filter(|d| d.n > 0).map(|d| (k, d)))
                .collect(),
        };
        Chart {
            lines: vec![
                line("K real containers (levels seconds apart)", "#1565c0", &f.host_base, &f.host_k),
                line("K stand-ins (alternated every 0.5 s)", "#6a1b9a", &f.alt_base, &f.alt_k),
            ],
            floor: f.host_floor.paired.map_or(0.0, |d| d.median),
            reference: f.host_miss.paired.map_or(0.0, |d| d.median),
            old_at_one: old::HOST_ONE_NS,
        }
    }

    pub fn render(&self) -> String {
        let plot = self.plot();
        let mut s = String::new();
        self.frame(&mut s);
        self.grid(&mut s, &plot);
        self.axes(&mut s, &plot);
        self.reference_lines(&mut s, &plot);
        self.series(&mut s, &plot);
        self.old_marker(&mut s, &plot);
        self.legend(&mut s);
        s.push_str("</svg>\n");
        s
    }

    /// The target line: 1.5 floors.
    fn limit(&self) -> f64 {
        1.5 * self.floor
    }

    /// A y range holding every quartile and reference line, on round steps.
    fn plot(&self) -> Plot {
        let all = || self.lines.iter().flat_map(|l| l.points.iter().map(|(_, s)| *s));
        let hi = all().map(|s| s.q3).chain([self.limit(), self.old_at_one, self.reference]).fold(0.0, f64::max);
        let lo = all().map(|s| s.q1).fold(0.0, f64::min);
        let dy = step(hi - lo, 6.0);
        Plot { y0: (lo / dy).floor() * dy, y1: (hi * 1.05 / dy).ceil() * dy, dy }
    }

    fn frame(&self, s: &mut String) {
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="14" text-anchor="middle">Untraced host process: cost per getppid above no BPF, vs traced containers</text>"#,
            W / 2.0
        );
    }

    /// Horizontal gridlines with their values.
    fn grid(&self, s: &mut String, p: &Plot) {
        let mut v = p.y0;
        while v <= p.y1 + p.dy / 2.0 {
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
                LEFT + PLOT_W,
                LEFT - 6.0,
                p.y(v) + 4.0,
                py = p.y(v)
            );
            v += p.dy;
        }
    }

    /// Axis titles and the K labels.
    fn axes(&self, s: &mut String, p: &Plot) {
        let _ = writeln!(
            s,
            r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">ns per syscall above baseline (CPU time)</text>"#,
            TOP + PLOT_H / 2.0
        );
        for k in KS {
            let _ =
                writeln!(s, r#"<text x="{:.1}" y="{}" text-anchor="middle">{k}</text>"#, p.x(k), TOP + PLOT_H + 18.0);
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">K = containers traced at the same time</text>"#,
            LEFT + PLOT_W / 2.0,
            H - 10.0
        );
    }

    /// The floor, the reference program and the target.
    fn reference_lines(&self, s: &mut String, p: &Plot) {
        for (v, colour, dash) in
            [(self.floor, "#888", "6 4"), (self.reference, "#2e7d32", "8 3 2 3"), (self.limit(), "#c60", "2 3")]
        {
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
                LEFT + PLOT_W,
                py = p.y(v)
            );
        }
    }

    /// The old tool's figure at K=1, drawn over the lines.
    fn old_marker(&self, s: &mut String, p: &Plot) {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="#b71c1c"/>"##,
            p.x(1) - 4.0,
            p.y(self.old_at_one) - 4.0
        );
    }

    /// Each measured line: medians joined, quartiles as bars.
    fn series(&self, s: &mut String, p: &Plot) {
        for (j, line) in self.lines.iter().enumerate() {
            // Side by side, so that whiskers do not hide each other.
            let dx = (j as f64 - (self.lines.len() as f64 - 1.0) / 2.0) * 10.0;
            let c = line.colour;
            let path: Vec<String> =
                line.points.iter().map(|(k, q)| format!("{:.1},{:.1}", p.x(*k) + dx, p.y(q.median))).collect();
            let _ = writeln!(s, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#, path.join(" "));
            for (k, q) in &line.points {
                let _ = writeln!(
                    s,
                    r#"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="{c}"/><circle cx="{px:.1}" cy="{:.1}" r="4" fill="{c}"/>"#,
                    p.y(q.q1),
                    p.y(q.q3),
                    p.y(q.median),
                    px = p.x(*k) + dx
                );
            }
        }
    }

    fn legend(&self, s: &mut String) {
        let mut legend: Vec<(&str, &str, &str)> = self.lines.iter().map(|l| (l.colour, "", l.label)).collect();
        legend.extend([
            ("", "", "(median; bar: first to third quartile)"),
            ("#888", "6 4", "empty BPF program (floor)"),
            ("#2e7d32", "8 3 2 3", "reference: namespace read + hash miss"),
            ("#c60", "2 3", "target: 1.5 x floor"),
            ("#b71c1c", "", "old tool at K=1 (its published figure:"),
            ("", "", "another machine, dd workload, wall time;"),
            ("", "", "it adds one program per traced container)"),
        ]);
        for (i, (colour, dash, label)) in legend.iter().enumerate() {
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let lx = W - RIGHT + 12.0;
            if !colour.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3" stroke-dasharray="{dash}"/>"#,
                    lx + 18.0
                );
            }
            let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, lx + 24.0, ly + 4.0, esc(label));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: f64) -> Summary {
        Summary { median: v, q1: v - 1.0, q3: v + 1.0, n: 10 }
    }

    fn chart() -> Chart {
        let points = vec![(0, at(0.0)), (1, at(20.0)), (4, at(21.0)), (16, at(20.5))];
        let other = vec![(1, at(19.0)), (16, at(19.5))];
        Chart {
            lines: vec![
                Line { label: "containers", colour: "#1565c0", points },
                Line { label: "stand-ins", colour: "#6a1b9a", points: other },
            ],
            floor: 15.0,
            reference: 18.0,
            old_at_one: 64.0,
        }
    }

    #[test]
    fn one_marker_per_point_and_a_closed_document() {
        let svg = chart().render();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle ").count(), 6);
        assert_eq!(svg.matches("<polyline ").count(), 2);
        for k in ["0", "1", "4", "16"] {
            assert!(svg.contains(&format!(">{k}</text>")), "no x label {k}");
        }
        assert!(svg.contains(">stand-ins</text>"));
    }

    #[test]
    fn higher_costs_are_drawn_higher() {
        let svg = chart().render();
        let cys: Vec<f64> =
            svg.split("cy=\"").skip(1).map(|rest| rest.split('"').next().unwrap().parse().unwrap()).collect();
        assert!(cys[0] > cys[1], "K=0 (0 ns) must sit below K=1 (20 ns): {cys:?}");
        assert!(cys[2] < cys[1], "21 ns must sit above 20 ns: {cys:?}");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(step(70.0, 6.0), 20.0);
        assert_eq!(step(6.0, 6.0), 1.0);
        assert_eq!(step(300.0, 6.0), 50.0);
    }
}
