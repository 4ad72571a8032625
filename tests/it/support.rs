//! Shared fixtures: where the artifacts and interpreters are, a temp dir that cleans up after
//! itself, and a runner that kills a hung child instead of hanging the suite.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `pickleguard` command.
pub fn cli() -> PathBuf {
    let path = repo().join("target/release/pickleguard");
    assert!(
        path.is_file(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

/// A Python test script in `tests/py`.
pub fn script(name: &str) -> PathBuf {
    repo().join("tests/py").join(name)
}

/// The preload shim under test.
pub fn shim() -> PathBuf {
    let path = std::env::var_os("PICKLEGUARD_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/libpickleguard.so"));
    assert!(
        path.is_file() && path.with_file_name("libpickleguard_core.so").is_file(),
        "{} and libpickleguard_core.so beside it are missing: run `make build` first",
        path.display()
    );
    path
}

/// One CPython to test against.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// For messages: `3.11.7 (pyenv, shared libpython)`.
    pub label: String,
    /// The executable.
    pub path: PathBuf,
}

/// Every interpreter the suite covers that exists on this machine. Prints a SKIP line for each
/// one that is missing.
pub fn interpreters() -> &'static [Interpreter] {
    static FOUND: OnceLock<Vec<Interpreter>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut found = Vec::new();
        for minor in 8..=13 {
            match pyenv_python(&format!("3.{minor}.")) {
                Some((version, path)) => found.push(Interpreter {
                    label: format!("{version} (pyenv, shared libpython)"),
                    path,
                }),
                None => skip(&format!("CPython 3.{minor} is not installed under pyenv")),
            }
        }
        let system = PathBuf::from("/usr/bin/python3.11");
        if system.is_file() {
            found.push(Interpreter {
                label: "system python3.11 (static libpython)".into(),
                path: system,
            });
        } else {
            skip("Debian's /usr/bin/python3.11 is not installed");
        }
        let sid = repo().join("target/python3.14/python3.14");
        if sid.is_file() {
            found.push(Interpreter {
                label: "3.14 (Debian sid chroot, static libpython)".into(),
                path: sid,
            });
        } else {
            skip(&format!(
                "CPython 3.14: no Debian sid chroot at {} (`make python314` makes it)",
                sid.display()
            ));
        }
        assert!(!found.is_empty(), "no CPython >= 3.8 found to test against");
        found
    })
}

/// The newest pyenv-installed version starting with `prefix` (`3.11.` or `2.7.`).
pub fn pyenv_python(prefix: &str) -> Option<(String, PathBuf)> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")))?;
    let mut versions: Vec<(Vec<u32>, String)> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .filter_map(|name| {
            let key = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, name))
        })
        .collect();
    versions.sort();
    let (_, version) = versions.pop()?;
    let path = root.join("versions").join(&version).join("bin/python");
    path.is_file().then_some((version, path))
}

/// A command with a clean pickleguard environment: no inherited `PICKLEGUARD_*` or preload.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("PICKLEGUARD_")
            || key_text == "LD_PRELOAD"
            || key_text.starts_with("PYTHON")
        {
            command.env_remove(&key);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// `command` with the shim preloaded.
pub fn preloaded(program: impl AsRef<OsStr>) -> Command {
    let mut command = command(program);
    command.env("LD_PRELOAD", shim());
    command
}

/// Runs to completion, killing the child if it outlives `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let pid = child.id();
    let started = Instant::now();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.unwrap_or_else(|err| panic!("waiting for {command:?}: {err}")),
        Err(_) => {
            // The child moved into the waiting thread, so it is killed by pid.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!(
                "{command:?} hung for {:?} and was killed",
                started.elapsed()
            );
        }
    }
}

/// Runs with a generous default timeout.
pub fn run_ok(command: &mut Command) -> Output {
    let output = run(command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Text of an output stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON lines a test script printed.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("bad JSON line {line:?}: {err}"))
        })
        .collect()
}

