//! Small PNG plots for the thrml examples: line and scatter plots with axes, "nice" ticks,
//! optional log axes, a title, axis labels and a legend ([`Plot`]), and grids of small
//! images such as Potts states or heat maps, each with a caption ([`Panel`]).
//!
//! Everything is drawn in pure Rust: text uses the public-domain 8×8 bitmap font of the
//! `font8x8` crate scaled up (no system fonts), and the `png` crate encodes the result.
//! Files are written atomically (a temporary file in the same folder, then a rename), and
//! every failure is a typed [`PlotError`] that names the offending series, tile or path.
//!
//! ```
//! use thrml_plot::{Palette, Panel, Plot};
//! let dir = tempfile::tempdir().unwrap();
//! let points: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, (i as f64 / 8.0).sin())).collect();
//! Plot::new("A sine")
//!     .x_label("x")
//!     .y_label("sin(x / 8)")
//!     .line("sin", &points)
//!     .save(&dir.path().join("sine.png"))?;
//!
//! let states: Vec<f32> = (0..64).map(|i| (i % 3) as f32).collect();
//! Panel::new("Three colours", 2)
//!     .tile("chain 0", 8, 8, &states, Palette::Categorical(3))
//!     .save(&dir.path().join("states.png"))?;
//! # Ok::<(), thrml_plot::PlotError>(())
//! ```

mod axis;
mod canvas;
mod panel;
mod plot;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use axis::{Scale, linear_ticks, log_ticks};
pub use canvas::Rgb;
pub use panel::{Palette, Panel};
pub use plot::Plot;

/// What can go wrong when building or saving a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A series (or a tile) has no points.
    #[error("series `{series}` has no points")]
    EmptySeries {
        /// The series' (or tile's) name.
        series: String,
    },
    /// The plot (or panel) has nothing to draw.
    #[error("`{title}` has no series or tiles to draw")]
    Nothing {
        /// The plot's title.
        title: String,
    },
    /// A point or value is NaN or infinite.
    #[error("series `{series}`: point {index} is not finite ({value})")]
    NonFinite {
        /// The series' (or tile's) name.
        series: String,
        /// The point's (or value's) index.
        index: usize,
        /// The offending coordinate.
        value: f64,
    },
    /// A point has a coordinate ≤ 0 on a log axis.
    #[error("series `{series}`: point {index} has {axis} = {value}, not > 0, on a log axis")]
    NonPositiveOnLogAxis {
        /// The series' name.
        series: String,
        /// The point's index.
        index: usize,
        /// `"x"` or `"y"`.
        axis: &'static str,
        /// The offending coordinate.
        value: f64,
    },
    /// An image, tile or grid with a zero (or absurdly large) dimension.
    #[error("`{what}` has a zero or too large size: {width}×{height}")]
    ZeroSize {
        /// What has the bad size.
        what: String,
        /// Its width (columns).
        width: usize,
        /// Its height (rows).
        height: usize,
    },
    /// A tile's values do not fill its `rows × cols` grid.
    #[error("tile `{tile}`: {rows}×{cols} needs {expected} values, got {got}")]
    ShapeMismatch {
        /// The tile's caption.
        tile: String,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
        /// `rows · cols`.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A value of a categorical tile is not one of `0, 1, …, n − 1`.
    #[error("tile `{tile}`: value {index} is {value}, not a category in 0..{n}")]
    NotACategory {
        /// The tile's caption.
        tile: String,
        /// The value's index.
        index: usize,
        /// The value.
        value: f32,
        /// The number of categories.
        n: usize,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or folder) involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The PNG encoder failed.
    #[error("{path}: PNG encoding failed: {source}")]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
}

/// A rendered RGB image (8 bits a channel, row-major, no alpha).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width · height` pixels, row by row from the top.
    pub pixels: Vec<Rgb>,
}

/// The largest width or height of an image, in pixels.
pub const MAX_SIDE: usize = 16_384;

impl Image {
    fn from_canvas(c: canvas::Canvas) -> Image {
        Image {
            width: c.width,
            height: c.height,
            pixels: c.pixels,
        }
    }

    /// The image as PNG bytes (RGB, 8 bits a channel). `path` only labels errors.
    pub fn encode_png(&self, path: &Path) -> Result<Vec<u8>, PlotError> {
        let mut out = Vec::new();
        let enc_err = |source| PlotError::Encode {
            path: path.to_path_buf(),
            source,
        };
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::High);
            let mut w = enc.write_header().map_err(enc_err)?;
            let flat: Vec<u8> = self.pixels.iter().flatten().copied().collect();
            w.write_image_data(&flat).map_err(enc_err)?;
            w.finish().map_err(enc_err)?;
        }
        Ok(out)
    }

    /// Write the image as a PNG file at `path`, atomically: the bytes go to a temporary
    /// file in the same folder, which is then renamed over `path`. The folder is created
    /// if missing.
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        let bytes = self.encode_png(path)?;
        write_atomic(path, &bytes)
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written file. Creates the folder if missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| PlotError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks that a decoded PNG is a plausible picture, for tests of code that writes plots:
/// returns `(width, height, distinct colours, fraction of pixels unlike the top-left one)`.
///
/// Only RGB and RGBA 8-bit images (what this crate writes) are analysed; others give an
/// `Err` naming the colour type.
pub fn png_stats(path: &Path) -> Result<(usize, usize, usize, f64), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let channels = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        (c, d) => return Err(format!("{}: unsupported {c:?} {d:?}", path.display())),
    };
    let (w, h) = (info.width as usize, info.height as usize);
    let px: Vec<&[u8]> = buf[..w * h * channels]
        .chunks(channels)
        .map(|p| &p[..3])
        .collect();
    let background = px[0];
    let other = px.iter().filter(|p| **p != background).count();
    let mut distinct: Vec<&[u8]> = px.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Ok((w, h, distinct.len(), other as f64 / px.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn io_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("x.png"), b"y").unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }));
        assert!(err.to_string().contains("file"), "{err}");
    }
}
