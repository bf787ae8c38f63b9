//! Grids of small captioned images.

use std::path::Path;

use crate::canvas::{AXIS, BLACK, Canvas, GLYPH, Rgb, WHITE, text_width};
use crate::plot::SERIES;
use crate::{Image, MAX_SIDE, PlotError};

/// How a tile's values become colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Palette {
    /// `n` categories: each value must be one of `0, 1, …, n − 1` (e.g. a Potts state);
    /// distinct colours (the Tableau 10 set for `n ≤ 10`, evenly spaced hues beyond).
    Categorical(usize),
    /// Black (lowest) to white (highest), over the panel's [`Panel::value_range`] or else
    /// the tile's own minimum and maximum.
    Gray,
    /// Blue (negative) through white (zero) to red (positive), symmetric about zero: the
    /// panel's range or else the tile's largest `|value|` gives full colour.
    Diverging,
}

#[derive(Clone, Debug)]
struct Tile {
    caption: String,
    rows: usize,
    cols: usize,
    values: Vec<f32>,
    palette: Palette,
}

/// A grid of small images (Potts states, sampled images, heat maps), `columns` to a row,
/// each with a caption under it and a title over the whole. Each grid cell is drawn as a
/// square block of pixels (about 160 pixels a tile side, at least 1 pixel a cell).
///
/// ```
/// use thrml_plot::{Palette, Panel};
/// let dir = tempfile::tempdir().unwrap();
/// let field: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 50.0).collect();
/// Panel::new("Heat map", 3)
///     .tile("field", 10, 10, &field, Palette::Diverging)
///     .tile("gray", 10, 10, &field, Palette::Gray)
///     .save(&dir.path().join("panel.png"))?;
/// # Ok::<(), thrml_plot::PlotError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Panel {
    title: String,
    columns: usize,
    tiles: Vec<Tile>,
    range: Option<(f32, f32)>,
    tile_side: usize,
}

impl Panel {
    /// An empty panel with this title, `columns` tiles to a row.
    #[must_use]
    pub fn new(title: impl Into<String>, columns: usize) -> Panel {
        Panel {
            title: title.into(),
            columns,
            tiles: Vec::new(),
            range: None,
            tile_side: 160,
        }
    }

    /// Add a tile: `values` holds `rows × cols` numbers, row by row.
    #[must_use]
    pub fn tile(
        mut self,
        caption: impl Into<String>,
        rows: usize,
        cols: usize,
        values: &[f32],
        palette: Palette,
    ) -> Panel {
        self.tiles.push(Tile {
            caption: caption.into(),
            rows,
            cols,
            values: values.to_vec(),
            palette,
        });
        self
    }

    /// One value range `[lo, hi]` for every [`Palette::Gray`] and [`Palette::Diverging`]
    /// tile (so the tiles are comparable), instead of each tile's own.
    #[must_use]
    pub fn value_range(mut self, lo: f32, hi: f32) -> Panel {
        self.range = Some((lo, hi));
        self
    }

    /// The target side of a tile in pixels (default 160; each cell gets
    /// `max(1, side / max(rows, cols))` pixels).
    #[must_use]
    pub fn tile_side(mut self, side: usize) -> Panel {
        self.tile_side = side;
        self
    }

    fn check(&self) -> Result<(), PlotError> {
        if self.columns == 0 || self.tile_side == 0 {
            return Err(PlotError::ZeroSize {
                what: self.title.clone(),
                width: self.columns,
                height: self.tile_side,
            });
        }
        if self.tiles.is_empty() {
            return Err(PlotError::Nothing {
                title: self.title.clone(),
            });
        }
        if let Some((lo, hi)) = self.range {
            for (index, v) in [lo, hi].into_iter().enumerate() {
                if !v.is_finite() {
                    return Err(PlotError::NonFinite {
                        series: format!("{} (value range)", self.title),
                        index,
                        value: f64::from(v),
                    });
                }
            }
        }
        for t in &self.tiles {
            if t.rows == 0 || t.cols == 0 || t.rows > MAX_SIDE || t.cols > MAX_SIDE {
                return Err(PlotError::ZeroSize {
                    what: t.caption.clone(),
                    width: t.cols,
                    height: t.rows,
                });
            }
            if t.values.len() != t.rows * t.cols {
                return Err(PlotError::ShapeMismatch {
                    tile: t.caption.clone(),
                    rows: t.rows,
                    cols: t.cols,
                    expected: t.rows * t.cols,
                    got: t.values.len(),
                });
            }
            for (index, &v) in t.values.iter().enumerate() {
                if !v.is_finite() {
                    return Err(PlotError::NonFinite {
                        series: t.caption.clone(),
                        index,
                        value: f64::from(v),
                    });
                }
                if let Palette::Categorical(n) = t.palette
                    && (v < 0.0 || v.fract() != 0.0 || v as usize >= n)
                {
                    return Err(PlotError::NotACategory {
                        tile: t.caption.clone(),
                        index,
                        value: v,
                        n,
                    });
                }
            }
        }
        Ok(())
    }

