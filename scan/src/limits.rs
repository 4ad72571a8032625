/// Bounds on the work and memory one scan may use. Reaching one is an error on the stream or
/// file (never a silent pass), and everything found before it stays in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memo entries per pickle. Each costs a few dozen bytes: values borrow the input.
    pub max_memo: usize,
    /// Stack values plus marks per pickle.
    pub max_stack: usize,
    /// Opcodes per stream.
    pub max_ops: u64,
    /// Bytes taken out of containers per file: decompressed output, and every archive member
    /// scanned, stored ones included (so overlapping zip entries cannot multiply the work).
    pub max_decompressed: u64,
    /// Entries read from one zip archive.
    pub max_members: usize,
    /// Containers (archives and compression layers) nested inside each other.
    pub max_depth: usize,
    /// Globals listed per stream, so a pickle of millions of `GLOBAL`s cannot fill memory.
    pub max_globals: usize,
    /// Objects rebuilt per stream to check the reconstruction rules (a few dozen bytes each;
    /// payloads are borrowed). Past it the stream is reported unscannable, never clean.
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memo: 1 << 21,
            max_stack: 1 << 20,
            max_ops: 1 << 32,
            max_decompressed: 2 << 30,
            max_members: 1 << 16,
            max_depth: 4,
            max_globals: 100_000,
            max_values: 1 << 24,
        }
    }
}
