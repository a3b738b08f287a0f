//! Fan-out benchmark (written next).

fn main() {}
