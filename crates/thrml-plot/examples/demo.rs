//! Draws one of each kind of picture into a folder (default `target/examples/plot-demo`):
//! `cargo run -p thrml-plot --example demo -- [OUT_DIR]`.

use std::path::PathBuf;

use thrml_plot::{Palette, Panel, Plot, PlotError};

fn main() -> Result<(), PlotError> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/examples/plot-demo"), PathBuf::from);
    let mut energy = Plot::new("Energy per spin against sweep")
        .x_label("sweep")
        .y_label("energy / spin");
    for beta in [0.5, 1.0, 1.5, 2.0] {
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|t| (t as f64, -beta * (1.0 - (-(t as f64) / 20.0).exp())))
            .collect();
        energy = energy.line(format!("β = {beta}"), &pts);
    }
    energy.save(&out.join("lines.png"))?;

    let fps: Vec<(f64, f64)> = [1.0, 16.0, 64.0, 256.0, 1024.0, 4096.0]
        .iter()
        .map(|&c: &f64| (c, 4.0 * c / (c + 50.0)))
        .collect();
    Plot::new("Flips per ns against chains")
        .x_label("chains")
        .y_label("flips / ns")
        .log_x()
        .line("fused", &fps)
        .scatter("", &fps)
        .save(&out.join("log_x.png"))?;

    let pts: Vec<(f64, f64)> = (0..300)
        .map(|i| {
            let x = (i as f64 * 0.61803).fract() * 2.0 - 1.0;
            (x, x + 0.1 * ((i as f64 * 1.3).sin()))
        })
        .collect();
    Plot::new("Estimated against exact")
        .x_label("exact")
        .y_label("estimate")
        .scatter("moments", &pts)
        .diagonal()
        .save(&out.join("scatter.png"))?;

    let mut panel = Panel::new("Tiles: categorical, gray, diverging", 3);
    let cat: Vec<f32> = (0..400)
        .map(|i| ((i / 20 / 4 + (i % 20) / 5) % 5) as f32)
        .collect();
    let field: Vec<f32> = (0..784)
        .map(|i| (((i / 28) as f32 - 13.5) / 6.0).sin() * (((i % 28) as f32 - 13.5) / 6.0).cos())
        .collect();
    panel = panel
        .tile("categorical (5)", 20, 20, &cat, Palette::Categorical(5))
        .tile("gray", 28, 28, &field, Palette::Gray)
        .tile("diverging", 28, 28, &field, Palette::Diverging);
    panel.save(&out.join("panel.png"))?;
    println!(
        "wrote lines.png, log_x.png, scatter.png and panel.png to {}",
        out.display()
    );
    Ok(())
}
