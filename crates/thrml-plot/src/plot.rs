//! Line and scatter plots.

use std::path::Path;

use crate::axis::{Axis, Scale};
use crate::canvas::{AXIS, BLACK, Canvas, GLYPH, GRID, Rgb, WHITE, text_width};
use crate::{Image, MAX_SIDE, PlotError};

/// The series colours (Tableau 10), in order.
pub(crate) const SERIES: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Line,
    Scatter,
}

#[derive(Clone, Debug)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    kind: Kind,
}

/// A line and scatter plot: a title, axis labels, optional log axes, any number of series
/// (each its own colour, named in a legend right of the axes) and an optional `y = x`
/// reference line. Build it with the chained methods, then [`Plot::save`] (or
/// [`Plot::render`]); all the checks happen there.
///
/// ```
/// use thrml_plot::Plot;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("fps.png");
/// Plot::new("Flips per ns")
///     .x_label("chains")
///     .y_label("flips / ns")
///     .log_x()
///     .line("fused", &[(1.0, 0.1), (16.0, 1.2), (256.0, 3.5), (4096.0, 4.0)])
///     .save(&path)?;
/// assert!(path.exists());
/// # Ok::<(), thrml_plot::PlotError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Plot {
    title: String,
    x_label: String,
    y_label: String,
    x_scale: Scale,
    y_scale: Scale,
    series: Vec<Series>,
    diagonal: bool,
    width: usize,
    height: usize,
}

impl Plot {
    /// An empty 800×500 plot with this title.
    #[must_use]
    pub fn new(title: impl Into<String>) -> Plot {
        Plot {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            diagonal: false,
            width: 800,
            height: 500,
        }
    }

    /// The label under the x axis.
    #[must_use]
    pub fn x_label(mut self, label: impl Into<String>) -> Plot {
        self.x_label = label.into();
        self
    }

    /// The label left of the y axis (drawn reading upwards).
    #[must_use]
    pub fn y_label(mut self, label: impl Into<String>) -> Plot {
        self.y_label = label.into();
        self
    }

    /// A base-10 log x axis (every x must then be > 0).
    #[must_use]
    pub fn log_x(mut self) -> Plot {
        self.x_scale = Scale::Log;
        self
    }

    /// A base-10 log y axis (every y must then be > 0).
    #[must_use]
    pub fn log_y(mut self) -> Plot {
        self.y_scale = Scale::Log;
        self
    }

    /// The image size in pixels (default 800×500).
    #[must_use]
    pub fn size(mut self, width: usize, height: usize) -> Plot {
        self.width = width;
        self.height = height;
        self
    }

    /// A series drawn as straight segments joining its points in the order given.
    #[must_use]
    pub fn line(mut self, name: impl Into<String>, points: &[(f64, f64)]) -> Plot {
        self.series.push(Series {
            name: name.into(),
            points: points.to_vec(),
            kind: Kind::Line,
        });
        self
    }

    /// A series drawn as dots.
    #[must_use]
    pub fn scatter(mut self, name: impl Into<String>, points: &[(f64, f64)]) -> Plot {
        self.series.push(Series {
            name: name.into(),
            points: points.to_vec(),
            kind: Kind::Scatter,
        });
        self
    }

    /// Also draw the dashed reference line `y = x` across the axes.
    #[must_use]
    pub fn diagonal(mut self) -> Plot {
        self.diagonal = true;
        self
    }

