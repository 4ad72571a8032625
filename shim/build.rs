//! Builds `libpickleguard.so`, the preload shim, from `src/lib.rs`.
//!
//! The workspace's release profile keeps `panic = "unwind"`, because the core's FFI panic
//! boundaries need it, and Cargo cannot set `panic` per package. A Rust library compiled with
//! unwinding links std's panic runtime, whose unwind tables need `libgcc_s.so.1`: an image
//! without that library could then start no dynamic program at all under the preload. So this
//! script compiles the shim once more with rustc directly: `no_std`, `panic = "abort"`,
//! optimised in every profile, linked against libc alone, and with `--no-undefined`, so that a
//! panic path surviving optimisation (which would reference the deliberately undefined symbol in
//! the shim's panic handler) fails the build instead of shipping.
//!
//! The result goes to `target/<profile>/libpickleguard.so`, beside `libpickleguard_core.so`,
//! where `make install`, the tests and `pickleguard` look for it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pickleguard_shim_cdylib)");
    println!("cargo::rustc-check-cfg=cfg(pickleguard_shim_late_dlopen)");
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");

    // The `dlopen` interposer for libpython loaded after start-up (src/late.rs) is a naked
    // function: Rust 1.88 or later, and an assembly body for the target's architecture.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let late_dlopen = matches!(arch.as_str(), "x86_64" | "aarch64")
        && rustc_minor(&rustc).is_some_and(|m| m >= 88);
    if late_dlopen {
        println!("cargo::rustc-cfg=pickleguard_shim_late_dlopen");
    } else {
        println!(
            "cargo::warning=libpickleguard.so built without its dlopen interposer (needs Rust >= 1.88 on x86_64 or aarch64): a libpython loaded after start-up will not be protected"
        );
    }

    let mut command = Command::new(&rustc);
    command
        .arg(manifest_dir.join("src/lib.rs"))
        .args(["--crate-name", "pickleguard", "--crate-type", "cdylib"])
        .args(["--edition", "2021", "--target", &target])
        .args(["--cfg", "pickleguard_shim_cdylib"])
        .args(if late_dlopen {
            &["--cfg", "pickleguard_shim_late_dlopen"][..]
        } else {
            &[]
        })
        .args(["-C", "panic=abort"])
        .args(["-C", "opt-level=3", "-C", "codegen-units=1"])
        .args(["-C", "debug-assertions=off", "-C", "overflow-checks=off"])
        .args(["-C", "strip=debuginfo"])
        .args(["-l", "dylib=c"])
        .args(["-C", "link-arg=-Wl,--no-undefined"])
        // core's unwind tables name `rust_eh_personality`; see `no_unwinding` in src/sys.rs.
        // The version script rustc writes keeps this alias local.
        .args([
            "-C",
            "link-arg=-Wl,--defsym=rust_eh_personality=pickleguard_shim_no_unwinding",
        ])
        .arg("--out-dir")
        .arg(&out_dir);
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        command
            .arg("-C")
            .arg(format!("linker={}", Path::new(&linker).display()));
    }
    let output = command
        .output()
        .expect("cannot run rustc to build the shim");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("pickleguard_shim_has_a_panic_path") {
            "\nA panic path is left in the shim (see the panic handler in shim/src/sys.rs): \
             make the failing step return an Option or Result instead.\n"
        } else {
            ""
        };
        panic!("building libpickleguard.so failed:\n{stderr}{hint}");
    }

    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out: the artifacts directory is
    // three levels up.
    let built = out_dir.join("libpickleguard.so");
    let artifacts = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <target>/<profile>/build/<package>/out");
    let installed = artifacts.join("libpickleguard.so");
    // Replace, never write through: a running process may have the old file mapped.
    let staging = artifacts.join(".libpickleguard.so.new");
    std::fs::copy(&built, &staging).expect("cannot copy the shim beside the core");
    std::fs::rename(&staging, &installed).expect("cannot move the shim into place");
}

/// The minor version of `rustc` (`88` for 1.88.0).
fn rustc_minor(rustc: &std::ffi::OsStr) -> Option<u32> {
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
