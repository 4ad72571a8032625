//! A stable-Rust stand-in for `cargo fuzz` (see fuzz/README.md): mutates the fuzz seeds with a
//! xorshift PRNG for `PICKLEGUARD_FUZZ_SECS` seconds (default 10) and scans every mutant. A
//! panic fails the test and prints the input as hex, to save under tests/regressions/.

use std::time::{Duration, Instant};

use pickleguard_policy::Policy;
use pickleguard_scan::{Limits, Scanner};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Interesting bytes: opcodes that take lengths or change the stack, and length extremes.
const DICTIONARY: &[&[u8]] = &[
    b"\x93",
    b"\x94",
    b"(",
    b"e",
    b"u",
    b"t",
    b"R",
    b"b",
    b"\x81",
    b"\x82\x01",
    b"h\x00",
    b"j\xff\xff\xff\xff",
    b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"X\xff\xff\xff\x00",
    b"\x95\x00\x00\x00\x00\x00\x00\x00\x80",
    b"cos\nsystem\n",
    b"\x8c\x05posix",
    b".",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x93NUMPY",
    b"\x1f\x8b",
    b"BZh9",
    b"\xfd7zXZ\x00",
];

fn mutate(rng: &mut XorShift, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            1 if !input.is_empty() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            2 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, word.iter().copied());
            }
            3 if !input.is_empty() => {
                let start = rng.below(input.len());
                let end = (start + rng.below(64)).min(input.len());
                let chunk = input[start..end].to_vec();
                input.splice(at..at, chunk);
            }
            4 => input.truncate(at),
            _ => input.insert(at, rng.next() as u8),
        }
    }
}

#[test]
#[ignore = "a time-boxed fuzzer: run with --ignored, PICKLEGUARD_FUZZ_SECS=N"]
fn smoke_fuzz() {
    let seconds: u64 = std::env::var("PICKLEGUARD_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seeds_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(seeds_dir)
        .expect("fuzz/seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none_or(|ext| ext != "py"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    seeds.push(Vec::new());
    let policy = Policy::new();
    let scanner = Scanner::new(&policy).with_limits(Limits {
        max_decompressed: 8 << 20,
        max_members: 256,
        ..Limits::default()
    });
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input);
        let result = std::panic::catch_unwind(|| scanner.scan_bytes("smoke", &input).to_json());
        if result.is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!("the scanner panicked on input (hex): {hex}");
        }
        runs += 1;
    }
    println!("smoke_fuzz: {runs} inputs in {seconds} s, no panic");
}