    /// Draw the panel into an image.
    pub fn render(&self) -> Result<Image, PlotError> {
        self.check()?;
        let cell = |t: &Tile| (self.tile_side / t.rows.max(t.cols)).max(1);
        let cell_w = self
            .tiles
            .iter()
            .map(|t| t.cols * cell(t))
            .max()
            .unwrap_or(1);
        let cell_h = self
            .tiles
            .iter()
            .map(|t| t.rows * cell(t))
            .max()
            .unwrap_or(1);
        let ncols = self.columns.min(self.tiles.len());
        let nrows = self.tiles.len().div_ceil(ncols);
        let (margin, gap) = (14usize, 14usize);
        let title_h = if self.title.is_empty() { 0 } else { 16 + 14 };
        let cap_h = 6 + 16;
        let grid_w = ncols * cell_w + (ncols - 1) * gap;
        let width = (2 * margin + grid_w).max(text_width(&self.title, 2) + 2 * margin);
        let height = margin + title_h + nrows * (cell_h + cap_h) + (nrows - 1) * gap + margin;
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(PlotError::ZeroSize {
                what: self.title.clone(),
                width,
                height,
            });
        }
        let mut c = Canvas::new(width, height, WHITE);
        if !self.title.is_empty() {
            let tw = text_width(&self.title, 2);
            c.text(
                ((width - tw) / 2) as i64,
                margin as i64,
                &self.title,
                2,
                BLACK,
            );
        }
        let x_start = (width - grid_w) / 2;
        for (k, t) in self.tiles.iter().enumerate() {
            let (gr, gc) = (k / ncols, k % ncols);
            let s = cell(t);
            let (tw, th) = (t.cols * s, t.rows * s);
            let x0 = x_start + gc * (cell_w + gap) + (cell_w - tw) / 2;
            let y0 = margin + title_h + gr * (cell_h + cap_h + gap) + (cell_h - th) / 2;
            let colours = tile_colours(t, self.range);
            for r in 0..t.rows {
                for q in 0..t.cols {
                    c.fill_rect(
                        (x0 + q * s) as i64,
                        (y0 + r * s) as i64,
                        s as i64,
                        s as i64,
                        colours[r * t.cols + q],
                    );
                }
            }
            c.stroke_rect(
                x0 as i64 - 1,
                y0 as i64 - 1,
                tw as i64 + 2,
                th as i64 + 2,
                AXIS,
            );
            // Caption: large if it fits the cell, else small and cut to fit.
            let cap_y = margin + title_h + gr * (cell_h + cap_h + gap) + cell_h + 6;
            let cx0 = x_start + gc * (cell_w + gap);
            let avail = cell_w + gap - 2;
            let scale = if text_width(&t.caption, 2) <= avail {
                2
            } else {
                1
            };
            let max_chars = (avail / (GLYPH * scale)).max(1);
            let cap: String = t.caption.chars().take(max_chars).collect();
            let cw = text_width(&cap, scale);
            let cy = cap_y + if scale == 1 { 4 } else { 0 };
            c.text(
                cx0 as i64 + (cell_w as i64 - cw as i64) / 2,
                cy as i64,
                &cap,
                scale,
                BLACK,
            );
        }
        Ok(Image::from_canvas(c))
    }

    /// Render and write the panel as a PNG at `path`, atomically (see [`Image::save`]).
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        self.render()?.save(path)
    }
}

