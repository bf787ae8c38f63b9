//! An RGB raster with the few drawing operations the plots need: rectangles, thick lines,
//! dots and text from the 8×8 bitmap font of [`font8x8`], scaled by an integer factor.

use font8x8::legacy::{BASIC_LEGACY, GREEK_LEGACY, LATIN_LEGACY};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// White.
pub const WHITE: Rgb = [255, 255, 255];
/// Black.
pub const BLACK: Rgb = [0, 0, 0];
/// The grid lines' light grey.
pub const GRID: Rgb = [225, 225, 225];
/// The frame's and ticks' dark grey.
pub const AXIS: Rgb = [60, 60, 60];

/// Side of a glyph at scale 1, in pixels.
pub const GLYPH: usize = 8;

/// An RGB raster, row-major, with an optional clip rectangle for the drawing operations.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) pixels: Vec<Rgb>,
    /// `(x0, y0, x1, y1)`, half-open.
    clip: (i64, i64, i64, i64),
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![background; width * height],
            clip: (0, 0, width as i64, height as i64),
        }
    }

    /// Restrict drawing to `[x0, x1) × [y0, y1)` (intersected with the canvas).
    pub fn set_clip(&mut self, x0: i64, y0: i64, x1: i64, y1: i64) {
        self.clip = (
            x0.max(0),
            y0.max(0),
            x1.min(self.width as i64),
            y1.min(self.height as i64),
        );
    }

    /// Drawing reaches the whole canvas again.
    pub fn clear_clip(&mut self) {
        self.clip = (0, 0, self.width as i64, self.height as i64);
    }

    /// Set one pixel (ignored outside the clip rectangle).
    #[inline]
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        let (x0, y0, x1, y1) = self.clip;
        if x >= x0 && x < x1 && y >= y0 && y < y1 {
            self.pixels[y as usize * self.width + x as usize] = c;
        }
    }

    /// Fill `[x, x + w) × [y, y + h)`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, c);
            }
        }
    }

    /// The outline of `[x, x + w) × [y, y + h)`, one pixel wide.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + h - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + w - 1, y, 1, h, c);
    }

    /// A line from `(x0, y0)` to `(x1, y1)` of the given thickness (Bresenham, with a
    /// square brush). Coordinates far outside the canvas are clamped first so a wild point
    /// cannot make the walk long.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thickness: i64, c: Rgb) {
        let lim = 4.0 * (self.width + self.height) as f64;
        let cl = |v: f64| v.clamp(-lim, lim).round() as i64;
        let (mut x, mut y, xe, ye) = (cl(x0), cl(y0), cl(x1), cl(y1));
        let dx = (xe - x).abs();
        let dy = -(ye - y).abs();
        let sx = if x < xe { 1 } else { -1 };
        let sy = if y < ye { 1 } else { -1 };
        let mut err = dx + dy;
        let off = (thickness - 1) / 2;
        loop {
            self.fill_rect(x - off, y - off, thickness, thickness, c);
            if x == xe && y == ye {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// A filled disc of radius `r` centred on `(cx, cy)`.
    pub fn dot(&mut self, (cx, cy): (f64, f64), r: i64, c: Rgb) {
        let (cx, cy) = (cx.round() as i64, cy.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r + r / 2 {
                    self.put(cx + dx, cy + dy, c);
                }
            }
        }
    }

    /// Draw `text` with its top-left corner at `(x, y)`, each font pixel a `scale`×`scale`
    /// square. Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        let s = scale as i64;
        for (k, ch) in text.chars().enumerate() {
            let g = glyph(ch);
            let gx = x + (k * GLYPH * scale) as i64;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits >> col & 1 == 1 {
                        self.fill_rect(gx + col as i64 * s, y + row as i64 * s, s, s, c);
                    }
                }
            }
        }
        text_width(text, scale)
    }

    /// Draw `text` rotated a quarter turn anticlockwise (reading bottom to top), with the
    /// bounding box's top-left corner at `(x, y)`.
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) {
        let s = scale as i64;
        let len = text_width(text, scale) as i64;
        for (k, ch) in text.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits >> col & 1 == 1 {
                        // Unrotated (u, v) = (k·8 + col, row) maps to (v, len − 1 − u).
                        let u = (k * GLYPH + col) as i64 * s;
                        let v = row as i64 * s;
                        self.fill_rect(x + v, y + len - u - s, s, s, c);
                    }
                }
            }
        }
    }
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * GLYPH * scale
}

/// The 8×8 bitmap of `ch` (rows top to bottom, bit 0 leftmost); `?` when the font has none.
fn glyph(ch: char) -> [u8; 8] {
    let u = ch as usize;
    match u {
        0x20..=0x7f => BASIC_LEGACY[u],
        0xa0..=0xff => LATIN_LEGACY[u - 0xa0],
        0x390..=0x3c9 => GREEK_LEGACY[u - 0x390],
        0x2212 => BASIC_LEGACY['-' as usize], // minus sign
        _ => BASIC_LEGACY['?' as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_draws_pixels_and_reports_width() {
        let mut c = Canvas::new(100, 20, WHITE);
        let w = c.text(0, 0, "Aβ1", 2, BLACK);
        assert_eq!(w, 48);
        let dark = c.pixels.iter().filter(|p| **p == BLACK).count();
        assert!(dark > 50, "{dark}");
        // Nothing drawn right of the text.
        for y in 0..20 {
            for x in 48..100 {
                assert_eq!(c.pixels[y * 100 + x], WHITE);
            }
        }
    }

    #[test]
    fn clip_limits_drawing() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.set_clip(2, 2, 5, 5);
        c.fill_rect(0, 0, 10, 10, BLACK);
        assert_eq!(c.pixels.iter().filter(|p| **p == BLACK).count(), 9);
        c.clear_clip();
        c.line((0.0, 9.0), (9.0, 9.0), 1, BLACK);
        assert_eq!(c.pixels.iter().filter(|p| **p == BLACK).count(), 19);
    }
}