    fn check(&self) -> Result<(), PlotError> {
        if self.width < 120 || self.height < 100 || self.width > MAX_SIDE || self.height > MAX_SIDE
        {
            return Err(PlotError::ZeroSize {
                what: self.title.clone(),
                width: self.width,
                height: self.height,
            });
        }
        if self.series.is_empty() {
            return Err(PlotError::Nothing {
                title: self.title.clone(),
            });
        }
        for s in &self.series {
            if s.points.is_empty() {
                return Err(PlotError::EmptySeries {
                    series: s.name.clone(),
                });
            }
            for (index, &(x, y)) in s.points.iter().enumerate() {
                for v in [x, y] {
                    if !v.is_finite() {
                        return Err(PlotError::NonFinite {
                            series: s.name.clone(),
                            index,
                            value: v,
                        });
                    }
                }
                for (axis, v, scale) in [("x", x, self.x_scale), ("y", y, self.y_scale)] {
                    if scale == Scale::Log && v <= 0.0 {
                        return Err(PlotError::NonPositiveOnLogAxis {
                            series: s.name.clone(),
                            index,
                            axis,
                            value: v,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Draw the plot into an image.
    pub fn render(&self) -> Result<Image, PlotError> {
        self.check()?;
        let all = self.series.iter().flat_map(|s| s.points.iter().copied());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in all {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if self.diagonal {
            // Both axes cover both ranges, so the reference line runs corner to corner
            // when the scales agree.
            let (lo, hi) = (x0.min(y0), x1.max(y1));
            (x0, y0, x1, y1) = (lo, lo, hi, hi);
        }
        let (w, h) = (self.width as i64, self.height as i64);
        let text = if self.width >= 500 { 2 } else { 1 };
        let th = (GLYPH * text) as i64;
        let top = if self.title.is_empty() {
            12
        } else {
            12 + th + 14
        };
        let bottom = h - (8 + th + 8 + if self.x_label.is_empty() { 0 } else { th + 10 });
        // As many y ticks as fit with a text line and some space between.
        let y_target = (((bottom - top) / (3 * th)).clamp(2, 8)) as usize;
        let ya = Axis::fit(y0, y1, self.y_scale, y_target);
        let mut c = Canvas::new(self.width, self.height, WHITE);

        // Legend (right of the axes) when any series is named.
        let named: Vec<(usize, &Series)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .collect();
        let mut legend_scale = text;
        let mut legend_w = 0;
        if !named.is_empty() {
            let longest = named
                .iter()
                .map(|(_, s)| s.name.chars().count())
                .max()
                .unwrap_or(0);
            let width_at = |sc: usize| (12 + 28 + 8 + longest * GLYPH * sc + 12) as i64;
            if legend_scale == 2 && width_at(2) > w * 35 / 100 {
                legend_scale = 1;
            }
            legend_w = width_at(legend_scale).min(w * 45 / 100);
        }

        let y_tick_w = ya
            .ticks
            .iter()
            .map(|t| text_width(&t.1, text))
            .max()
            .unwrap_or(0) as i64;
        let left = 10 + if self.y_label.is_empty() { 0 } else { th + 10 } + y_tick_w + 10;
        let right = w - 16 - legend_w;
        // The most x ticks (up to 8) whose labels do not collide.
        let mut xa = Axis::fit(x0, x1, self.x_scale, 2);
        for target in (3..=8).rev() {
            let a = Axis::fit(x0, x1, self.x_scale, target);
            let widest = a
                .ticks
                .iter()
                .map(|t| text_width(&t.1, text))
                .max()
                .unwrap_or(0) as i64;
            let gap = (right - left) / (a.ticks.len().max(2) as i64 - 1);
            if widest + 2 * th <= gap {
                xa = a;
                break;
            }
        }
        if right - left < 40 || bottom - top < 40 {
            return Err(PlotError::ZeroSize {
                what: format!("{} (plot area)", self.title),
                width: (right - left).max(0) as usize,
                height: (bottom - top).max(0) as usize,
            });
        }
        let px = |x: f64| left as f64 + xa.frac(x) * (right - 1 - left) as f64;
        let py = |y: f64| (bottom - 1) as f64 - ya.frac(y) * (bottom - 1 - top) as f64;

        // Title.
        if !self.title.is_empty() {
            let tw = text_width(&self.title, text) as i64;
            c.text(((w - tw) / 2).max(2), 12, &self.title, text, BLACK);
        }
        // Grid and ticks.
        for (v, label) in &xa.ticks {
            let x = px(*v).round() as i64;
            c.fill_rect(x, top, 1, bottom - top, GRID);
            c.fill_rect(x, bottom, 1, 6, AXIS);
            let lw = text_width(label, text) as i64;
            c.text(x - lw / 2, bottom + 8, label, text, BLACK);
        }
        for (v, label) in &ya.ticks {
            let y = py(*v).round() as i64;
            c.fill_rect(left, y, right - left, 1, GRID);
            c.fill_rect(left - 6, y, 6, 1, AXIS);
            let lw = text_width(label, text) as i64;
            c.text(left - 8 - lw, y - th / 2, label, text, BLACK);
        }
        // Axis labels.
        if !self.x_label.is_empty() {
            let lw = text_width(&self.x_label, text) as i64;
            c.text(
                (left + right - lw) / 2,
                bottom + 8 + th + 10,
                &self.x_label,
                text,
                BLACK,
            );
        }
        if !self.y_label.is_empty() {
            let lw = text_width(&self.y_label, text) as i64;
            c.text_vertical(
                10,
                ((top + bottom - lw) / 2).max(0),
                &self.y_label,
                text,
                BLACK,
            );
        }

        // Data, clipped to the axes.
        c.set_clip(left, top, right, bottom);
        if self.diagonal {
            let n = 200;
            let mut prev: Option<(f64, f64)> = None;
            for k in 0..=n {
                let x = xa.at(k as f64 / n as f64);
                let p = (px(x), py(x));
                if let Some(q) = prev
                    && (k / 6) % 2 == 0
                {
                    c.line(q, p, 2, AXIS);
                }
                prev = Some(p);
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES[i % SERIES.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (px(x), py(y))).collect();
            match s.kind {
                Kind::Line => {
                    if pts.len() == 1 {
                        c.dot(pts[0], 3, colour);
                    }
                    for pair in pts.windows(2) {
                        c.line(pair[0], pair[1], 3, colour);
                    }
                }
                Kind::Scatter => {
                    let r = if pts.len() > 2000 { 1 } else { 3 };
                    for &p in &pts {
                        c.dot(p, r, colour);
                    }
                }
            }
        }
        c.clear_clip();
        c.stroke_rect(left - 1, top - 1, right - left + 2, bottom - top + 2, AXIS);

        // Legend.
        if !named.is_empty() {
            let lh = (GLYPH * legend_scale) as i64;
            let row = lh + 8;
            let lx = right + 12;
            let box_h = 8 + row * named.len() as i64;
            c.stroke_rect(lx, top, legend_w - 4, box_h.min(bottom - top), GRID);
            let max_chars = ((legend_w - 4 - 12 - 28 - 8) / (GLYPH * legend_scale) as i64).max(1);
            c.set_clip(lx, top, lx + legend_w - 4, bottom);
            for (k, (i, s)) in named.iter().enumerate() {
                let colour = SERIES[i % SERIES.len()];
                let y = top + 8 + k as i64 * row;
                let mid = (y + lh / 2) as f64;
                match s.kind {
                    Kind::Line => {
                        c.line((lx as f64 + 8.0, mid), (lx as f64 + 34.0, mid), 3, colour)
                    }
                    Kind::Scatter => c.dot((lx as f64 + 21.0, mid), 3, colour),
                }
                let name: String = s.name.chars().take(max_chars as usize).collect();
                c.text(lx + 42, y, &name, legend_scale, BLACK);
            }
            c.clear_clip();
        }
        Ok(Image::from_canvas(c))
    }

    /// Render and write the plot as a PNG at `path`, atomically (see [`Image::save`]).
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        self.render()?.save(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png_stats;

    fn energy() -> Plot {
        let mut p = Plot::new("Energy per spin against sweep")
            .x_label("sweep")
            .y_label("energy / spin");
        for (k, beta) in [0.5, 1.0, 1.5].iter().enumerate() {
            let pts: Vec<(f64, f64)> = (0..100)
                .map(|t| {
                    (
                        t as f64,
                        -beta * (1.0 - (-(t as f64) / (10.0 + k as f64)).exp()),
                    )
                })
                .collect();
            p = p.line(format!("β = {beta}"), &pts);
        }
        p
    }

    #[test]
    fn line_plot_png_decodes_and_is_not_blank() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy.png");
        energy().save(&path).unwrap();
        let (w, h, colours, frac) = png_stats(&path).unwrap();
        assert_eq!((w, h), (800, 500));
        // Background, grid, axis, text and three series colours at least.
        assert!(colours >= 6, "{colours}");
        assert!(frac > 0.02 && frac < 0.6, "{frac}");
        // Every series colour appears.
        let img = energy().render().unwrap();
        for c in &SERIES[..3] {
            assert!(img.pixels.iter().filter(|p| *p == c).count() > 100);
        }
    }

    #[test]
    fn log_scatter_and_diagonal() {
        let pts: Vec<(f64, f64)> = (1..40).map(|i| (i as f64, i as f64 * 1.1)).collect();
        let img = Plot::new("log")
            .log_x()
            .log_y()
            .scatter("s", &pts)
            .diagonal()
            .size(400, 300)
            .render()
            .unwrap();
        assert_eq!((img.width, img.height), (400, 300));
        assert!(img.pixels.iter().filter(|p| **p == SERIES[0]).count() > 200);
        assert!(img.pixels.iter().filter(|p| **p == AXIS).count() > 400);
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let e = Plot::new("t").line("a", &[]).render().unwrap_err();
        assert!(
            matches!(e, PlotError::EmptySeries { ref series } if series == "a"),
            "{e}"
        );
        let e = Plot::new("t").render().unwrap_err();
        assert!(matches!(e, PlotError::Nothing { .. }));
        let e = Plot::new("t")
            .line("a", &[(0.0, 1.0), (1.0, f64::NAN)])
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::NonFinite { index: 1, .. }), "{e}");
        let e = Plot::new("t")
            .log_y()
            .scatter("b", &[(0.0, 1.0), (1.0, 0.0)])
            .render()
            .unwrap_err();
        assert!(
            matches!(
                e,
                PlotError::NonPositiveOnLogAxis {
                    axis: "y",
                    index: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = Plot::new("t")
            .line("a", &[(0.0, 1.0)])
            .size(0, 0)
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::ZeroSize { .. }));
    }

    #[test]
    fn single_point_and_constant_series_render() {
        Plot::new("one").line("p", &[(3.0, 3.0)]).render().unwrap();
        Plot::new("flat")
            .line("c", &[(0.0, 2.0), (1.0, 2.0)])
            .render()
            .unwrap();
    }
}