/// Names of the files in `dir`, sorted; empty if it does not exist.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The body of the `allow = [ ... ]` array in a config snippet.
pub fn allow_block(snippet: &str) -> &str {
    snippet
        .split("allow = [")
        .nth(1)
        .and_then(|rest| rest.split("\n]").next())
        .unwrap_or_else(|| panic!("no allow array in:\n{snippet}"))
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pickleguard-it-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The newest pyenv CPython `3.<minor>` with a shared libpython, or `None` after a SKIP line.
pub fn embeddable(minor: u32) -> Option<EmbeddablePython> {
    embeddable_python(&format!("3.{minor}."), "embedding host")
}

/// Builds `tests/c/<name>.c` with `cc` into `target/c-hosts` (again only when the source is
/// newer) and returns the executable. With `python`, it embeds that CPython
/// ([`compile_c_host`]); without, it gets no Python at all.
pub fn c_host(name: &str, python: Option<&EmbeddablePython>) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let source = repo().join("tests/c").join(format!("{name}.c"));
    let dir = repo().join("target/c-hosts");
    std::fs::create_dir_all(&dir).expect("create target/c-hosts");
    let suffix = python.map_or_else(|| "nopython".to_string(), |p| p.version.replace('.', "_"));
    let output = dir.join(format!("{name}-{suffix}"));
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&output).is_some() && modified(&output) >= modified(&source) {
        return output;
    }
    let code = std::fs::read_to_string(&source)
        .unwrap_or_else(|err| panic!("{}: {err}", source.display()));
    match python {
        Some(python) => compile_c_host(python, &code, &output),
        None => compile_c(&code, &output, &["-O1", "-Wall", "-Werror", "-ldl"]),
    }
    output
}

/// Whether the tests run as root (chroot, namespaces, setuid files need it). Prints a SKIP line
/// naming `what` when they do not.
pub fn root_or_skip(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(&format!("{what}: needs root"));
    }
    root
}