/// The colour of each value of a (checked) tile.
fn tile_colours(t: &Tile, range: Option<(f32, f32)>) -> Vec<Rgb> {
    let (min, max) = t
        .values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    match t.palette {
        Palette::Categorical(n) => {
            let table = categorical(n);
            t.values.iter().map(|&v| table[v as usize]).collect()
        }
        Palette::Gray => {
            let (lo, hi) = range.unwrap_or((min, max));
            let span = if hi > lo { hi - lo } else { 1.0 };
            t.values
                .iter()
                .map(|&v| {
                    let g = (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
                    [g, g, g]
                })
                .collect()
        }
        Palette::Diverging => {
            let m = range.map_or(min.abs().max(max.abs()), |(lo, hi)| lo.abs().max(hi.abs()));
            let m = if m > 0.0 { m } else { 1.0 };
            t.values
                .iter()
                .map(|&v| diverging((v / m).clamp(-1.0, 1.0)))
                .collect()
        }
    }
}

/// `n` distinct colours.
fn categorical(n: usize) -> Vec<Rgb> {
    if n <= SERIES.len() {
        return SERIES[..n].to_vec();
    }
    (0..n)
        .map(|k| {
            hsv(
                k as f32 / n as f32,
                0.75,
                if k % 2 == 0 { 0.9 } else { 0.65 },
            )
        })
        .collect()
}

fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// `x ∈ [−1, 1]`: blue, white at 0, red.
fn diverging(x: f32) -> Rgb {
    let (blue, red) = ([33.0, 102.0, 172.0], [178.0, 24.0, 43.0]);
    let end = if x < 0.0 { blue } else { red };
    let a = x.abs();
    let mix = |k: usize| (255.0 * (1.0 - a) + end[k] * a).round() as u8;
    [mix(0), mix(1), mix(2)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png_stats;

    fn potts(seed: u32) -> Vec<f32> {
        (0..400u32)
            .map(|i| ((i / 20 / 5 + (i % 20) / 7 + seed) % 5) as f32)
            .collect()
    }

    #[test]
    fn panel_png_decodes_and_is_not_blank() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states.png");
        let mut p = Panel::new("Final states, β = 1.5", 3);
        for k in 0..5 {
            p = p.tile(
                format!("chain {k}"),
                20,
                20,
                &potts(k),
                Palette::Categorical(5),
            );
        }
        p.save(&path).unwrap();
        let (w, h, colours, frac) = png_stats(&path).unwrap();
        // 3 columns of 160 px, 2 rows.
        assert_eq!(w, 2 * 14 + 3 * 160 + 2 * 14);
        assert!(h > 2 * 160, "{h}");
        assert!(colours >= 7, "{colours}");
        assert!(frac > 0.3, "{frac}");
        let img = p.render().unwrap();
        for c in &SERIES[..5] {
            assert!(img.pixels.iter().filter(|p| *p == c).count() > 1000);
        }
    }

    #[test]
    fn gray_and_diverging_scale() {
        let v: Vec<f32> = vec![-2.0, 0.0, 1.0, 2.0];
        let t = Tile {
            caption: "t".into(),
            rows: 2,
            cols: 2,
            values: v,
            palette: Palette::Gray,
        };
        assert_eq!(
            tile_colours(&t, None),
            [[0; 3], [128; 3], [191; 3], [255; 3]]
        );
        let t = Tile {
            palette: Palette::Diverging,
            ..t
        };
        let c = tile_colours(&t, None);
        assert_eq!(c[1], WHITE);
        assert_eq!(c[0], [33, 102, 172]);
        assert_eq!(c[3], [178, 24, 43]);
        assert_eq!(categorical(12).len(), 12);
        let mut d = categorical(12);
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 12);
    }

    #[test]
    fn bad_tiles_give_typed_errors() {
        let e = Panel::new("p", 2)
            .tile("a", 2, 2, &[0.0, 1.0, 2.0], Palette::Gray)
            .render()
            .unwrap_err();
        assert!(
            matches!(
                e,
                PlotError::ShapeMismatch {
                    expected: 4,
                    got: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = Panel::new("p", 2)
            .tile("a", 1, 2, &[0.0, 5.0], Palette::Categorical(5))
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::NotACategory { index: 1, .. }), "{e}");
        let e = Panel::new("p", 2)
            .tile("a", 1, 2, &[0.0, f32::INFINITY], Palette::Gray)
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::NonFinite { index: 1, .. }), "{e}");
        let e = Panel::new("p", 0)
            .tile("a", 1, 1, &[0.0], Palette::Gray)
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::ZeroSize { .. }), "{e}");
        let e = Panel::new("p", 1)
            .tile("a", 0, 3, &[], Palette::Gray)
            .render()
            .unwrap_err();
        assert!(matches!(e, PlotError::ZeroSize { .. }), "{e}");
        let e = Panel::new("p", 1).render().unwrap_err();
        assert!(matches!(e, PlotError::Nothing { .. }), "{e}");
    }
}
