//! Throughput sanity checks, not timed assertions: run them in release and read the output.
//!
//!     cargo test --release -p pickleguard-scan --test it -- --ignored perf --nocapture

use std::io::Write;
use std::time::Instant;

use pickleguard_policy::Policy;
use pickleguard_scan::Scanner;

use crate::support::TempDir;

fn scan_and_report(what: &str, bytes: &[u8]) {
    let dir = TempDir::new("perf");
    let path = dir.path().join("big.pkl");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write the pickle");
    let policy = Policy::new();
    let start = Instant::now();
    let report = Scanner::new(&policy).scan_file(&path);
    let seconds = start.elapsed().as_secs_f64();
    assert!(!report.is_error(), "{}", report.to_json());
    assert!(!report.has_findings(), "{}", report.to_json());
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "perf: {what}: {mb:.0} MB in {seconds:.3} s = {:.0} MB/s",
        mb / seconds.max(1e-9)
    );
}

#[test]
#[ignore = "a throughput check: run in release with --ignored"]
fn perf_large_bytes_objects() {
    // A list of 200 one-MiB bytes objects, as protocol 4 writes them, around an allowed global.
    let mut data = b"\x80\x04ccollections\nOrderedDict\n)R0](".to_vec();
    let chunk = vec![b'c'; 1 << 20];
    for _ in 0..200 {
        data.push(0x8e);
        data.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        data.extend_from_slice(&chunk);
        data.push(0x94);
    }
    data.extend_from_slice(b"e.");
    scan_and_report("200 x 1 MiB BINBYTES8", &data);
}

#[test]
#[ignore = "a throughput check: run in release with --ignored"]
fn perf_dense_opcodes() {
    // The worst case: nothing to skip, an opcode every few bytes, every string memoized.
    let mut data = b"\x80\x04](".to_vec();
    for i in 0..8_000_000u32 {
        if i % 1000 == 999 {
            data.extend_from_slice(b"e(");
        }
        match i % 4 {
            0 => data.extend_from_slice(b"K\x07"),
            1 => data.extend_from_slice(b"\x8c\x04name\x94"),
            2 => data.extend_from_slice(b"G\0\0\0\0\0\0\0\0"),
            _ => data.extend_from_slice(b"J\x01\x02\x03\x04"),
        }
    }
    data.extend_from_slice(b"e.");
    scan_and_report("8M small opcodes", &data);
}