/// Runs `command` with a timeout and returns its status, stdout and stderr; on a hang the
/// child is killed and the test fails with the full command line.
pub fn run_full(command: &mut Command) -> (Option<i32>, String, String) {
    let output = run(command, Duration::from_secs(120));
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The `NEEDED` entries of a shared object, from `readelf -d`.
pub fn needed_libraries(object: &Path) -> Vec<String> {
    let output = Command::new("readelf")
        .arg("-d")
        .arg(object)
        .output()
        .expect("readelf (binutils) is needed");
    assert!(output.status.success(), "readelf -d {}", object.display());
    text(&output.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| Some(line.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

/// A minimal root filesystem for `chroot`, removed on drop: the programs added, the shared
/// libraries `ldd` says they need (with the loader), and nothing else.
pub struct Chroot {
    dir: TempDir,
}

impl Chroot {
    pub fn new(label: &str) -> Chroot {
        Chroot {
            dir: TempDir::new(label),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `inside` (an absolute path in the chroot) as a host path.
    pub fn host_path(&self, inside: &Path) -> PathBuf {
        self.root().join(inside.strip_prefix("/").unwrap_or(inside))
    }

    /// Copies the host file `host` (its content, symlinks followed) to `inside`.
    pub fn copy_file(&self, host: &Path, inside: &Path) {
        let to = self.host_path(inside);
        std::fs::create_dir_all(to.parent().expect("absolute path")).expect("create dir");
        std::fs::copy(host, &to)
            .unwrap_or_else(|err| panic!("copy {} -> {}: {err}", host.display(), to.display()));
    }

    /// Copies a program to the same path inside, with every library `ldd` lists for it.
    pub fn add_program(&self, program: &Path) {
        self.copy_file(program, program);
        self.add_libraries_of(program);
    }

    /// Copies the libraries `ldd` lists for `object` to the same paths inside.
    pub fn add_libraries_of(&self, object: &Path) {
        let output = Command::new("ldd")
            .arg(object)
            .output()
            .expect("ldd is needed");
        for line in text(&output.stdout).lines() {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
            // `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                self.copy_file(Path::new(path), Path::new(path));
            }
        }
    }

    /// Copies a directory tree from the host to the same path inside, skipping entries whose
    /// name is in `skip`.
    pub fn copy_tree(&self, host: &Path, skip: &[&str]) {
        copy_tree(host, &self.host_path(host), skip);
    }

    /// Every file inside whose name contains `needle`.
    pub fn find(&self, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![self.root().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() && !path.is_symlink() {
                    pending.push(path);
                } else if entry.file_name().to_string_lossy().contains(needle) {
                    found.push(path);
                }
            }
        }
        found
    }

    /// `chroot <root> /usr/bin/env -i PATH=... env... argv...`: the program runs inside with
    /// only `env` (the host's `chroot` never sees it, so a preload applies inside alone).
    /// The image needs `/usr/bin/env` (see [`Chroot::add_program`]).
    pub fn command(&self, argv: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("/usr/sbin/chroot");
        command
            .arg(self.root())
            .args(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin"])
            .args(env.iter().map(|(key, value)| format!("{key}={value}")))
            .args(argv)
            .env_clear()
            .stdin(Stdio::null());
        command
    }
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        if skip.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        let path = entry.path();
        let target = to.join(&name);
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&path, &target, skip);
        } else if kind.is_file() {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

/// Compiles C `source` with `cc` into `output`, with `args` (e.g. `-shared -fPIC`, `-D...`,
/// `-l...`). Panics with the compiler's output on failure.
pub fn compile_c(source: &str, output: &Path, args: &[&str]) {
    let source_path = output.with_extension("c");
    std::fs::write(&source_path, source).expect("write C source");
    let result = Command::new("cc")
        .arg("-o")
        .arg(output)
        .arg(&source_path)
        .args(args)
        .output()
        .expect("cc is needed");
    assert!(
        result.status.success(),
        "cc {} failed:\n{}",
        source_path.display(),
        text(&result.stderr)
    );
}

/// Whether the filesystem holding `path` honours setuid bits (not mounted `nosuid`).
pub fn honours_setuid(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let point = fields.nth(1)?;
            let options = fields.nth(1)?;
            Some((PathBuf::from(point), options.to_string()))
        })
        .filter(|(point, _)| path.starts_with(point))
        .max_by_key(|(point, _)| point.as_os_str().len())
        .is_some_and(|(_, options)| !options.split(',').any(|o| o == "nosuid"))
}

/// A private mount namespace whose `/etc` is an overlay of the host's: files put there (such
/// as `/etc/ld.so.preload`) exist only inside the namespace and vanish with it. The host's
/// `/etc` is never written, and the namespace's mounts never propagate back.
pub struct PrivateEtc {
    dir: TempDir,
}

impl PrivateEtc {
    pub fn new(label: &str) -> PrivateEtc {
        let dir = TempDir::new(label);
        for sub in ["upper", "work"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create overlay dir");
        }
        PrivateEtc { dir }
    }

    /// Puts `content` at `/etc/<relative>` inside, owned by `uid`, with permission bits `mode`.
    pub fn write(&self, relative: &str, content: &str, uid: u32, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("upper").join(relative);
        std::fs::create_dir_all(path.parent().expect("a file under /etc")).expect("create dir");
        std::fs::write(&path, content).expect("write overlay file");
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).expect("chown overlay file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// `argv` run inside the namespace, with an environment of `PATH` alone.
    pub fn command(&self, argv: &[&OsStr]) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(
                "set -e; mount -t overlay pickleguard-test-etc \
                 -o lowerdir=/etc,upperdir=\"$1\",workdir=\"$2\" /etc; shift 2; exec \"$@\"",
            )
            .arg("sh")
            .arg(self.dir.path().join("upper"))
            .arg(self.dir.path().join("work"))
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .stdin(Stdio::null());
        command
    }
}

/// A pyenv CPython with its headers and shared libpython, for C programs that embed it.
#[derive(Debug, Clone)]
pub struct EmbeddablePython {
    /// `3.12.1`.
    pub version: String,
    /// The installation prefix (`PYTHONHOME`).
    pub home: PathBuf,
    /// `python3.12`: the include directory and library name.
    pub name: String,
}

impl EmbeddablePython {
    /// Its shared libpython, `lib/libpython3.12.so`.
    pub fn libpython(&self) -> PathBuf {
        self.home.join(format!("lib/lib{}.so", self.name))
    }
}

/// The newest pyenv CPython starting with `prefix` (`3.12.`) that has a shared libpython, or
/// `None` with a SKIP line naming `what`.
pub fn embeddable_python(prefix: &str, what: &str) -> Option<EmbeddablePython> {
    let Some((version, executable)) = pyenv_python(prefix) else {
        skip(&format!(
            "{what}: CPython {prefix}x is not installed under pyenv"
        ));
        return None;
    };
    let home = executable.parent()?.parent()?.to_path_buf();
    let mut parts = version.split('.');
    let name = format!("python{}.{}", parts.next()?, parts.next()?);
    if !home.join(format!("lib/lib{name}.so")).is_file() {
        skip(&format!(
            "{what}: {} has no shared libpython",
            home.display()
        ));
        return None;
    }
    Some(EmbeddablePython {
        version,
        home,
        name,
    })
}

/// Compiles a C program that embeds `python` (its headers, linked to its shared libpython with
/// an absolute rpath, so it runs without `LD_LIBRARY_PATH`, setuid included).
pub fn compile_c_host(python: &EmbeddablePython, source: &str, output: &Path) {
    let include = python.home.join("include").join(&python.name);
    let lib = python.home.join("lib");
    compile_c(
        source,
        output,
        &[
            &format!("-I{}", include.display()),
            &format!("-L{}", lib.display()),
            &format!("-Wl,-rpath,{}", lib.display()),
            &format!("-l{}", python.name),
        ],
    );
}

/// Prints `SKIP: <message>` straight to the test process's stderr, so the line stays visible
/// in a passing run (the test harness captures `eprintln!` and shows it only on failure).
pub fn skip(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIP: {message}");
}
