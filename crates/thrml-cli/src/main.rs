//! The `thrml` command-line tool.
fn main() {}
