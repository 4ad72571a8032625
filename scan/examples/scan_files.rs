//! Scans the files named on the command line with the default policy and prints one JSON
//! report per line, then the throughput on stderr. A development aid; the real CLI lives
//! elsewhere.
//!
//!     cargo run --release -p pickleguard-scan --example scan_files -- model.pt data.joblib

use std::path::Path;
use std::time::Instant;

use pickleguard_policy::Policy;
use pickleguard_scan::Scanner;

fn main() {
    let policy = Policy::new();
    let scanner = Scanner::new(&policy);
    let mut bytes = 0u64;
    let start = Instant::now();
    for path in std::env::args().skip(1) {
        bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("{}", scanner.scan_file(Path::new(&path)).to_json());
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "scanned {:.1} MB in {:.3} s: {:.0} MB/s",
        bytes as f64 / 1e6,
        seconds,
        bytes as f64 / 1e6 / seconds.max(1e-9)
    );
}
